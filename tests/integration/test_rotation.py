"""Rotating the intermediate: every running instance signs with the new key at once."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.binaries import needs_openssl
from support.ca_server import (
    CAHome,
    RunningCA,
    free_port,
    init_ca,
    ledgerca,
    request_certificate,
    start_ca,
)
from support.cli import ledger_events
from support.waiting import wait_until

from ca.keys.files import load_private_key
from ca.pki.profiles import build_root, sign_intermediate_csr
from ledger import RecordedEvent


def _issue(running: RunningCA, subject: str) -> x509.Certificate:
    return _issue_with_key(running, subject)[0]


def _issue_with_key(
    running: RunningCA, subject: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    response, private = request_certificate(running, subject)
    assert response.status_code == 201, response.text
    return x509.load_pem_x509_certificate(response.json()["crt"].encode()), private


def _renew_over_mtls(
    running: RunningCA,
    leaf: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    stem: Path,
    *,
    wait: float,
) -> x509.Certificate:
    """POST /1.0/renew presenting `leaf`; retried for `wait` seconds while the handshake fails."""
    crt_file, key_file = stem.with_suffix(".crt"), stem.with_suffix(".key")
    crt_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(cafile=str(running.ca.root))
    context.load_cert_chain(crt_file, key_file)
    detail = ""

    def renewed() -> x509.Certificate | None:
        nonlocal detail
        try:
            with httpx.Client(base_url=running.url, verify=context, timeout=10) as client:
                response = client.post("/1.0/renew")
            if response.status_code == 201:
                return x509.load_pem_x509_certificate(response.json()["crt"].encode())
            detail = response.text
        except httpx.HTTPError as exc:
            detail = str(exc)  # the handshake fails while the issuer is not trusted
        return None

    if wait == 0:
        certificate = renewed()
        assert certificate is not None, f"mTLS renewal failed: {detail}"
        return certificate
    try:
        return wait_until(renewed, wait, "an mTLS renewal")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {detail}") from None


def _intermediates(running: RunningCA) -> list[x509.Certificate]:
    with running.client() as client:
        crts = client.get("/intermediates").json()["crts"]
    return [x509.load_pem_x509_certificate(c.encode()) for c in crts]


def _key_events(ca: CAHome) -> list[RecordedEvent]:
    return [event for event in ledger_events(ca.home) if event.stream == "authority"]


@pytest.mark.slow
@needs_openssl
def test_a_rotated_intermediate_signs_the_next_certificate_on_every_instance(
    tmp_path: Path, ca_database: str | None
) -> None:
    ca = init_ca(tmp_path, database=ca_database)
    first = start_ca(ca)
    second = start_ca(ca, port=free_port())
    try:
        before, before_key = _issue_with_key(first, "before.example")
        old_intermediate = _intermediates(first)[0]
        assert before.issuer == old_intermediate.subject
        before.verify_directly_issued_by(old_intermediate)

        out = ledgerca(
            "rotate", "intermediate", "--password-file", str(ca.password_file), home=ca.home
        )
        assert "active" in out.stdout

        # No restart: both instances sign with the new key on their next request.
        for running in (first, second):
            (new_intermediate,) = _intermediates(running)
            assert new_intermediate.serial_number != old_intermediate.serial_number
            after = _issue(running, f"after-{running.port}.example")
            after.verify_directly_issued_by(new_intermediate)
        # A certificate from the new intermediate renews over mTLS within seconds: the
        # running instances add the new intermediate to the client CAs they trust.
        leaf, key = _issue_with_key(first, "mtls-after-rotation.example")
        _renew_over_mtls(first, leaf, key, tmp_path / "m", wait=30)
        # An instance started after the rotation still trusts the retired intermediate's
        # leaves: they renew over mTLS, into the new intermediate.
        third = start_ca(ca, port=free_port())
        try:
            renewed = _renew_over_mtls(third, before, before_key, tmp_path / "b", wait=0)
            renewed.verify_directly_issued_by(new_intermediate)
            assert renewed.subject == before.subject
        finally:
            third.stop()
        events = _key_events(ca)
        assert [e.type for e in events[-2:]] == [
            "authority.key_activated",
            "authority.key_retired",
        ]
        assert events[-1].data["key_id"] == events[2].data["key_id"]  # the first intermediate
    finally:
        first.stop()
        second.stop()
    assert "ledger verified" in ledgerca("ledger", "verify", home=ca.home).stdout
    leaf = tmp_path / "after.pem"
    leaf.write_bytes(after.public_bytes(serialization.Encoding.PEM))
    command = ["openssl", "verify", "-CAfile", str(ca.root)]
    command += ["-untrusted", str(ca.intermediate), str(leaf)]
    subprocess.run(command, check=True, capture_output=True)


def test_rotation_with_an_offline_root_goes_through_a_csr_and_an_import(tmp_path: Path) -> None:
    # A CA whose root key is removed from the machine after init, as the production guide asks.
    ca = init_ca(tmp_path)
    root_key = load_private_key(
        (ca.home / "secrets" / "root_ca_key").read_bytes(), ca.password_file.read_bytes()
    )
    root_cert = x509.load_pem_x509_certificate(ca.root.read_bytes())
    (ca.home / "secrets" / "root_ca_key").unlink()

    refused = ledgerca(
        "rotate",
        "intermediate",
        "--password-file",
        str(ca.password_file),
        home=ca.home,
        check=False,
    )
    assert refused.returncode != 0 and "--csr" in refused.stderr

    csr_path = tmp_path / "rotation.csr"
    ledgerca(
        "rotate",
        "intermediate",
        "--password-file",
        str(ca.password_file),
        "--csr",
        str(csr_path),
        home=ca.home,
    )
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    from datetime import UTC, datetime

    signed = sign_intermediate_csr(
        csr, root_cert=root_cert, root_key=root_key, now=datetime.now(UTC)
    )
    cert_path = tmp_path / "rotation.crt"
    cert_path.write_bytes(signed.public_bytes(serialization.Encoding.PEM))

    # A certificate from some other root is refused and changes nothing.
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_root = build_root(other_key, name="Other", now=datetime.now(UTC))
    wrong = tmp_path / "wrong.crt"
    wrong.write_bytes(
        sign_intermediate_csr(
            csr, root_cert=other_root, root_key=other_key, now=datetime.now(UTC)
        ).public_bytes(serialization.Encoding.PEM)
    )
    before = len(_key_events(ca))
    bad = ledgerca(
        "rotate",
        "intermediate",
        "--password-file",
        str(ca.password_file),
        "--import",
        str(wrong),
        home=ca.home,
        check=False,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len(_key_events(ca)) == before

    ledgerca(
        "rotate",
        "intermediate",
        "--password-file",
        str(ca.password_file),
        "--import",
        str(cert_path),
        home=ca.home,
    )
    running = start_ca(ca)
    try:
        (active,) = _intermediates(running)
        assert active.serial_number == signed.serial_number
        _issue(running, "offline.example").verify_directly_issued_by(signed)
    finally:
        running.stop()
