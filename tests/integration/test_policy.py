"""Name policies are events: set through one instance, enforced by every instance next."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.ca_server import (
    CAHome,
    RunningCA,
    event_count,
    free_port,
    init_ca,
    ledgerca,
    request_certificate,
    start_ca,
)
from support.cli import ledger_events


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, module_ca_database: str | None
) -> Iterator[tuple[CAHome, RunningCA, RunningCA]]:
    ca = init_ca(tmp_path_factory.mktemp("policy"), database=module_ca_database)
    first, second = start_ca(ca), None
    try:
        second = start_ca(ca, port=free_port())
        yield ca, first, second
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _status(running: RunningCA, subject: str) -> int:
    return request_certificate(running, subject)[0].status_code


def test_policies_set_by_the_cli_are_enforced_by_every_instance(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    ca, first, second = pair
    assert _status(second, "svc.example") == 201
    policy = tmp_path / "authority.json"
    policy.write_text(json.dumps({"allow": {"dns": ["*.internal"]}}))
    ledgerca("policy", "set", str(policy), home=ca.home)
    refused = request_certificate(second, "svc.example")[0]
    assert refused.status_code == 403
    assert "svc.example" in refused.json()["message"]
    assert _status(first, "svc.internal") == 201

    deny = tmp_path / "admin.json"
    deny.write_text(json.dumps({"deny": {"dns": ["db.internal"]}}))
    ledgerca("policy", "set", str(deny), "--provisioner", "admin", home=ca.home)
    assert _status(first, "db.internal") == 403  # the provisioner's deny
    assert _status(second, "web.internal") == 201  # both levels allow it
    shown = ledgerca("policy", "show", home=ca.home).stdout
    assert "authority" in shown and "provisioner admin" in shown

    ledgerca("policy", "clear", home=ca.home)
    ledgerca("policy", "clear", "--provisioner", "admin", home=ca.home)
    assert _status(second, "svc.example") == 201
    assert _status(first, "db.internal") == 201
    actors = [e.actor["cli"] for e in ledger_events(ca.home) if e.type == "policy.set"]
    assert actors == ["policy set", "policy set", "policy clear", "policy clear"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not valid JSON"),
        ('{"allow": {"dns": [""]}}', "dns"),
        ('{"allow": {"ip": ["10.0.0.0/33"]}}', "10.0.0.0/33"),
        ('{"allow": {"bogus": ["x"]}}', "bogus"),
    ],
)
def test_a_malformed_policy_is_refused_and_writes_nothing(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path, content: str, message: str
) -> None:
    ca = pair[0]
    policy = tmp_path / "bad.json"
    policy.write_text(content)
    before = event_count(ca)
    result = ledgerca("policy", "set", str(policy), home=ca.home, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("ledgerca: error:") and message in result.stderr
    assert event_count(ca) == before
