"""The certificate inventory: `certificates` with issuance times, filtered, in issuance order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger import EventStore, NewEvent, format_time
from projections import events as ev
from projections.inventory import issued_certificates

START = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
NOW = START + timedelta(days=2)
REVOKED_AT = START + timedelta(hours=4)


def issued(serial: str, *, provisioner: str, lifetime: timedelta) -> NewEvent:
    return ev.X509Issued(
        serial=serial,
        certificate="-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        subject=f"CN=host-{serial}.internal",
        sans=(ev.SAN("dns", f"host-{serial}.internal"),),
        not_before=format_time(START),
        not_after=format_time(START + lifetime),
        provisioner=ev.ProvisionerRef(f"id-{provisioner}", provisioner, "JWK"),
        issuer_key_id="ab" * 32,
    ).to_new_event()


def revoked(serial: str) -> NewEvent:
    return ev.X509Revoked(
        serial=serial, reason_code=1, reason="keyCompromise", revoked_at=format_time(REVOKED_AT)
    ).to_new_event()


def history(store: EventStore) -> list[datetime]:
    """Serial 1 expired (ops), 2 valid (ops), 3 revoked (web), 4 valid (web); an hour apart."""
    times = iter(START + timedelta(hours=n) for n in range(10))
    store.clock = lambda: next(times)
    store.append([issued("1", provisioner="ops", lifetime=timedelta(hours=1))])
    store.append([issued("2", provisioner="ops", lifetime=timedelta(days=30))])
    store.append([issued("3", provisioner="web", lifetime=timedelta(days=30))])
    store.append([issued("4", provisioner="web", lifetime=timedelta(days=30))])
    store.append([revoked("3")])
    return [START + timedelta(hours=n) for n in range(5)]


def serials(store: EventStore, **filters: Any) -> list[str]:
    with store.engine.connect() as connection:
        return [r.serial for r in issued_certificates(connection, now=NOW, **filters)]


def test_every_certificate_in_issuance_order_with_when_it_was_issued(store: EventStore) -> None:
    times = history(store)
    with store.engine.connect() as connection:
        rows = list(issued_certificates(connection, now=NOW, batch=2))
    assert [r.serial for r in rows] == ["1", "2", "3", "4"]
    assert [r.issued_at for r in rows] == [format_time(t) for t in times[:4]]
    third = rows[2]
    assert (third.status, third.provisioner_name) == ("revoked", "web")
    assert third.revoked_at == format_time(REVOKED_AT)
    assert third.subject == "CN=host-3.internal"
    assert third.sans == '[{"type":"dns","value":"host-3.internal"}]'


def test_filters_by_provisioner_status_and_issuance_time(store: EventStore) -> None:
    times = history(store)
    assert serials(store, provisioner="ops") == ["1", "2"]
    assert serials(store, status="revoked") == ["3"]
    assert serials(store, status="valid") == ["2", "4"]
    assert serials(store, status="expired") == ["1"]
    assert serials(store, since=times[1], until=times[2]) == ["2", "3"]
    assert serials(store, provisioner="web", status="valid", since=times[3]) == ["4"]
    assert serials(store, provisioner="nobody") == []
