"""The actor every event records, built in one place, and the one map from ledger refusals
to CA errors."""

from __future__ import annotations

import pytest

from ca.authority.recorder import Actor, RequestInfo, refusals
from ca.errors import AuthError, NotFound
from projections.certificates import UnknownCertificate
from projections.used_tokens import TokenAlreadyUsed


def test_an_actor_records_what_is_known_and_leaves_out_the_rest() -> None:
    request = RequestInfo("req-1", remote_address="10.0.0.7", client_request_id="client-9")
    actor = Actor(
        "host:1", request, provisioner_id="p-1", provisioner="web", token_id="t-1",
        extra={"mtls_serial": "42"},
    )  # fmt: skip
    assert actor.record() == {
        "instance": "host:1",
        "request_id": "req-1",
        "client_request_id": "client-9",
        "remote_address": "10.0.0.7",
        "provisioner_id": "p-1",
        "provisioner": "web",
        "token_id": "t-1",
        "mtls_serial": "42",
    }
    assert Actor("host:1", RequestInfo("req-2")).record() == {
        "instance": "host:1",
        "request_id": "req-2",
    }


def test_a_spent_token_is_a_401_everywhere() -> None:
    with pytest.raises(AuthError, match="token already used"), refusals():
        raise TokenAlreadyUsed("t-1")


def test_a_use_case_adds_its_own_refusals() -> None:
    mapping = {UnknownCertificate: lambda: NotFound("not issued here")}
    with pytest.raises(NotFound, match="not issued here"), refusals(mapping):
        raise UnknownCertificate("9")


def test_other_errors_pass_through() -> None:
    with pytest.raises(ValueError), refusals():
        raise ValueError("unrelated")
