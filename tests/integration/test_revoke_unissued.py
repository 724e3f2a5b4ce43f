"""A serial revoked without being issued by this ledger, as real clients see it.

The scenario of issue 15 gap 6: a certificate signed by our intermediate (or SSH CA key)
before the migration into this ledger — so the ledger has no record of it — is revoked
through `POST /1.0/revoke` / `/1.0/ssh/revoke` of a running `ledgerca serve`. Then
`openssl verify -crl_check` finds it revoked by the CRL, `openssl ocsp` gets RFC 6960's
"revoked" for a non-issued certificate, `openssl ca -gencrl` over our index.txt lists it,
and `ssh-keygen -Q` finds the SSH certificate revoked by the KRL.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey
from support.binaries import OPENSSL, needs_openssl
from support.ca_server import (
    PASSWORD,
    CAHome,
    RunningCA,
    init_ca,
    ledgerca,
    mint_token,
    provisioner_key,
    start_ca,
)
from support.ssh import SSH_KEYGEN, make_certificate, needs_ssh_keygen
from support.waiting import wait_until

from ca.crl.index import openssl_serial
from ca.keys.files import load_private_key
from ca.pki.ocsp import EXTENDED_REVOKE
from ca.ssh.certificates import certificate_line

pytestmark = needs_openssl


@dataclass
class CA:
    home: CAHome
    server: RunningCA
    key: ECKey
    kid: str
    tmp: Path

    def revoke(self, serial: int, path: str = "/1.0/revoke", reason_code: int = 1) -> None:
        token = mint_token(
            self.key, self.kid, subject=str(serial), audience=f"{self.server.url}{path}"
        )
        body = {"serial": str(serial), "ott": token, "reasonCode": reason_code}
        with self.server.client() as http:
            response = http.post(path, json=body)
        assert response.status_code == 200, response.text

    def crl_listing(self, serial: int) -> x509.CertificateRevocationList:
        """The served CRL, once the publisher has signed one listing `serial`."""

        def published() -> x509.CertificateRevocationList | None:
            with self.server.client() as http:
                response = http.get("/1.0/crl")
            if response.status_code != 200:
                return None
            crl = x509.load_der_x509_crl(response.content)
            listed = crl.get_revoked_certificate_by_serial_number(serial) is not None
            return crl if listed else None

        return wait_until(published, 15, f"a CRL listing serial {serial}")

    def intermediate_key(self) -> ec.EllipticCurvePrivateKey:
        key = load_private_key(
            (self.home.home / "secrets" / "intermediate_ca_key").read_bytes(), PASSWORD
        )
        return cast(ec.EllipticCurvePrivateKey, key)

    def migrated_leaf(self, serial: int, crl_url: str) -> Path:
        """A leaf our intermediate signed outside this ledger (before a migration, say),
        pointing at the CRL of the CA it came from: the CRL has no Issuing Distribution
        Point, so it covers the leaf whatever distribution point the leaf names."""
        intermediate = x509.load_pem_x509_certificate(self.home.intermediate.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old.example")]))
            .issuer_name(intermediate.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.CRLDistributionPoints([point]), critical=False)
            .sign(self.intermediate_key(), hashes.SHA256())
        )
        path = self.tmp / f"migrated-{serial}.pem"
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return path


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CA]:
    base = tmp_path_factory.mktemp("unissued")
    home = init_ca(base)
    ledgerca("ssh", "init", "--password-file", str(home.password_file), home=home.home)
    server = start_ca(home)
    try:
        key, kid = provisioner_key(home)
        yield CA(home, server, key, kid, base)
    finally:
        server.stop()


def openssl(*args: str, check: bool = True) -> str:
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, *args], capture_output=True, text=True, timeout=30, check=False
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_openssl_finds_a_certificate_from_before_the_migration_revoked_by_the_crl(
    ca: CA,
) -> None:
    serial = 0x0123_4567_89AB_CDEF_0123_4567_89AB_CDEF
    ca.revoke(serial, reason_code=1)

    crl = ca.crl_listing(serial)
    der = ca.tmp / "crl.der"
    der.write_bytes(crl.public_bytes(serialization.Encoding.DER))
    text = openssl("crl", "-inform", "DER", "-in", str(der), "-noout", "-text")
    entry = text.split(f"Serial Number: {openssl_serial(serial)}", 1)[1].split("Serial Number:", 1)[
        0
    ]
    assert "Key Compromise" in entry

    pem = ca.tmp / "crl.pem"
    pem.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    leaf = ca.migrated_leaf(serial, "http://old-ca.example/crl")
    verdict = openssl(
        "verify", "-crl_check", "-CAfile", str(ca.home.root), "-untrusted",
        str(ca.home.intermediate), "-CRLfile", str(pem), str(leaf), check=False,
    )  # fmt: skip
    assert "certificate revoked" in verdict


def test_openssl_ocsp_gets_revoked_in_rfc_6960s_non_issued_form(ca: CA) -> None:
    serial = 0x0FED_CBA9_8765_4321_0FED_CBA9_8765_4321
    ca.revoke(serial, reason_code=1)
    leaf = ca.migrated_leaf(serial, "https://localhost/1.0/crl")
    response_file = ca.tmp / "ocsp.der"

    output = openssl(
        "ocsp", "-issuer", str(ca.home.intermediate), "-cert", str(leaf),
        "-url", f"{ca.server.url}/ocsp", "-CAfile", str(ca.home.root), "-timeout", "20",
        "-resp_text", "-respout", str(response_file),
    )  # fmt: skip

    assert "Response verify OK" in output
    assert f"{leaf}: revoked" in output
    # RFC 6960 §2.2: certificateHold at 1970-01-01, whatever the revocation recorded.
    assert "Reason: certificateHold" in output
    assert "Revocation Time: Jan  1 00:00:00 1970 GMT" in output
    # ... and the extended revoked definition (§4.4.8): NULL, non-critical, in
    # responseExtensions, never in the SingleResponse (with no CRL entry extensions).
    response = ocsp.load_der_ocsp_response(response_file.read_bytes())
    extension = response.extensions.get_extension_for_oid(EXTENDED_REVOKE)
    assert not extension.critical
    assert cast(Any, extension.value).value == b"\x05\x00"
    assert len(response.single_extensions) == 0


def test_openssl_ocsp_still_says_unknown_for_a_serial_neither_issued_nor_revoked(
    ca: CA,
) -> None:
    leaf = ca.migrated_leaf(0x0BAD_0000_0000_0000_0000_0000_0000_0001, "https://localhost/")
    output = openssl(
        "ocsp", "-issuer", str(ca.home.intermediate), "-cert", str(leaf),
        "-url", f"{ca.server.url}/ocsp", "-CAfile", str(ca.home.root), "-timeout", "20",
    )  # fmt: skip
    assert f"{leaf}: unknown" in output


def test_openssl_ca_over_our_index_txt_lists_the_serial_revoked_without_being_issued(
    ca: CA,
) -> None:
    serial = 0x0AAA_0000_0000_0000_0000_0000_0000_0001
    ca.revoke(serial, reason_code=4)
    index = ca.tmp / "index.txt"
    ledgerca("crl", "index", "--out", str(index), home=ca.home.home)
    (line,) = [
        f for f in index.read_text().splitlines() if f.split("\t")[3] == openssl_serial(serial)
    ]
    status, expiry, revocation, _, _, subject = line.split("\t")
    assert (status, expiry, subject) == ("R", "99991231235959Z", "")
    assert revocation.endswith(",superseded")

    key_file = ca.tmp / "intermediate.key"
    key_file.write_bytes(
        ca.intermediate_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    (ca.tmp / "crlnumber").write_text("01\n")
    config = ca.tmp / "openssl.cnf"
    config.write_text(
        f"[ ca ]\ndefault_ca = ledgerca\n[ ledgerca ]\ndatabase = {index}\n"
        f"crlnumber = {ca.tmp}/crlnumber\ncertificate = {ca.home.intermediate}\n"
        f"private_key = {key_file}\ndefault_md = sha256\ndefault_crl_days = 1\n"
    )
    generated = ca.tmp / "gen.crl"
    openssl("ca", "-gencrl", "-batch", "-config", str(config), "-out", str(generated))
    crl = x509.load_pem_x509_crl(generated.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None


@needs_ssh_keygen
def test_ssh_keygen_finds_an_ssh_certificate_from_our_ca_revoked_by_the_krl(ca: CA) -> None:
    serial = 2**63 + 4242
    ca.revoke(serial, "/1.0/ssh/revoke")
    with ca.server.client() as http:
        response: httpx.Response = http.get("/1.0/ssh/krl")
    assert response.status_code == 200
    krl = ca.tmp / "ssh.krl"
    krl.write_bytes(response.content)

    user_ca = load_private_key(
        (ca.home.home / "secrets" / "ssh_user_ca_key").read_bytes(), PASSWORD
    )
    subject = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)

    def query(certificate_serial: int) -> str:
        certificate = make_certificate(
            cast(Any, user_ca),
            subject,
            serial=certificate_serial,
            cert_type="user",
            principals=("alice",),
            start=now - timedelta(hours=1),
        )
        path = ca.tmp / f"user-{certificate_serial}-cert.pub"
        path.write_text(certificate_line(certificate) + "\n")
        assert SSH_KEYGEN is not None
        result = subprocess.run(
            [SSH_KEYGEN, "-Q", "-f", str(krl), str(path)], capture_output=True, text=True
        )
        return result.stdout + result.stderr

    assert "REVOKED" in query(serial)
    assert "REVOKED" not in query(serial + 1)
    assert SSH_KEYGEN is not None
    listing = subprocess.run(
        [SSH_KEYGEN, "-Q", "-l", "-f", str(krl)], capture_output=True, text=True
    ).stdout
    assert "Wildcard CA" in listing and f"serial: {serial}" in listing
