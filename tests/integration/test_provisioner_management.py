"""Provisioner changes are events: every running instance honours them on its next request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joserfc.jwk import ECKey
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

from ca.provisioners.jwk_keys import decrypt_provisioner_key


def _key(ca: CAHome, name: str, password: bytes) -> tuple[ECKey, str]:
    data = ca.provisioner(name)
    key = decrypt_provisioner_key(data["encrypted_key"], password, name=name)
    assert isinstance(key, ECKey)
    return key, str(data["key"]["kid"])


def _sign(running: RunningCA, key: ECKey, kid: str, issuer: str, **body: str) -> int:
    response, _ = request_certificate(
        running, "svc.example", key=key, kid=kid, issuer=issuer, **body
    )
    return response.status_code


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, module_ca_database: str | None
) -> tuple[CAHome, RunningCA, RunningCA]:
    ca = init_ca(tmp_path_factory.mktemp("prov"), database=module_ca_database)
    first = start_ca(ca)
    second = start_ca(ca, port=free_port())
    yield ca, first, second  # type: ignore[misc]
    first.stop()
    second.stop()


def test_add_update_and_remove_reach_every_instance_on_the_next_request(
    setup: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    ca, first, second = setup
    password = tmp_path / "web.pw"
    password.write_bytes(b"web-provisioner-password")
    out = ledgerca("provisioner", "add", "web", "--password-file", str(password), home=ca.home)
    assert "added" in out.stdout
    key, kid = _key(ca, "web", b"web-provisioner-password")
    assert _sign(second, key, kid, "web") == 201

    ledgerca(
        "provisioner",
        "update",
        "web",
        "--claims",
        '{"maxTLSCertDuration": "1h", "defaultTLSCertDuration": "1h"}',
        home=ca.home,
    )
    assert _sign(first, key, kid, "web", notAfter="2h") == 403
    assert _sign(second, key, kid, "web", notAfter="30m") == 201

    listing = ledgerca("provisioner", "list", "--json", home=ca.home).stdout
    listed = [json.loads(line) for line in listing.splitlines()]
    assert [p["name"] for p in listed] == ["admin", "web"]
    assert listed[1]["claims"]["maxTLSCertDuration"] == "1h"

    ledgerca("provisioner", "remove", "web", home=ca.home)
    assert _sign(first, key, kid, "web") == 401
    assert _sign(second, key, kid, "web") == 401
    actors = [e.actor for e in ledger_events(ca.home) if e.type == "provisioner.removed"]
    assert actors[-1]["cli"] == "provisioner remove"


@pytest.mark.parametrize(
    "args, message",
    [
        (["add", "admin", "--password-file", "{pw}"], "already exists"),
        (["add", "x", "--password-file", "{pw}", "--claims", "{not json"], "not valid JSON"),
        (
            ["add", "x", "--password-file", "{pw}", "--claims", '{"maxTLSCertDuration": "soon"}'],
            "invalid duration",
        ),
        (
            ["add", "x", "--password-file", "{pw}", "--claims", '{"minTLSCertDuration": "48h"}'],
            "must not be greater",
        ),
        (["add", "x", "--type", "OIDC", "--password-file", "{pw}"], "not supported"),
        (["update", "nosuch", "--claims", "{}"], "no provisioner named"),
        (["update", "admin", "--rename", "admin2", "--claims", '{"bogus": 1}'], "bogus"),
        (["remove", "nosuch"], "no provisioner named"),
    ],
)
def test_bad_changes_are_refused_with_one_line_and_write_nothing(
    setup: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path, args: list[str], message: str
) -> None:
    ca = setup[0]
    password = tmp_path / "x.pw"
    password.write_bytes(b"x-password")
    before = event_count(ca)
    result = ledgerca("provisioner", *[a.replace("{pw}", str(password)) for a in args],
                      home=ca.home, check=False)  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.startswith("ledgerca: error:") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert event_count(ca) == before


def test_a_broken_template_is_refused_before_it_reaches_the_ledger(
    setup: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    ca = setup[0]
    template = tmp_path / "broken.tpl"
    template.write_text('{"subject": {"commonName": {{ token.sub }}, "isCA": }')
    password = tmp_path / "t.pw"
    password.write_bytes(b"t-password")
    before = event_count(ca)
    result = ledgerca("provisioner", "add", "templated", "--password-file", str(password),
                      "--x509-template", str(template), home=ca.home, check=False)  # fmt: skip
    assert result.returncode != 0 and "template" in result.stderr
    assert event_count(ca) == before
