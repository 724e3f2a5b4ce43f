"""A certificate's story follows its renewals both ways; the inventory filters; and a
point-in-time view is the ledger's prefix, replayed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.audit import Ledger

from ca.audit.errors import AuditError, NotInLedger
from ca.audit.forensics import Filters, find, story
from ca.authority.pointintime import View, moment_at, moment_of
from ledger import NewEvent, format_time
from projections import events as ev

NOW = datetime.now(UTC)


def issued(serial: str, name: str, **extra: Any) -> NewEvent:
    return NewEvent(
        ev.x509_stream(serial),
        ev.X509Issued.TYPE,
        {
            "serial": serial, "certificate": "stand-in", "subject": f"CN={name}",
            "sans": [{"type": "dns", "value": name}],
            "not_before": format_time(NOW - timedelta(hours=1)),
            "not_after": format_time(NOW + timedelta(hours=extra.pop("hours", 24))),
            "provisioner": {"id": "p1", "name": "web", "type": "JWK"},
            "issuer_key_id": "0" * 64, "token_id": f"token-{serial}",
            "renewed_from": None, "rekeyed_from": None, **extra,
        },
    )  # fmt: skip


def test_the_story_follows_renewals_backwards_and_forwards(ledger: Ledger) -> None:
    store = ledger.store
    store.append([issued("101", "a.internal")], actor={"instance": "h:1", "request_id": "r1"})
    store.append(
        [issued("102", "a.internal", renewed_from="101")],
        actor={"authenticated_by": "mtls", "mtls_serial": "101", "remote_address": "10.0.0.7"},
    )
    store.append([issued("103", "a.internal", rekeyed_from="102")])
    store.append(
        [NewEvent(ev.x509_stream("103"), ev.X509Revoked.TYPE, {"serial": "103", "reason_code": 1,
                  "reason": "key lost", "revoked_at": format_time(NOW)})],
        actor={"cli": "revoke", "user": "ops", "host": "bastion"},
    )  # fmt: skip
    middle = story(ledger.engine, "102", now=NOW)
    assert middle["renewed_from"] == [{"serial": "101", "became": "renewed"}]
    assert middle["renewed_to"] == [{"serial": "103", "from": "rekeyed"}]
    assert middle["issued"]["mtls_serial"] == "101"
    assert middle["issued"]["remote_address"] == "10.0.0.7"
    assert middle["status"] == "valid" and middle["revocation"] is None
    last = story(ledger.engine, hex(103), now=NOW)
    assert [s["serial"] for s in last["renewed_from"]] == ["102", "101"]
    assert last["revocation"]["reason"] == "key lost"
    assert last["revocation"]["by"]["user"] == "ops"
    with pytest.raises(NotInLedger, match="no certificate with serial 999"):
        story(ledger.engine, "999", now=NOW)


def test_find_filters_by_status_san_and_provisioner(ledger: Ledger) -> None:
    ledger.store.append([issued("201", "db.internal"), issued("202", "old.internal", hours=-2)])
    ledger.store.append([issued("203", "web.example.com")])

    def serials(**filters: Any) -> list[str]:
        return [c["serial"] for c in find(ledger.engine, Filters(**filters), now=NOW)]

    assert serials() == ["201", "202", "203"]
    assert serials(status="expired") == ["202"]
    assert serials(status="valid") == ["201", "203"]
    assert serials(san="*.internal") == ["201", "202"]
    assert serials(provisioner="web", san="WEB.*") == ["203"]
    assert serials(since=NOW + timedelta(days=1)) == []


def test_a_view_at_a_position_is_the_ledgers_prefix(ledger: Ledger) -> None:
    ledger.store.append([issued("301", "x.internal")])
    (revoked,) = ledger.store.append(
        [NewEvent(ev.x509_stream("301"), ev.X509Revoked.TYPE, {"serial": "301", "reason_code": 0,
                  "reason": "", "revoked_at": format_time(NOW)})]
    )  # fmt: skip
    before = View(ledger.store, moment_of(ledger.engine, revoked.position - 1))
    after = View(ledger.store, moment_at(ledger.engine, revoked.recorded_at))
    try:
        assert before.summary()["certificates"] == {"valid": 1, "revoked": 0, "expired": 0}
        assert after.summary()["revoked"] == ["301"]
        assert after.summary()["position"] == revoked.position
    finally:
        before.close()
        after.close()
    with pytest.raises(AuditError, match="before the CA existed"):
        moment_at(ledger.engine, datetime(2001, 1, 1, tzinfo=UTC))
