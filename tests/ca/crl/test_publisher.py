"""The CRL publisher against a real ledger (SQLite and PostgreSQL), with a fake clock.

It publishes when the issuer has no CRL, after each revocation, and when two thirds of the
CRL's life have passed — and never twice under one number, however many instances race.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine

import migrations
from ca.authority.state import ActiveKey
from ca.config import CRLSettings
from ca.crl.publisher import CRLPublisher
from ca.crl.records import latest_crl
from ca.keys.ids import key_id
from ledger import EventStore, RecordedEvent, create_engine, format_time
from projections.events import CRLPublished, X509Issued, X509Revoked, crl_stream
from projections.runner import Projections

START = datetime(2031, 3, 1, 9, 0, 0, tzinfo=UTC)
IDP = "https://ca.example.test/1.0/crl"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Ledger:
    """A migrated database, an issuer, and helpers to issue and revoke certificates."""

    def __init__(self, engine: Engine, hierarchy: Any) -> None:
        self.engine = engine
        self.store = EventStore(engine, inline=Projections().inline_applier())
        self.hierarchy = hierarchy
        certificate = hierarchy.intermediate
        self.issuer = ActiveKey(
            key_id=key_id(certificate.public_key()),
            role="x509_intermediate",
            certificate=certificate,
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
            key_ref={"type": "file", "path": "unused"},
        )
        self.next_serial = 1000

    def issue(self, *, not_after: datetime, issuer_key_id: str | None = None) -> str:
        self.next_serial += 1
        serial = str(self.next_serial)
        self.store.append(
            [
                X509Issued(
                    serial=serial,
                    certificate="-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
                    subject=f"CN=host-{serial}",
                    sans=(),
                    not_before=format_time(not_after - timedelta(hours=24)),
                    not_after=format_time(not_after),
                    provisioner=None,
                    issuer_key_id=issuer_key_id or self.issuer.key_id,
                ).to_new_event()
            ]
        )
        return serial

    def revoke(self, serial: str, reason_code: int = 1, at: datetime = START) -> int:
        (recorded,) = self.store.append(
            [
                X509Revoked(
                    serial=serial,
                    reason_code=reason_code,
                    reason="test",
                    revoked_at=format_time(at),
                ).to_new_event()
            ]
        )
        return recorded.position

    def publisher(self, clock: Clock, **settings: Any) -> CRLPublisher:
        return CRLPublisher(
            engine=self.engine,
            appender=self.store,
            active_issuer=lambda: self.issuer,
            signing_key=lambda _key: self.hierarchy.intermediate_key,
            settings=CRLSettings(**settings),
            idp_url=IDP,
            actor={"instance": "test"},
            clock=clock,
        )

    def published(self) -> list[RecordedEvent]:
        return [e for e in self.store.read(types=[CRLPublished.TYPE])]


def _ledger(url: str, hierarchy: Any) -> Iterator[Ledger]:
    engine = create_engine(url)
    migrations.upgrade(engine)
    yield Ledger(engine, hierarchy)
    engine.dispose()


@pytest.fixture
def ledger(sqlite_url: str, hierarchy: Any) -> Iterator[Ledger]:
    """Clock logic: one backend is enough."""
    yield from _ledger(sqlite_url, hierarchy)


@pytest.fixture
def any_ledger(db_url: str, hierarchy: Any) -> Iterator[Ledger]:
    """What depends on storage (reads, numbering races): every backend."""
    yield from _ledger(db_url, hierarchy)


def crl_in(event: RecordedEvent) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(base64.b64decode(event.data["der"]))


def serials(event: RecordedEvent) -> set[str]:
    return {str(r.serial_number) for r in crl_in(event)}


def test_the_first_pass_publishes_crl_number_one_and_the_next_pass_nothing(
    ledger: Ledger,
) -> None:
    clock = Clock()
    publisher = ledger.publisher(clock)
    first = publisher.check()
    assert first is not None
    assert first.stream == crl_stream(ledger.issuer.key_id)
    assert first.data["number"] == first.version == 1
    assert first.data["entries"] == 0
    assert first.data["this_update"] == format_time(START)
    assert first.data["next_update"] == format_time(START + timedelta(hours=24))
    assert first.actor["reason"] == "none published yet"
    crl = crl_in(first)
    assert crl.is_signature_valid(ledger.hierarchy.intermediate.public_key())
    assert publisher.check() is None
    assert len(ledger.published()) == 1


def test_a_revocation_is_published_at_once_with_the_next_number(any_ledger: Ledger) -> None:
    clock = Clock()
    publisher = any_ledger.publisher(clock)
    publisher.check()
    serial = any_ledger.issue(not_after=START + timedelta(hours=5))
    position = any_ledger.revoke(serial, reason_code=1)
    clock.now += timedelta(seconds=1)
    event = publisher.check()
    assert event is not None
    assert event.data["number"] == 2
    assert event.data["revoked_through"] >= position
    assert event.actor["reason"] == "revocation"
    assert serials(event) == {serial}
    assert publisher.check() is None


def test_the_projection_holds_exactly_the_latest_published_crl(any_ledger: Ledger) -> None:
    clock = Clock()
    publisher = any_ledger.publisher(clock)
    publisher.check()
    any_ledger.revoke(any_ledger.issue(not_after=START + timedelta(hours=5)))
    event = publisher.check()
    assert event is not None
    with any_ledger.engine.connect() as connection:
        latest = latest_crl(connection, any_ledger.issuer.key_id)
    assert latest is not None
    assert latest.number == 2
    assert latest.der == base64.b64decode(event.data["der"])
    assert latest.revoked_through == event.data["revoked_through"]
    assert latest.published_position == event.position


def test_without_generate_on_revoke_a_revocation_waits_for_the_renewal(ledger: Ledger) -> None:
    clock = Clock()
    publisher = ledger.publisher(clock, generate_on_revoke=False)
    publisher.check()
    serial = ledger.issue(not_after=START + timedelta(days=2))
    ledger.revoke(serial)
    clock.now += timedelta(hours=15, minutes=59)
    assert publisher.check() is None
    clock.now += timedelta(minutes=1)
    event = publisher.check()
    assert event is not None and event.actor["reason"] == "renewal"
    assert serials(event) == {serial}


def test_a_crl_is_renewed_when_two_thirds_of_its_life_have_passed(ledger: Ledger) -> None:
    clock = Clock()
    publisher = ledger.publisher(clock, cache_duration="6h")
    publisher.check()
    clock.now = START + timedelta(hours=4) - timedelta(seconds=1)
    assert publisher.check() is None
    clock.now = START + timedelta(hours=4)
    renewed = publisher.check()
    assert renewed is not None and renewed.data["number"] == 2
    assert renewed.data["next_update"] == format_time(clock.now + timedelta(hours=6))


def test_an_explicit_renew_period_overrides_two_thirds(ledger: Ledger) -> None:
    clock = Clock()
    publisher = ledger.publisher(clock, cache_duration="6h", renew_period="1h")
    publisher.check()
    clock.now = START + timedelta(hours=1)
    assert publisher.check() is not None


def test_a_restarted_publisher_carries_on_from_the_ledger(ledger: Ledger) -> None:
    clock = Clock()
    ledger.publisher(clock).check()
    ledger.revoke(ledger.issue(not_after=START + timedelta(hours=5)))
    ledger.publisher(clock).check()
    restarted = ledger.publisher(clock)
    assert restarted.check() is None
    clock.now += timedelta(hours=16)
    event = restarted.check()
    assert event is not None and event.data["number"] == 3


def test_certificates_expired_more_than_an_hour_ago_drop_out(any_ledger: Ledger) -> None:
    clock = Clock()
    publisher = any_ledger.publisher(clock)
    gone = any_ledger.issue(not_after=START - timedelta(hours=1, seconds=1))
    grace = any_ledger.issue(not_after=START - timedelta(minutes=30))
    live = any_ledger.issue(not_after=START + timedelta(hours=1))
    for serial in (gone, grace, live):
        any_ledger.revoke(serial)
    event = publisher.check()
    assert event is not None
    assert serials(event) == {grace, live}
    assert event.data["entries"] == 2


def test_only_the_issuers_own_revocations_are_listed(ledger: Ledger) -> None:
    clock = Clock()
    mine = ledger.issue(not_after=START + timedelta(hours=5))
    other = ledger.issue(not_after=START + timedelta(hours=5), issuer_key_id="f" * 64)
    ledger.revoke(mine)
    ledger.revoke(other)
    event = ledger.publisher(clock).check()
    assert event is not None and serials(event) == {mine}


def test_a_publisher_that_lost_the_race_for_a_number_publishes_nothing(any_ledger: Ledger) -> None:
    clock = Clock()
    a, b = any_ledger.publisher(clock), any_ledger.publisher(clock)
    assert a.publish(any_ledger.issuer, None) is not None
    assert b.publish(any_ledger.issuer, None) is None  # it read "no CRL yet", too late
    assert b.check() is None  # and then it reads the CRL a published
    assert [e.data["number"] for e in any_ledger.published()] == [1]


def test_many_publishers_racing_through_revocations_never_reuse_a_number(
    any_ledger: Ledger,
) -> None:
    clock = Clock()
    publishers = [any_ledger.publisher(clock) for _ in range(4)]
    serials_issued = [any_ledger.issue(not_after=START + timedelta(hours=5)) for _ in range(12)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(publisher: CRLPublisher) -> None:
        while not stop.is_set():
            try:
                publisher.check()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=run, args=(p,)) for p in publishers]
    for thread in threads:
        thread.start()
    try:
        for serial in serials_issued:
            any_ledger.revoke(serial)
    finally:
        # Let them settle on the last revocation, then stop.
        for _ in range(200):
            last = any_ledger.published()[-1] if any_ledger.published() else None
            if last is not None and serials(last) == set(serials_issued):
                break
            threading.Event().wait(0.02)
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    published = any_ledger.published()
    numbers = [e.data["number"] for e in published]
    assert numbers == list(range(1, len(numbers) + 1))
    assert serials(published[-1]) == set(serials_issued)
    throughs = [e.data["revoked_through"] for e in published]
    assert throughs == sorted(throughs)


def test_a_new_intermediate_gets_its_own_crl_numbered_from_one(
    ledger: Ledger, make_hierarchy: Any
) -> None:
    clock = Clock()
    ledger.publisher(clock).check()
    ledger.hierarchy = make_hierarchy()
    certificate = ledger.hierarchy.intermediate
    ledger.issuer = ActiveKey(
        key_id(certificate.public_key()), "x509_intermediate", certificate, None, {}
    )
    event = ledger.publisher(clock).check()
    assert event is not None
    assert event.stream == crl_stream(ledger.issuer.key_id)
    assert event.data["number"] == 1
