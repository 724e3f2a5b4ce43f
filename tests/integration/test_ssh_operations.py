"""Operating the SSH CA: rotating its host key under running instances, and restricting
`/ssh/hosts` to authenticated callers."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_ssh_private_key
from support.ca_server import (
    RunningCA,
    event_count,
    init_ca,
    ledgerca,
    request_certificate,
    start_ca,
)
from support.ssh import certificate_line, keygen, needs_ssh_keygen, sign_ssh

from ca.client.ssh import sshpop_token
from ca.ssh.certificates import parse_certificate

pytestmark = needs_ssh_keygen


def _signer(line: str) -> str:
    key = parse_certificate(line).signature_key()
    return (
        key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .split()[1]
        .decode()
    )


def _roots(running: RunningCA, path: str) -> dict[str, list[str]]:
    with running.client() as client:
        answer = client.get(path)
    assert answer.status_code == 200
    result: dict[str, list[str]] = answer.json()
    return result


def test_after_a_host_key_rotation_new_certificates_use_the_new_key_and_old_ones_renew(
    tmp_path: Path,
) -> None:
    ca = init_ca(tmp_path / "ca")
    ledgerca("ssh", "init", "--password-file", str(ca.password_file), home=ca.home)
    running = start_ca(ca)
    try:
        key = keygen(tmp_path, "host", "ecdsa")
        old = certificate_line(
            sign_ssh(running, key, key_id="h", principals=["h.internal"], cert_type="host")
        )
        old_key = _roots(running, "/ssh/roots")["hostKey"]
        ledgerca("ssh", "rotate", "host", "--password-file", str(ca.password_file), home=ca.home)

        new_key = _roots(running, "/ssh/roots")["hostKey"]
        assert new_key != old_key and len(new_key) == 1
        assert set(_roots(running, "/ssh/federation")["hostKey"]) == {*old_key, *new_key}
        fresh = certificate_line(
            sign_ssh(running, key, key_id="h", principals=["h.internal"], cert_type="host")
        )
        assert _signer(old) == old_key[0] and _signer(fresh) == new_key[0]

        token = sshpop_token(
            old,
            load_ssh_private_key(key.read_bytes(), password=None),
            audience=f"{running.url}/1.0/ssh/renew",
            subject=str(parse_certificate(old).serial),
            now=datetime.now(UTC),
        )
        with running.client() as client:
            renewed = client.post("/1.0/ssh/renew", json={"ott": token})
        assert _signer(certificate_line(renewed)) == new_key[0]
    finally:
        running.stop()


def test_hosts_can_be_restricted_to_callers_with_a_client_certificate(tmp_path: Path) -> None:
    ca = init_ca(tmp_path / "ca")
    ledgerca("ssh", "init", "--password-file", str(ca.password_file), home=ca.home)
    config = ca.home / "config" / "ca.toml"
    text = config.read_text()
    assert "ssh_hosts_require_auth = false" in text  # init writes the default
    config.write_text(
        text.replace("ssh_hosts_require_auth = false", "ssh_hosts_require_auth = true")
    )
    running = start_ca(ca)
    try:
        before = event_count(ca)
        with running.client() as client:
            anonymous = client.get("/1.0/ssh/hosts")
            # check-host answers from the same inventory: the same rule (finding 3).
            probed = client.post("/1.0/ssh/check-host", json={"principal": "db.internal"})
        assert anonymous.status_code == 401 and probed.status_code == 401, probed.text
        assert set(anonymous.json()) == {"status", "message"} == set(probed.json())
        assert event_count(ca) == before

        response, private = request_certificate(running, "inventory.internal")
        assert response.status_code == 201
        crt, key = tmp_path / "client.crt", tmp_path / "client.key"
        crt.write_text("".join(response.json()["certChain"]))
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(cafile=str(ca.root))
        context.load_cert_chain(crt, key)
        with httpx.Client(base_url=running.url, verify=context, timeout=30) as client:
            authenticated = client.get("/1.0/ssh/hosts")
            checked = client.post("/1.0/ssh/check-host", json={"principal": "db.internal"})
        assert authenticated.status_code == 200 and authenticated.json() == {"hosts": []}
        assert checked.status_code == 200 and checked.json() == {"exists": False}
    finally:
        running.stop()
