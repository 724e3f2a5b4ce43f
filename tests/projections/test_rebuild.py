"""Projections are rebuildable: replaying the ledger from zero equals the live state.

A handler that read the clock, drew a random number or depended on rows another handler
wrote out of order would make the replayed tables differ from the ones written live; a
rebuild that dropped a batch would lose rows. Both show up here as unequal snapshots.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import itertools
import random
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, select, text

import migrations
from ledger import (
    ConcurrencyConflict,
    EventStore,
    NewEvent,
    create_engine,
    format_time,
    is_sqlite,
)
from projections.activity import activity
from projections.base import Projection
from projections.certificates import certificates
from projections.errors import ProjectionConflict
from projections.events import (
    SAN,
    AuthorityInitialized,
    CRLPublished,
    Event,
    KeyActivated,
    KeyRetired,
    PolicySet,
    ProvisionerAdded,
    ProvisionerRef,
    ProvisionerRemoved,
    ProvisionerUpdated,
    SSHIssued,
    SSHRevoked,
    SSHRevokedUnissued,
    X509Issued,
    X509Revoked,
    X509RevokedUnissued,
)
from projections.runner import Projections

Snapshot = dict[str, list[tuple[Any, ...]]]

START = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
REASONS = {0: "unspecified", 1: "keyCompromise", 3: "affiliationChanged", 4: "superseded"}


# -- the workload ------------------------------------------------------------------------


@dataclass
class Workload:
    """Builds a realistic CA history with a seeded generator, so every run is the same."""

    rng: random.Random
    serials: list[str] = field(default_factory=list)
    revoked_serials: list[str] = field(default_factory=list)
    provisioners: dict[str, ProvisionerRef] = field(default_factory=dict)
    issuer_key_id: str = ""
    ssh_serials: list[str] = field(default_factory=list)

    def _id(self, bits: int = 128) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def _b64(self, size: int) -> str:
        raw = self.rng.getrandbits(size * 8).to_bytes(size, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def _pem(self, label: str) -> str:
        body = base64.b64encode(self.rng.getrandbits(8 * 300).to_bytes(300, "big")).decode()
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"

    def _event(self, event: Event) -> NewEvent:
        return event.to_new_event(event_id=uuid.UUID(int=self.rng.getrandbits(128)))

    def initialized(self) -> NewEvent:
        fingerprint = hashlib.sha256(self._id().encode()).hexdigest()
        return self._event(
            AuthorityInitialized(name="Example Internal CA", root_fingerprint=fingerprint)
        )

    def key_activated(self, role: str, *, offline: bool = False) -> NewEvent:
        key_id = hashlib.sha256(self._id().encode()).hexdigest()
        if role == "x509_intermediate":
            self.issuer_key_id = key_id
        key_ref: dict[str, str] = (
            {"type": "pkcs11", "uri": f"pkcs11:token=ledgerca;object={role}"}
            if offline
            else {"type": "file", "path": f"/var/lib/ledgerca/secrets/{role}_{key_id[:8]}.key"}
        )
        return self._event(
            KeyActivated(
                key_id=key_id,
                role=role,
                certificate=None if role == "ledger" else self._pem("CERTIFICATE"),
                public_key=self._pem("PUBLIC KEY"),
                key_ref=key_ref,
                fingerprint=key_id,
            )
        )

    def key_retired(self, key_id: str, role: str) -> NewEvent:
        return self._event(KeyRetired(key_id=key_id, role=role))

    def provisioner_added(self, name: str) -> NewEvent:
        provisioner_id = self._id(96)
        kid = self._b64(32)
        self.provisioners[provisioner_id] = ProvisionerRef(provisioner_id, name, "JWK")
        return self._event(
            ProvisionerAdded(
                id=provisioner_id,
                name=name,
                type="JWK",
                key={
                    "kid": kid,
                    "kty": "EC",
                    "crv": "P-256",
                    "x": self._b64(32),
                    "y": self._b64(32),
                },
                encrypted_key=".".join(self._b64(n) for n in (40, 0, 12, 80, 16)),
                claims={},
                options={},
            )
        )

    def provisioner_updated(self, provisioner_id: str, new_name: str) -> NewEvent:
        old = self.provisioners[provisioner_id]
        self.provisioners[provisioner_id] = dataclasses.replace(old, name=new_name)
        claims = {"maxTLSCertDuration": "72h", "defaultTLSCertDuration": "24h"}
        return self._event(
            ProvisionerUpdated(
                id=provisioner_id, name=old.name, changes={"claims": claims, "name": new_name}
            )
        )

    def provisioner_removed(self, provisioner_id: str) -> NewEvent:
        removed = self.provisioners.pop(provisioner_id)
        return self._event(ProvisionerRemoved(id=provisioner_id, name=removed.name))

    def issued(self, serial: str | None = None) -> NewEvent:
        serial = serial or str(self.rng.getrandbits(128) | 1)
        host = f"host-{self.rng.randrange(10_000)}.internal.example"
        sans = [SAN("dns", host)]
        if self.rng.random() < 0.3:
            sans.append(SAN("ip", f"10.0.{self.rng.randrange(256)}.{len(sans)}"))
        if self.rng.random() < 0.1:
            sans.append(SAN("email", f"ops@{host}"))
        not_before = START + timedelta(minutes=len(self.serials) * 7 - 1)
        renewed_from = rekeyed_from = None
        # Only certificates that are still valid renew (the projection refuses the others).
        live = sorted(set(self.serials) - set(self.revoked_serials))
        if live and self.rng.random() < 0.2:
            renewed_from = self.rng.choice(live)
        elif live and self.rng.random() < 0.05:
            rekeyed_from = self.rng.choice(live)
        provisioner = None
        if self.provisioners and self.rng.random() < 0.9:
            provisioner = self.rng.choice(sorted(self.provisioners.items()))[1]
        self.serials.append(serial)
        return self._event(
            X509Issued(
                serial=serial,
                certificate=self._pem("CERTIFICATE"),
                subject=f"CN={host}",
                sans=tuple(sans),
                not_before=format_time(not_before),
                not_after=format_time(not_before + timedelta(hours=24)),
                provisioner=provisioner,
                issuer_key_id=self.issuer_key_id,
                token_id=self._id() if provisioner else None,
                renewed_from=renewed_from,
                rekeyed_from=rekeyed_from,
            )
        )

    def revoked(self, serial: str | None = None, *, token_id: str | None = None) -> NewEvent:
        if serial is None:
            serial = self.rng.choice(sorted(set(self.serials) - set(self.revoked_serials)))
        self.revoked_serials.append(serial)
        code = self.rng.choice(sorted(REASONS))
        revoked_at = START + timedelta(minutes=len(self.serials) * 7 + 3)
        return self._event(
            X509Revoked(
                serial=serial,
                reason_code=code,
                reason=REASONS[code],
                revoked_at=format_time(revoked_at),
                # Revoked by its holder with a one-time token, which `used_tokens` spends,
                # or over mTLS.
                token_id=token_id,
                provisioner=sorted(self.provisioners.items())[0][1] if token_id else None,
                mtls=token_id is None,
            )
        )

    def revoked_unissued(self, serial: str | None = None) -> NewEvent:
        """A serial no event issued, revoked on a provisioner's token (pre-revocation)."""
        return self._event(
            X509RevokedUnissued(
                serial=serial or str(self.rng.getrandbits(128) | 1),
                reason_code=self.rng.choice(sorted(REASONS)),
                reason="issued before the migration",
                revoked_at=format_time(START + timedelta(minutes=len(self.serials) * 7 + 5)),
                provisioner=sorted(self.provisioners.items())[0][1],
                token_id=self._id(),
            )
        )

    def ssh_revoked_unissued(self, serial: str | None = None) -> NewEvent:
        return self._event(
            SSHRevokedUnissued(
                serial=serial or str(self.rng.getrandbits(64) | 1),
                reason_code=1,
                reason="keyCompromise",
                revoked_at=format_time(START + timedelta(minutes=len(self.ssh_serials) * 5 + 4)),
                provisioner=sorted(self.provisioners.items())[0][1],
                token_id=self._id(),
            )
        )

    def policy_set(self, scope: str, provisioner_id: str | None, dns: list[str] | None) -> NewEvent:
        policy = None if dns is None else {"allow": {"dns": dns}, "deny": {"dns": ["db.internal"]}}
        return self._event(PolicySet(scope=scope, provisioner_id=provisioner_id, policy=policy))

    def ssh_issued(self, cert_type: str, *, renewed_from: str | None = None) -> NewEvent:
        serial = str(self.rng.getrandbits(64) | 1)
        self.ssh_serials.append(serial)
        host = f"node-{self.rng.randrange(1000)}.internal.example"
        principals = (host, host.split(".")[0]) if cert_type == "host" else ("alice", "ops")
        valid_after = START + timedelta(minutes=len(self.ssh_serials) * 5)
        span = timedelta(days=30) if cert_type == "host" else timedelta(hours=16)
        provisioner = sorted(self.provisioners.items())[0][1] if self.provisioners else None
        return self._event(
            SSHIssued(
                serial=serial,
                cert_type=cert_type,
                key_id=principals[0],
                principals=principals,
                valid_after=format_time(valid_after),
                valid_before=format_time(valid_after + span),
                extensions=() if cert_type == "host" else ("permit-pty",),
                certificate=f"ecdsa-sha2-nistp256-cert-v01@openssh.com {self._b64(200)}",
                public_key_fingerprint=f"SHA256:{self._b64(32)}",
                provisioner=provisioner,
                issuer_key_id=self.issuer_key_id,
                token_id=self._id() if provisioner else None,
                renewed_from=renewed_from,
                rekeyed_from=None,
            )
        )

    def ssh_revoked(self, serial: str) -> NewEvent:
        revoked_at = START + timedelta(minutes=len(self.ssh_serials) * 5 + 2)
        return self._event(
            SSHRevoked(
                serial=serial,
                reason_code=1,
                reason="keyCompromise",
                revoked_at=format_time(revoked_at),
                provisioner=None,
                token_id=None,
            )
        )

    def crl_published(self, issuer_key_id: str, number: int) -> NewEvent:
        this_update = START + timedelta(hours=16 * number)
        return self._event(
            CRLPublished(
                issuer_key_id=issuer_key_id,
                number=number,
                this_update=format_time(this_update),
                next_update=format_time(this_update + timedelta(hours=24)),
                revoked_through=100 * number,
                entries=len(self.revoked_serials),
                der=base64.b64encode(self.rng.getrandbits(4800).to_bytes(600, "big")).decode(),
            )
        )


def ticking_clock(start: datetime, step: timedelta) -> Callable[[], datetime]:
    """A store clock that moves `step` per append, so the ledger spans several days."""
    moments = (start + step * n for n in itertools.count())
    return lambda: next(moments)


def append_workload(store: EventStore, seed: int = 20310301) -> Workload:
    """Append a varied CA history: keys and a rotation, provisioner changes, ~200 issues
    (some renewals and rekeys), ~30 revocations, in appends of one to eight events."""
    work = Workload(random.Random(seed))
    store.clock = ticking_clock(START, timedelta(minutes=47))

    def append_in_groups(events: list[NewEvent]) -> None:
        while events:
            size = work.rng.randint(1, 8)
            store.append(events[:size], actor={"admin": "ops", "request_id": work._id(64)})
            events = events[size:]

    store.append([work.initialized(), work.key_activated("x509_root", offline=True)])
    first_intermediate = work.key_activated("x509_intermediate")
    store.append([first_intermediate, work.key_activated("ledger", offline=True)])
    names = ["ops-admin", "ci-runner", "kubernetes", "legacy-vpn"]
    store.append([work.provisioner_added(name) for name in names[:2]])
    append_in_groups([work.provisioner_added(name) for name in names[2:]])
    append_in_groups([work.issued() for _ in range(90)])
    first_issuer = work.issuer_key_id
    store.append([work.crl_published(first_issuer, 1)])

    # Rotate the intermediate: new certificates name the new issuer key from here on.
    store.append(
        [
            work.key_activated("x509_intermediate"),
            work.key_retired(first_issuer, "x509_intermediate"),
        ]
    )
    by_name = {p.name: pid for pid, p in work.provisioners.items()}
    store.append([work.provisioner_updated(by_name["ci-runner"], "ci-runner-2031")])
    ops = by_name["ops-admin"]
    store.append([work.policy_set("authority", None, ["*.internal"])])
    store.append([work.policy_set(f"provisioner/{ops}", ops, ["*.ops.internal"])])
    store.append([work.policy_set("authority", None, ["*.internal", "*.example"])])
    vpn = by_name["legacy-vpn"]
    store.append([work.policy_set(f"provisioner/{vpn}", vpn, ["vpn.internal"])])
    store.append([work.policy_set(f"provisioner/{vpn}", vpn, None)])  # cleared
    mixed: list[NewEvent] = []
    for n in range(110):
        mixed.append(work.issued())
        if n % 4 == 0:
            mixed.append(work.revoked(token_id=work._id() if n % 3 == 0 else None))
        if n % 37 == 0:
            mixed.append(work.revoked_unissued())
    append_in_groups(mixed)
    store.append([work.crl_published(work.issuer_key_id, n) for n in (1, 2)])
    store.append([work.provisioner_removed(by_name["legacy-vpn"])])
    append_in_groups([work.issued() for _ in range(4)])
    # Issued and revoked in one append: the revocation sees the row its neighbour wrote.
    serial = str(work.rng.getrandbits(128) | 1)
    store.append([work.issued(serial), work.revoked(serial)])
    # SSH: user and host certificates, a renewal, revocations (one in the issuing append).
    ssh = [work.ssh_issued("host" if n % 3 else "user") for n in range(12)]
    append_in_groups(list(ssh))
    first, third = work.ssh_serials[1], work.ssh_serials[3]
    store.append([work.ssh_issued("host", renewed_from=first)])
    store.append([work.ssh_revoked(first), work.ssh_revoked(third)])
    fresh = work.ssh_issued("host")
    store.append([fresh, work.ssh_revoked(work.ssh_serials[-1])])
    store.append([work.ssh_revoked_unissued(), work.ssh_issued("user")])
    store.append([work.ssh_revoked_unissued()])
    return work


def snapshot(engine: Engine, projection: Projection) -> Snapshot:
    """Every row of every table of `projection`, sorted by primary key, as plain tuples."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in projection.tables
        }


def caught_up(store: EventStore) -> Projections:
    projections = Projections()
    projections.catch_up_followers(store)
    return projections


# -- replay equals live ------------------------------------------------------------------


@pytest.fixture
def worked(store: EventStore) -> Workload:
    return append_workload(store)


def test_every_projection_rebuilt_from_zero_equals_its_live_state(
    store: EventStore, worked: Workload
) -> None:
    types = Counter(e.type for e in store.read())
    assert len(types) == 14 and types[X509Issued.TYPE] == 205 and types[X509Revoked.TYPE] == 29
    assert types[X509RevokedUnissued.TYPE] == 3 and types[SSHRevokedUnissued.TYPE] == 2
    projections = caught_up(store)
    for projection in projections.all:
        live = snapshot(store.engine, projection)
        assert all(live.values()), f"{projection.name}: the workload left a table empty"

        replayed = projections.rebuild(store, projection)

        assert replayed == store.head().position == store.count()
        assert snapshot(store.engine, projection) == live, projection.name


# Plain SQL that damages each projection table the way a bad hand-edit or a lost batch would:
# rows missing, a status flipped back and forth, a field changed, a row that no event wrote.
CORRUPTIONS = {
    "certificates": [
        "DELETE FROM certificates WHERE serial IN"
        " (SELECT serial FROM certificates ORDER BY serial LIMIT 17)",
        "UPDATE certificates SET status = 'revoked' WHERE serial ="
        " (SELECT min(serial) FROM certificates WHERE status = 'valid')",
        "UPDATE certificates SET status = 'valid', revoked_at = NULL WHERE serial ="
        " (SELECT max(serial) FROM certificates WHERE status = 'revoked')",
        "INSERT INTO certificates (serial, subject, sans, not_before, not_after, status,"
        " issuer_key_id, certificate, issued_position) VALUES ('42', 'CN=phantom', '[]',"
        " '2031-01-01T00:00:00.000000Z', '2031-01-02T00:00:00.000000Z', 'valid', 'k', 'x', 1)",
        "DELETE FROM revoked_unissued WHERE serial = (SELECT min(serial) FROM revoked_unissued)",
    ],
    "provisioners": [
        "UPDATE provisioners SET name = 'hijacked', claims = '{}' WHERE name = 'ci-runner-2031'",
        "DELETE FROM provisioners WHERE name = 'kubernetes'",
    ],
    "authority_keys": [
        "UPDATE authority_keys SET active = NOT active",
        "DELETE FROM authority WHERE id = 1",
    ],
    "used_tokens": [
        "DELETE FROM used_tokens WHERE token_id IN"
        " (SELECT token_id FROM used_tokens ORDER BY token_id LIMIT 9)",
        "INSERT INTO used_tokens (token_id, stream, used_position) VALUES ('replayed', 'x', 1)",
    ],
    "policies": [
        "UPDATE policies SET policy = '{}'",
        "DELETE FROM policies WHERE scope = 'authority'",
    ],
    "crls": [
        "UPDATE crls SET number = number - 1, next_update = '2099-01-01T00:00:00.000000Z'",
        "DELETE FROM crls WHERE number = (SELECT min(number) FROM crls)",
    ],
    "ssh_certificates": [
        "UPDATE ssh_certificates SET status = 'valid', revoked_at = NULL",
        "DELETE FROM ssh_certificates WHERE serial ="
        " (SELECT min(serial) FROM ssh_certificates WHERE cert_type = 'user')",
        "UPDATE ssh_revoked_unissued SET revocation_reason_code = 9",
    ],
    "ssh_hosts": [
        "DELETE FROM ssh_hosts WHERE serial = (SELECT min(serial) FROM ssh_hosts)",
        "INSERT INTO ssh_hosts (principal, serial, valid_after, valid_before, issued_position)"
        " VALUES ('revoked.example', '1', '2031-01-01T00:00:00.000000Z',"
        " '2099-01-01T00:00:00.000000Z', 1)",
    ],
    "activity": [
        "UPDATE activity SET events = events + 5",
        "DELETE FROM activity WHERE type = 'x509.revoked'",
        "INSERT INTO activity (day, type, events) VALUES ('1999-12-31', 'x509.issued', 3)",
    ],
}


def test_rebuild_restores_a_corrupted_projection_to_exactly_its_live_state(
    store: EventStore, worked: Workload
) -> None:
    assert set(CORRUPTIONS) == {p.name for p in Projections().all}
    projections = caught_up(store)
    for projection in projections.all:
        live = snapshot(store.engine, projection)
        with store.engine.begin() as connection:
            for statement in CORRUPTIONS[projection.name]:
                connection.execute(text(statement))
        assert snapshot(store.engine, projection) != live, projection.name

        projections.rebuild(store, projection)

        assert snapshot(store.engine, projection) == live, projection.name


# -- followers: status, catch-up, idempotence --------------------------------------------


# Projections.status calls Result.tuples(), deprecated in SQLAlchemy 2.1, and the suite turns
# warnings into errors. Remove this filter once projections/runner.py drops the call.
def test_status_shows_inline_projections_at_the_head_and_a_follower_behind_until_catch_up(
    store: EventStore, worked: Workload
) -> None:
    projections = Projections()
    head = store.head().position
    (follower,) = projections.followers

    before = {s.name: s for s in projections.status(store)}
    assert {s.name for s in before.values() if s.lag == 0} == {p.name for p in projections.inline}
    assert before[follower.name].position == 0 and before[follower.name].lag == head

    assert projections.catch_up(store, follower, batch=50) == head
    after = {s.name: s for s in projections.status(store)}
    assert all(s.position == s.head == head for s in after.values())
    caught = snapshot(store.engine, follower)

    assert projections.catch_up(store, follower) == 0
    assert snapshot(store.engine, follower) == caught

    store.append([worked.issued()])
    assert {s.name: s.lag for s in projections.status(store)}[follower.name] == 1
    assert projections.catch_up(store, follower) == 1
    assert _activity_totals(store.engine) == _ledger_totals(store)


def _activity_totals(engine: Engine) -> Counter[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(select(activity.c.day, activity.c.type, activity.c.events))
        return Counter({(day, type_): int(n) for day, type_, n in rows})


def _ledger_totals(store: EventStore) -> Counter[tuple[str, str]]:
    return Counter((e.recorded_at.date().isoformat(), e.type) for e in store.read())


def _catch_up_in_two_threads(store: EventStore, batch: int) -> list[int]:
    """Run the follower's catch_up from two 'instances' at once; return what each applied."""
    (follower,) = Projections().followers
    start = threading.Barrier(2)
    applied: list[int] = []
    errors: list[BaseException] = []

    def instance() -> None:
        projections = Projections()
        start.wait()
        try:
            applied.append(projections.catch_up(store, projections.get(follower.name), batch=batch))
        except BaseException as exc:  # reported below, on the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=instance) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, f"a concurrent catch_up failed: {errors[0]!r}"
    return applied


def test_two_instances_catching_up_one_follower_apply_each_event_exactly_once(
    store: EventStore, worked: Workload
) -> None:
    # The follower has run before, so its position row exists: the row lock is the guard.
    (follower,) = Projections().followers
    Projections().catch_up(store, follower, batch=10)
    for _ in range(60):
        store.append([worked.issued()])
    before = _activity_totals(store.engine)

    # Small batches, so the two instances take turns on the position row many times.
    applied = _catch_up_in_two_threads(store, batch=7)

    assert sum(applied) == 60
    assert _activity_totals(store.engine) == _ledger_totals(store)
    assert sum((_activity_totals(store.engine) - before).values()) == 60


@pytest.fixture
def racing_first_lock(engine: Engine) -> Iterator[None]:
    """Hold each thread's first position lookup until both threads have made it.

    That is the worst interleaving of two instances starting a new follower: both look for
    its position row before either has committed one. On SQLite `BEGIN IMMEDIATE` already
    serialises the two transactions (the second cannot begin before the first commits), so
    there is nothing to interleave and no barrier to wait at.
    """
    if is_sqlite(engine):
        yield
        return
    barrier = threading.Barrier(2, timeout=2)
    seen: set[int] = set()

    def after_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        first = threading.get_ident() not in seen
        if first and "projection_positions" in statement and "FOR UPDATE" in statement:
            seen.add(threading.get_ident())
            # A runner that makes the second instance wait on a lock before this point is
            # correct, and then the barrier cannot fill: give up waiting and carry on.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()

    event.listen(engine, "after_cursor_execute", after_execute)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)


def test_two_instances_starting_a_new_follower_at_once_apply_each_event_exactly_once(
    store: EventStore, worked: Workload, racing_first_lock: None, request: pytest.FixtureRequest
) -> None:
    applied = _catch_up_in_two_threads(store, batch=1000)

    assert sorted(applied) == [0, store.head().position]
    assert _activity_totals(store.engine) == _ledger_totals(store)


# -- inline projections refuse what would break the CA -----------------------------------


@pytest.fixture
def ca(store: EventStore) -> Workload:
    """A small CA: initialized, one intermediate, one provisioner, one certificate."""
    work = Workload(random.Random(7))
    store.append(
        [
            work.initialized(),
            work.key_activated("x509_intermediate"),
            work.provisioner_added("ops-admin"),
            work.issued(),
        ]
    )
    return work


def _refused(store: EventStore, events: list[NewEvent], match: str) -> None:
    inline = Projections().inline
    before = (store.count(), store.head(), [snapshot(store.engine, p) for p in inline])
    with pytest.raises(ProjectionConflict, match=match):
        store.append(events)
    assert (store.count(), store.head(), [snapshot(store.engine, p) for p in inline]) == before


def test_issuing_a_serial_twice_is_refused_and_writes_nothing(
    store: EventStore, ca: Workload
) -> None:
    _refused(store, [ca.issued(ca.serials[0])], "already issued")


def test_revoking_an_unknown_serial_is_refused_and_writes_nothing(
    store: EventStore, ca: Workload
) -> None:
    _refused(store, [ca.revoked("12345678901234567890")], "unknown or already revoked")


def test_revoking_a_certificate_twice_is_refused_and_writes_nothing(
    store: EventStore, ca: Workload
) -> None:
    store.append([ca.revoked(ca.serials[0])])
    _refused(store, [ca.revoked(ca.serials[0])], "unknown or already revoked")


def test_a_second_provisioner_with_a_taken_name_is_refused_and_writes_nothing(
    store: EventStore, ca: Workload
) -> None:
    _refused(store, [ca.provisioner_added("ops-admin")], "already exists")


def test_a_token_spent_once_is_refused_the_second_time_and_writes_nothing(
    store: EventStore, ca: Workload
) -> None:
    spent = X509Issued.from_recorded(next(store.read(types=[X509Issued.TYPE]))).token_id
    assert spent
    _refused(store, [ca.revoked(ca.serials[0], token_id=spent)], "token already used")


def test_a_revoked_ssh_certificate_cannot_renew_or_be_revoked_again_and_nothing_is_written(
    store: EventStore, ca: Workload
) -> None:
    host = ca.ssh_issued("host")
    serial = ca.ssh_serials[-1]
    store.append([host, ca.ssh_revoked(serial)])
    _refused(store, [ca.ssh_issued("host", renewed_from=serial)], "has been revoked")
    _refused(store, [ca.ssh_revoked(serial)], "already revoked")
    _refused(store, [ca.ssh_revoked("4242")], "never issued")
    again = dataclasses.replace(SSHIssued.from_payload(host.data), token_id=None)
    _refused(store, [again.to_new_event()], "already issued")


def test_a_serial_revoked_without_being_issued_cannot_be_revoked_again_and_nothing_is_written(
    store: EventStore, ca: Workload
) -> None:
    serial = "98765432109876543210"
    store.append([ca.revoked_unissued(serial)])
    _refused(store, [ca.revoked_unissued(serial)], "already revoked")
    _refused(store, [ca.revoked(serial)], "unknown or already revoked")
    store.append([ca.ssh_revoked_unissued("4242")])
    _refused(store, [ca.ssh_revoked_unissued("4242")], "already revoked")
    _refused(store, [ca.ssh_revoked("4242")], "unknown or already revoked")


def test_a_serial_this_ledger_issued_is_not_revoked_as_never_issued_and_nothing_is_written(
    store: EventStore, ca: Workload
) -> None:
    _refused(store, [ca.revoked_unissued(ca.serials[0])], "was issued here")
    store.append([ca.ssh_issued("host")])
    _refused(store, [ca.ssh_revoked_unissued(ca.ssh_serials[-1])], "was issued here")


def test_a_serial_revoked_without_being_issued_is_never_issued_later(
    store: EventStore, ca: Workload
) -> None:
    # Issuance appends expecting the serial's stream to be fresh (x509_issuance,
    # ssh_issuance): the revocation is on it already, so the ledger refuses the
    # certificate, and a revoked serial never reads as valid.
    store.append([ca.revoked_unissued("555"), ca.ssh_revoked_unissued("556")])
    x509 = ca.issued("555")
    host = dataclasses.replace(SSHIssued.from_payload(ca.ssh_issued("host").data), serial="556")
    count = store.count()
    with pytest.raises(ConcurrencyConflict):
        store.append([x509], expected={"x509/555": 0})
    with pytest.raises(ConcurrencyConflict):
        store.append([host.to_new_event()], expected={host.stream: 0})
    assert store.count() == count


def test_one_refused_event_refuses_its_whole_append(store: EventStore, ca: Workload) -> None:
    fresh = ca.issued()
    fresh_serial = ca.serials[-1]
    _refused(store, [fresh, ca.issued(ca.serials[0])], "already issued")
    with store.engine.connect() as connection:
        assert (
            connection.execute(
                select(certificates.c.serial).where(certificates.c.serial == fresh_serial)
            ).first()
            is None
        )


# -- a property: any sequence of issues and revocations ----------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("issue"), st.integers(1, 2**128 - 1)),
        st.tuples(st.just("revoke"), st.integers(0, 10**6)),
    ),
    max_size=40,
)


@settings(max_examples=15, deadline=None)
@given(operations)
def test_replay_equals_live_for_any_sequence_of_issues_and_revocations(
    ops: list[tuple[str, int]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        engine = create_engine(f"sqlite:///{Path(directory) / 'ledger.sqlite'}")
        try:
            migrations.upgrade(engine)
            store = EventStore(engine, inline=Projections().inline_applier())
            work = Workload(random.Random(0))
            store.append([work.key_activated("x509_intermediate")])
            revocations = 0
            for kind, number in ops:
                if kind == "issue":
                    if str(number) in work.serials:
                        continue  # a reused serial is refused: see the tests above
                    store.append([work.issued(str(number))])
                else:
                    valid = [s for s in work.serials if s not in work.revoked_serials]
                    if not valid:
                        continue
                    store.append([work.revoked(valid[number % len(valid)])])
                    revocations += 1
            projection = Projections().get("certificates")
            live = snapshot(engine, projection)

            Projections().rebuild(store, projection)

            assert snapshot(engine, projection) == live
            assert len(live["certificates"]) == len(work.serials)
            status = list(certificates.columns).index(certificates.c.status)
            revoked = [row for row in live["certificates"] if row[status] == "revoked"]
            assert len(revoked) == revocations
        finally:
            engine.dispose()
