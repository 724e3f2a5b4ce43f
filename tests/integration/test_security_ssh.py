"""Finding 6 and the SSH part of finding 9 of the security review, against `ledgerca serve`.

A sign token that leaves its `step.ssh` fields empty grants what step-ca grants: a user
certificate for the token's subject, with that subject as key id. A request may narrow it,
never widen it; principals that OpenSSH would split at commas and key ids with control
characters are refused. Every refusal appends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.ca_server import (
    CAHome,
    RunningCA,
    event_count,
    init_ca,
    ledgerca,
    mint_token,
    provisioner_key,
    start_ca,
)
from support.ssh import certificate_line, keygen, keygen_list, needs_ssh_keygen, public_blob

from ca.ssh.certificates import parse_certificate

pytestmark = needs_ssh_keygen


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA]]:
    ca = init_ca(tmp_path_factory.mktemp("ssh-security"))
    ledgerca("ssh", "init", "--password-file", str(ca.password_file), home=ca.home)
    running = start_ca(ca)
    try:
        yield ca, running
    finally:
        running.stop()


def _sign(running: RunningCA, key: Path, granted: dict[str, Any], **body: Any) -> Any:
    """POST /1.0/ssh/sign for subject alice, the token's `step.ssh` being `granted`."""
    provisioner, kid = provisioner_key(running.ca, "admin")
    token = mint_token(
        provisioner,
        kid,
        subject="alice",
        audience=f"{running.url}/1.0/ssh/sign",
        extra={"step": {"ssh": granted}},
    )
    with running.client() as client:
        return client.post(
            "/1.0/ssh/sign", json={"publicKey": public_blob(key), "ott": token, **body}
        )


def _signed(running: RunningCA, tmp_path: Path) -> Path:
    """A certificate signed for a token with an empty `step.ssh`, written to id-cert.pub."""
    response = _sign(running, keygen(tmp_path, "id"), {})
    assert response.status_code == 201, response.text
    cert = tmp_path / "id-cert.pub"
    cert.write_text(certificate_line(response) + "\n")
    return cert


def test_an_empty_step_ssh_claim_grants_a_user_certificate_for_the_subject_only(
    served: tuple[CAHome, RunningCA], tmp_path: Path
) -> None:
    _, running = served
    shown = keygen_list(_signed(running, tmp_path))
    assert "user certificate" in shown
    assert 'Key ID: "alice"' in shown
    assert shown.split("Principals:")[1].split("Critical Options:")[0].split() == ["alice"]


@pytest.mark.parametrize(
    "granted, body, status, message",
    [
        # Today's code let each of these widen an empty grant.
        ({}, {"principals": ["root"]}, 403, "not granted by the token"),
        ({}, {"principals": ["alice", "root"]}, 403, "not granted by the token"),
        ({}, {"certType": "host", "principals": ["alice"]}, 403, "certType"),
        ({}, {"keyID": "root"}, 403, "keyID"),
        ({"principals": []}, {"principals": ["root"]}, 403, "not granted by the token"),
        # OpenSSH reads principals="alice,root" as two principals.
        ({"principals": ["alice,root"]}, {}, 400, "invalid principal"),
        ({}, {"principals": ["alice,root"]}, 400, "invalid principal"),
        # Key ids reach sshd's log and operators' terminals.
        ({"keyID": "alice\x1b[2J"}, {"keyID": "alice\x1b[2J"}, 400, "invalid key id"),
        ({"keyID": "alice\nroot"}, {}, 400, "invalid key id"),
    ],
)
def test_a_request_cannot_widen_what_the_token_grants_and_nothing_is_written(
    served: tuple[CAHome, RunningCA],
    tmp_path: Path,
    granted: dict[str, Any],
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    ca, running = served
    key = keygen(tmp_path, "id")
    before = event_count(ca)
    response = _sign(running, key, granted, **body)
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["status"] == status
    assert message in answer["message"], json.dumps(answer)
    assert event_count(ca) == before


def test_an_ssh_revocation_reason_with_control_characters_is_refused(
    served: tuple[CAHome, RunningCA], tmp_path: Path
) -> None:
    ca, running = served
    serial = str(parse_certificate(_signed(running, tmp_path).read_text()).serial)
    provisioner, kid = provisioner_key(running.ca, "admin")
    token = mint_token(provisioner, kid, subject=serial, audience=f"{running.url}/1.0/ssh/revoke")
    before = event_count(ca)
    with running.client() as client:
        response = client.post(
            "/1.0/ssh/revoke",
            json={"serial": serial, "ott": token, "reason": "key lost\x1b[1A\rrevoked: ok"},
        )
    assert response.status_code == 400, response.text
    assert "printable" in response.json()["message"]
    assert event_count(ca) == before
