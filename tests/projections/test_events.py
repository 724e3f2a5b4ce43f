"""Typed events: one payload form per class, byte for byte what the CA has always written,
and older schemas upcast when read."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from ledger import EventStore, NewEvent, Upcasters, canonical_json
from projections.events import (
    EVENTS,
    SAN,
    Event,
    KeyActivated,
    MalformedEvent,
    ProvisionerRef,
    SSHRevoked,
    Stream,
    X509Issued,
    X509Revoked,
    decode,
    event_class,
    upcaster,
)
from projections.events.base import payload_fields, without_none

PROVISIONER = {"id": "p1", "name": "web", "type": "JWK"}

# Payloads as the CA wrote them before the typed events existed: reading and writing them
# again must give the same canonical bytes, or the hash chain of existing ledgers breaks.
STORED: dict[str, dict[str, Any]] = {
    "authority.initialized": {"name": "Example CA", "root_fingerprint": "ab" * 32},
    "authority.key_activated": {
        "key_id": "cd" * 32, "role": "x509_intermediate", "certificate": "-----BEGIN…",
        "public_key": "-----BEGIN PUBLIC KEY…", "fingerprint": "ef" * 32,
        "key_ref": {"type": "file", "path": "secrets/intermediate_ca_key"},
    },
    "authority.key_retired": {"key_id": "cd" * 32, "role": "ssh_host"},
    "provisioner.added": {
        "id": "p1", "name": "web", "type": "JWK", "encrypted_key": None,
        "key": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "kid": "k"},
        "claims": {"maxTLSCertDuration": "72h"}, "options": {"x509": {"template": "{}"}},
    },
    "provisioner.updated": {"id": "p1", "name": "web", "changes": {"name": "web-2"}},
    "provisioner.removed": {"id": "p1", "name": "web"},
    "policy.set": {"scope": "authority", "provisioner_id": None, "policy": None},
    "admin.added": {
        "id": "a1", "subject": "ops", "provisioner_id": "p1", "provisioner_name": "web",
        "type": "SUPER_ADMIN",
    },
    "admin.removed": {"id": "a1", "subject": "ops"},
    "x509.issued": {
        "serial": "123", "certificate": "-----BEGIN…", "subject": "CN=a.internal",
        "sans": [{"type": "dns", "value": "a.internal"}, {"type": "ip", "value": "10.0.0.1"}],
        "not_before": "2031-03-01T00:00:00.000000Z", "not_after": "2031-03-02T00:00:00.000000Z",
        "provisioner": PROVISIONER, "issuer_key_id": "cd" * 32, "token_id": "t1",
        "renewed_from": None, "rekeyed_from": "122",
    },
    "x509.revoked": {
        "serial": "123", "reason_code": 1, "reason": "key lost",
        "revoked_at": "2031-03-01T01:00:00.000000Z", "token_id": "t2",
        "provisioner": PROVISIONER, "mtls": False, "passive": True,
    },
    "x509.revoked_unissued": {
        "serial": "456", "reason_code": 1, "reason": "issued before the migration",
        "revoked_at": "2031-03-01T01:00:00.000000Z", "provisioner": PROVISIONER,
        "token_id": "t5", "passive": True,
    },
    "crl.published": {
        "issuer_key_id": "cd" * 32, "number": 3, "this_update": "2031-03-01T00:00:00.000000Z",
        "next_update": "2031-03-02T00:00:00.000000Z", "revoked_through": 40, "entries": 2,
        "der": "MIIB",
    },
    "ledger.checkpoint": {
        "number": 1, "tree_size": 41, "root_hash": "00" * 32,
        "time": "2031-03-01T00:00:00.000000Z", "key_id": "cd" * 32, "signature": "MEUC",
    },
    "ssh.issued": {
        "serial": "9", "cert_type": "host", "key_id": "node-1", "principals": ["node-1"],
        "valid_after": "2031-03-01T00:00:00.000000Z",
        "valid_before": "2031-03-31T00:00:00.000000Z", "extensions": [],
        "certificate": "ecdsa-sha2-nistp256-cert-v01@openssh.com AAAA",
        "public_key_fingerprint": "SHA256:abc", "provisioner": None, "issuer_key_id": "k",
        "token_id": None, "renewed_from": None, "rekeyed_from": None,
    },
    "ssh.revoked": {
        "serial": "9", "reason_code": 0, "reason": "", "provisioner": None, "token_id": "t3",
        "revoked_at": "2031-03-01T01:00:00.000000Z",
    },
    "ssh.revoked_unissued": {
        "serial": "10", "reason_code": 0, "reason": "", "provisioner": PROVISIONER,
        "token_id": "t6", "revoked_at": "2031-03-01T01:00:00.000000Z",
    },
    "token.spent": {"token_id": "t4", "provisioner": PROVISIONER, "purpose": "admin"},
}  # fmt: skip


def test_there_is_one_stored_example_per_event_class() -> None:
    assert set(STORED) == {cls.TYPE for cls in EVENTS}


@pytest.mark.parametrize("event_type", sorted(STORED))
def test_a_stored_payload_reads_and_writes_back_byte_for_byte(event_type: str) -> None:
    payload = STORED[event_type]
    event = event_class(event_type).from_payload(payload)
    assert event.to_payload() == payload
    assert canonical_json(event.to_new_event().data) == canonical_json(payload)


def test_an_event_names_its_stream_type_and_schema() -> None:
    revoked = X509Revoked.from_payload(STORED["x509.revoked"])
    new = revoked.to_new_event()
    assert (new.stream, new.type, new.schema) == ("x509/123", "x509.revoked", 1)
    assert revoked.provisioner == ProvisionerRef("p1", "web", "JWK")
    issued = X509Issued.from_payload(STORED["x509.issued"])
    assert issued.sans == (SAN("dns", "a.internal"), SAN("ip", "10.0.0.1"))
    assert KeyActivated.from_payload(STORED["authority.key_activated"]).stream == "authority"


def test_an_absent_field_with_a_default_reads_as_the_default() -> None:
    # How tools and early code wrote revocations: without token, provisioner or flags.
    bare = {k: STORED["x509.revoked"][k] for k in ("serial", "reason_code", "reason", "revoked_at")}
    revoked = X509Revoked.from_payload(bare)
    assert (revoked.token_id, revoked.provisioner, revoked.mtls, revoked.passive) == (
        None,
        None,
        False,
        True,
    )


def test_a_missing_required_field_or_an_unknown_type_is_refused() -> None:
    with pytest.raises(MalformedEvent, match="has no 'revoked_at'"):
        SSHRevoked.from_payload({"serial": "9", "reason_code": 0, "reason": ""})
    with pytest.raises(MalformedEvent, match="no event class"):
        event_class("x509.misspelt")


def test_recorded_events_decode_to_the_events_appended(engine: Engine) -> None:
    store = EventStore(engine)  # no projections: the rows need not make sense together
    events = [event_class(t).from_payload(p) for t, p in STORED.items() if t.startswith("x509")]
    store.append([e.to_new_event() for e in events])
    recorded = list(store.read())
    assert [decode(r) for r in recorded] == events
    assert X509Issued.from_recorded(recorded[0]) == events[0]
    with pytest.raises(MalformedEvent, match=r"not x509\.issued"):
        X509Issued.from_recorded(recorded[1])


# -- upcasting ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Renamed(Event):
    """A test event at schema 3: schema 1 called `name` `cn`, schema 2 had no `labels`."""

    TYPE: ClassVar[str] = "test.renamed"
    SCHEMA: ClassVar[int] = 3
    STREAM: ClassVar[Stream] = Stream("test/{name}", "test events")

    name: str
    """A name."""
    labels: tuple[str, ...]
    """Its labels."""


UPCASTS = Upcasters()


@upcaster(Renamed, 1, registry=UPCASTS)
def _cn_is_name(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"name": payload["cn"]}


@upcaster(Renamed, 2, registry=UPCASTS)
def _labels_are_empty(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    return {**payload, "labels": []}


def test_an_old_schema_is_upcast_step_by_step_when_read(engine: Engine) -> None:
    store = EventStore(engine)
    store.append([NewEvent("test/a", Renamed.TYPE, {"cn": "a"}, schema=1)])
    store.append([Renamed(name="b", labels=("x",)).to_new_event()])
    old, new = store.read()
    assert (old.schema, dict(old.data)) == (1, {"cn": "a"})  # the row is never rewritten
    assert new.schema == 3
    assert Renamed.from_payload(old.data, old.schema, upcasters=UPCASTS) == Renamed(
        name="a", labels=()
    )
    assert Renamed.from_payload(new.data, new.schema, upcasters=UPCASTS).labels == ("x",)


def test_a_schema_without_an_upcaster_or_newer_than_the_code_is_refused() -> None:
    with pytest.raises(MalformedEvent, match="no upcaster"):
        Renamed.from_payload({"cn": "a"}, 1)  # the default registry has none for it
    with pytest.raises(MalformedEvent, match="newer than this code"):
        Renamed.from_payload({"name": "a", "labels": []}, 4, upcasters=UPCASTS)
    with pytest.raises(ValueError, match="no schema 4"):
        upcaster(Renamed, 3, registry=UPCASTS)


# -- any event survives the round trip ---------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


def _values(hint: Any) -> st.SearchStrategy[Any]:
    inner, optional = without_none(hint)
    if inner is str:
        values: st.SearchStrategy[Any] = _text
    elif inner is int:
        values = st.integers(-(2**63), 2**63)
    elif inner is bool:
        values = st.booleans()
    elif typing.get_origin(inner) is tuple:
        values = st.lists(_values(typing.get_args(inner)[0]), max_size=3).map(tuple)
    elif typing.get_origin(inner) is Mapping:
        values = st.dictionaries(_text, _text, max_size=3)
    else:
        values = st.builds(inner, **{f.name: _text for f in dataclasses.fields(inner)})
    return st.none() | values if optional else values


_any_event = st.sampled_from(EVENTS).flatmap(
    lambda cls: st.builds(cls, **{f.name: _values(f.hint) for f in payload_fields(cls)})
)


@given(_any_event)
def test_any_event_reads_back_from_its_canonical_payload_unchanged(event: Event) -> None:
    new = event.to_new_event()
    stored = canonical_json(new.data)
    again = type(event).from_payload(json.loads(stored), new.schema)
    assert again == event
    assert canonical_json(again.to_payload()) == stored
