"""The KRL as OpenSSH reads it: `ssh-keygen -Q` says REVOKED exactly for the listed serials
of the listed CA key."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from support.ssh import NOW, SSH_KEYGEN, make_certificate, needs_ssh_keygen

from ca.ssh.certificates import certificate_line
from ca.ssh.keys import wire_b64
from ca.ssh.krl import ANY_CA, KRL_MAGIC, build_krl

pytestmark = needs_ssh_keygen


def _blob(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return base64.b64decode(wire_b64(key.public_key()))


def _query(krl: Path, cert: Path) -> bool:
    """True when ssh-keygen finds `cert` revoked by `krl`."""
    assert SSH_KEYGEN is not None
    result = subprocess.run(
        [SSH_KEYGEN, "-Q", "-f", str(krl), str(cert)], capture_output=True, text=True
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 1 and "REVOKED" in result.stdout


@pytest.mark.parametrize("serials", [[1], [1, 2**64 - 1], [2**63, 7, 7, 99]])
def test_ssh_keygen_finds_exactly_the_listed_serials_of_the_listed_ca_revoked(
    tmp_path: Path, serials: list[int]
) -> None:
    user_ca = ec.generate_private_key(ec.SECP256R1())
    host_ca = ed25519.Ed25519PrivateKey.generate()
    subject = ed25519.Ed25519PrivateKey.generate()
    krl = tmp_path / "krl"
    krl.write_bytes(
        build_krl({_blob(user_ca): serials, _blob(host_ca): [5]}, version=9, generated=NOW)
    )
    cases = {
        ("user", serials[0]): True,
        ("user", serials[-1]): True,
        ("user", 4242): False,
        ("host", 5): True,
        ("host", serials[0]): serials[0] == 5,
    }
    for (which, serial), revoked in cases.items():
        ca = user_ca if which == "user" else host_ca
        cert = tmp_path / f"{which}-{serial}-cert.pub"
        cert.write_text(certificate_line(make_certificate(ca, subject, serial=serial)) + "\n")
        assert _query(krl, cert) is revoked, (which, serial)


def test_a_serial_under_any_ca_is_revoked_whichever_ca_key_signed_it(tmp_path: Path) -> None:
    # PROTOCOL.krl: an empty ca_key makes the section apply to every CA (serials revoked
    # without being issued here have no known CA key).
    ours, other = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    subject = ed25519.Ed25519PrivateKey.generate()
    krl = tmp_path / "krl"
    krl.write_bytes(build_krl({ANY_CA: [77], _blob(ours): [5]}, version=3, generated=NOW))
    for name, ca, serial, revoked in [
        ("ours", ours, 77, True),
        ("other", other, 77, True),
        ("ours", ours, 5, True),
        ("other", other, 5, False),
        ("ours", ours, 78, False),
    ]:
        cert = tmp_path / f"{name}-{serial}-cert.pub"
        cert.write_text(certificate_line(make_certificate(ca, subject, serial=serial)) + "\n")
        assert _query(krl, cert) is revoked, (name, serial)


def test_an_empty_krl_is_valid_and_revokes_nothing(tmp_path: Path) -> None:
    ca = ec.generate_private_key(ec.SECP256R1())
    krl = tmp_path / "krl"
    data = build_krl({}, version=0, generated=NOW, comment="empty")
    assert data.startswith(KRL_MAGIC)
    krl.write_bytes(data)
    cert = tmp_path / "c-cert.pub"
    cert.write_text(certificate_line(make_certificate(ca, ca, serial=1)) + "\n")
    assert _query(krl, cert) is False
    assert SSH_KEYGEN is not None
    listed = subprocess.run(
        [SSH_KEYGEN, "-Q", "-l", "-f", str(krl)], capture_output=True, text=True
    )
    assert "KRL version 0" in listed.stdout and "empty" in listed.stdout
