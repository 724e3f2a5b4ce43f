"""The SSHPOP provisioner as step-ca has it: a real provisioner, made when the SSH CA is set
up, listed in `/provisioners` (which is where `step ssh renew|rekey|revoke` finds the name
it mints SSHPOP tokens for), renamed, removed and re-added through the ledger; and
`enableSSHCA`, which decides whether a JWK provisioner may sign SSH certificates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_ssh_private_key
from support.ca_server import CAHome, RunningCA, event_count, init_ca, ledgerca, start_ca
from support.cli import ledger_events
from support.ssh import certificate_line, keygen, needs_ssh_keygen, sign_ssh

from ca.client.ssh import sshpop_token
from ca.ssh.certificates import parse_certificate

pytestmark = needs_ssh_keygen


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA]]:
    ca = init_ca(tmp_path_factory.mktemp("sshpop"))
    ledgerca("ssh", "init", "--password-file", str(ca.password_file), home=ca.home)
    running = start_ca(ca)
    try:
        yield ca, running
    finally:
        running.stop()


def _listed(running: RunningCA) -> list[dict[str, object]]:
    with running.client() as client:
        response = client.get("/1.0/provisioners")
    assert response.status_code == 200, response.text
    return list(response.json()["provisioners"])


def _renew(running: RunningCA, cert: str, key: Path, name: str) -> tuple[int, str]:
    """POST /ssh/renew with the token `step ssh renew` mints for the SSHPOP provisioner
    `name`: `iss` its name, the audience's fragment `sshpop/<name>`."""
    token = sshpop_token(
        cert,
        load_ssh_private_key(key.read_bytes(), password=None),
        audience=f"{running.url}/1.0/ssh/renew#sshpop/{name}",
        subject=str(parse_certificate(cert).serial),
        now=datetime.now(UTC),
        issuer=name,
    )
    with running.client() as client:
        response = client.post("/1.0/ssh/renew", json={"ott": token})
    return response.status_code, response.text


def test_ssh_setup_lists_sshpop_and_enables_ssh_on_the_first_provisioner_as_step_ca_does(
    site: tuple[CAHome, RunningCA],
) -> None:
    ca, running = site
    listed = {str(p["name"]): p for p in _listed(running)}
    assert listed["sshpop"] == {"type": "SSHPOP", "name": "sshpop", "claims": {"enableSSHCA": True}}
    assert listed["admin"]["type"] == "JWK"
    assert listed["admin"]["claims"] == {"enableSSHCA": True}
    added = [e.data for e in ledger_events(ca.home) if e.type == "provisioner.added"]
    assert [a["type"] for a in added if a["name"] == "sshpop"] == ["SSHPOP"]


def test_sshpop_renewal_follows_the_provisioner_through_rename_removal_and_re_adding(
    site: tuple[CAHome, RunningCA], tmp_path: Path
) -> None:
    ca, running = site
    key = keygen(tmp_path, "host", "ecdsa")
    cert = certificate_line(
        sign_ssh(running, key, key_id="h", principals=["h.internal"], cert_type="host")
    )
    status, body = _renew(running, cert, key, "sshpop")
    assert status == 201, body
    renewed = next(e for e in reversed(ledger_events(ca.home)) if e.type == "ssh.issued")
    assert renewed.data["provisioner"]["type"] == "SSHPOP"
    assert renewed.data["provisioner"]["name"] == "sshpop"

    ledgerca("provisioner", "update", "sshpop", "--rename", "host-pop", home=ca.home)
    before = event_count(ca)
    status, body = _renew(running, cert, key, "sshpop")
    assert (status, event_count(ca)) == (401, before), body
    assert "host-pop" in [p["name"] for p in _listed(running)]
    assert _renew(running, cert, key, "host-pop")[0] == 201

    ledgerca("provisioner", "remove", "host-pop", home=ca.home)
    before = event_count(ca)
    status, body = _renew(running, cert, key, "host-pop")
    assert (status, event_count(ca)) == (401, before), body
    assert "SSHPOP" not in [p["type"] for p in _listed(running)]

    ledgerca("provisioner", "add", "sshpop", "--type", "SSHPOP", home=ca.home)
    assert _renew(running, cert, key, "sshpop")[0] == 201


def test_a_jwk_provisioner_without_enable_ssh_ca_cannot_sign_ssh_certificates(
    site: tuple[CAHome, RunningCA], tmp_path: Path
) -> None:
    ca, running = site
    ledgerca(
        "provisioner", "add", "x509-only",
        "--password-file", str(ca.provisioner_password_file), home=ca.home,
    )  # fmt: skip
    key = keygen(tmp_path, "id")
    before = event_count(ca)
    refused = sign_ssh(running, key, key_id="u", principals=["u"], provisioner="x509-only")
    assert refused.status_code == 401, refused.text
    assert event_count(ca) == before
    ledgerca(
        "provisioner", "update", "x509-only", "--claims", json.dumps({"enableSSHCA": True}),
        home=ca.home,
    )  # fmt: skip
    allowed = sign_ssh(running, key, key_id="u", principals=["u"], provisioner="x509-only")
    assert allowed.status_code == 201, allowed.text
