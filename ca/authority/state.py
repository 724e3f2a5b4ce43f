"""What an instance believes, read from the projections and cached by ledger position.

A request starts with one cheap read of the newest state-changing position; only when it
moved is the snapshot reloaded. So a change committed through any instance (a new
provisioner, a rotated intermediate) is honoured by every instance on its next request,
without a restart. Issuance skips even that read and checks the position at commit instead
(`StateCache.cached`, `ledger.Unchanged`).
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field

from cryptography import x509
from sqlalchemy import Connection, Engine, select

from ca.authority.admins import Admin
from ca.authority.admins import fold as fold_admins
from ca.pki.claims import Claims
from ca.policy import NamePolicy
from ca.provisioners.jwk import JWKProvisioner
from ca.provisioners.sshpop import SSHPOP
from ledger.reads import head_position, latest_position, stream_rows
from projections import events as ev
from projections.authority_keys import authority, authority_keys
from projections.policies import policies
from projections.provisioners import provisioners


@dataclass(frozen=True)
class ActiveKey:
    key_id: str
    role: str
    certificate: x509.Certificate | None
    certificate_pem: str | None
    key_ref: dict[str, str]
    public_key_pem: str = ""


@dataclass(frozen=True)
class ProvisionerRecord:
    id: str
    name: str
    type: str
    kid: str | None
    key: dict[str, object]
    encrypted_key: str | None
    claims: dict[str, object]
    options: dict[str, object]
    jwk: JWKProvisioner | None
    sshpop: SSHPOP | None = None

    @property
    def implementation(self) -> JWKProvisioner | SSHPOP | None:
        """What authorizes requests for this provisioner; None for a type this build
        cannot run (it is listed, and refuses nothing it was never asked)."""
        return self.jwk or self.sshpop

    @functools.cached_property
    def parsed_claims(self) -> Claims:
        """The provisioner's claims (X.509 and SSH) over the defaults, read once per snapshot."""
        return Claims.from_json(None, self.claims)


@dataclass(frozen=True)
class Snapshot:
    position: int
    name: str
    root_fingerprint: str
    roots: tuple[ActiveKey, ...]
    intermediates: tuple[ActiveKey, ...]
    provisioners: tuple[ProvisionerRecord, ...]
    admins: tuple[Admin, ...] = ()
    policies: dict[str, NamePolicy] = field(default_factory=dict)
    """Name policies by scope: `authority` or `provisioner/<id>`."""
    by_issuer_kid: dict[tuple[str, str], ProvisionerRecord] = field(default_factory=dict)
    by_kid: dict[str, ProvisionerRecord] = field(default_factory=dict)
    ssh_user_keys: tuple[ActiveKey, ...] = ()
    """Active SSH user CA keys, oldest first; the newest signs."""
    ssh_host_keys: tuple[ActiveKey, ...] = ()

    @property
    def intermediate(self) -> ActiveKey:
        """The intermediate new certificates are signed with: the newest active one."""
        return self.intermediates[-1]


def load_snapshot(connection: Connection) -> Snapshot:
    position = head_position(connection)
    who = connection.execute(select(authority)).first()
    if who is None:
        raise LookupError("the ledger holds no initialized authority")
    keys = connection.execute(
        select(authority_keys)
        .where(authority_keys.c.active.is_(True))
        .order_by(authority_keys.c.activated_position)
    ).all()
    active = [
        ActiveKey(
            key_id=row.key_id,
            role=row.role,
            certificate=(
                x509.load_pem_x509_certificate(row.certificate.encode())
                if row.certificate
                else None
            ),
            certificate_pem=row.certificate,
            key_ref=json.loads(row.key_ref),
            public_key_pem=row.public_key,
        )
        for row in keys
    ]
    records = []
    for row in connection.execute(select(provisioners).order_by(provisioners.c.added_position)):
        jwk = (
            JWKProvisioner.from_row(row.id, row.name, row.key, row.claims, row.options)
            if row.type == "JWK"
            else None
        )
        records.append(
            ProvisionerRecord(
                id=row.id,
                name=row.name,
                type=row.type,
                kid=row.kid,
                key=json.loads(row.key),
                encrypted_key=row.encrypted_key,
                claims=json.loads(row.claims),
                options=json.loads(row.options),
                jwk=jwk,
                sshpop=SSHPOP(row.id, row.name) if row.type == "SSHPOP" else None,
            )
        )
    policy_rows = connection.execute(select(policies.c.scope, policies.c.policy)).all()
    admin_events = stream_rows(connection, ev.ADMINS_STREAM)
    return Snapshot(
        admins=fold_admins((row.type, json.loads(row.data)) for row in admin_events),
        policies={
            str(scope): NamePolicy.from_json(json.loads(text)) for scope, text in policy_rows
        },
        position=position,
        name=who.name,
        root_fingerprint=who.root_fingerprint,
        roots=tuple(k for k in active if k.role == "x509_root"),
        intermediates=tuple(k for k in active if k.role == "x509_intermediate"),
        ssh_user_keys=tuple(k for k in active if k.role == "ssh_user"),
        ssh_host_keys=tuple(k for k in active if k.role == "ssh_host"),
        provisioners=tuple(records),
        by_issuer_kid={(r.name, r.kid): r for r in records if r.kid},
        by_kid={r.kid: r for r in records if r.kid},
    )


STATE_TYPES = (
    ev.AuthorityInitialized.TYPE,
    ev.KeyActivated.TYPE,
    ev.KeyRetired.TYPE,
    ev.ProvisionerAdded.TYPE,
    ev.ProvisionerUpdated.TYPE,
    ev.ProvisionerRemoved.TYPE,
    ev.PolicySet.TYPE,
    ev.AdminAdded.TYPE,
    ev.AdminRemoved.TYPE,
)
"""Event types that change what a snapshot holds; certificates and revocations do not."""


def state_position(connection: Connection) -> int:
    """The position of the newest event that changes a snapshot (0 if none)."""
    return latest_position(connection, STATE_TYPES)


STATE = frozenset(STATE_TYPES)


class StateCache:
    """The newest snapshot, reloaded only when an event that changes it was appended.

    `current` asks one indexed question — the position of the newest state event — so
    issuance alone (which never appends state events) never forces a reload, while a
    provisioner change committed by any instance is seen on the very next request.
    `cached` skips even that question, for callers that check the position at commit
    instead (`ledger.Unchanged`): issuance on the hot path.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # The snapshot and the state position it reflects, swapped together: a reader
        # must never pair a newer position with an older snapshot.
        self._entry: tuple[Snapshot, int] | None = None
        self._lock = threading.Lock()

    def current(self) -> Snapshot:
        return self.current_entry()[0]

    def current_entry(self) -> tuple[Snapshot, int]:
        """The snapshot as of the newest state event, and that event's position."""
        with self.engine.connect() as connection:
            position = state_position(connection)
            entry = self._entry
            if entry is not None and entry[1] == position:
                return entry
            with self._lock:
                entry = self._entry
                if entry is None or entry[1] != position:
                    entry = (load_snapshot(connection), position)
                    self._entry = entry
                return entry

    def cached(self) -> tuple[Snapshot, int]:
        """The snapshot last loaded and its state position, without asking the database
        (loaded on first use). The caller must check the position when it appends."""
        entry = self._entry
        return entry if entry is not None else self.current_entry()
