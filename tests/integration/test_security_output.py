"""Finding 9 of the security review: text from clients that reaches operators' terminals.

A revocation reason is refused when it carries control characters, and whatever else a
client managed to put into the ledger (a token id, here) is shown escaped by `ledgerca audit
show`: an escape sequence cannot rewrite the operator's terminal, a newline cannot forge a
line of the story.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cryptography import x509
from support.ca_server import (
    CAHome,
    RunningCA,
    event_count,
    init_ca,
    ledgerca,
    make_csr,
    mint_token,
    provisioner_key,
    start_ca,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA]]:
    ca = init_ca(tmp_path_factory.mktemp("output"))
    running = start_ca(ca)
    try:
        yield ca, running
    finally:
        running.stop()


def _issue(running: RunningCA, subject: str, **claims: str) -> x509.Certificate:
    key, kid = provisioner_key(running.ca)
    token = mint_token(key, kid, subject=subject, audience=f"{running.url}/1.0/sign", extra=claims)
    csr, _ = make_csr(subject)
    with running.client() as client:
        response = client.post("/1.0/sign", json={"csr": csr, "ott": token})
    assert response.status_code == 201, response.text
    return x509.load_pem_x509_certificate(response.json()["crt"].encode())


@pytest.mark.parametrize(
    "reason", ["lost\x1b[2J", "lost\nrevoked: never", "lost\x00", "lost\ud800"]
)
def test_a_revocation_reason_with_control_characters_is_refused_and_nothing_is_written(
    served: tuple[CAHome, RunningCA], reason: str
) -> None:
    ca, running = served
    leaf = _issue(running, "reason.example")
    key, kid = provisioner_key(ca)
    serial = str(leaf.serial_number)
    token = mint_token(key, kid, subject=serial, audience=f"{running.url}/1.0/revoke")
    before = event_count(ca)
    # json.dumps escapes a lone surrogate as \ud800, as a hostile client would send it.
    body = json.dumps({"serial": serial, "ott": token, "reasonCode": 1, "reason": reason})
    with running.client() as client:
        response = client.post(
            "/1.0/revoke", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400, response.text
    assert response.json()["status"] == 400
    assert event_count(ca) == before


def test_audit_show_escapes_control_characters_from_event_data(
    served: tuple[CAHome, RunningCA],
) -> None:
    ca, running = served
    forged = "id\x1b]0;owned\x07\x1b[2K\nrevoked:        position 1 by nobody"
    leaf = _issue(running, "shown.example", jti=forged)
    shown = ledgerca("audit", "show", "--serial", str(leaf.serial_number), home=ca.home).stdout
    assert "\x1b" not in shown and "\x07" not in shown
    assert not any(line.startswith("revoked:") for line in shown.splitlines())
    assert "id\\x1b]0;owned\\x07\\x1b[2K\\nrevoked:" in shown
    assert "token id:" in shown
