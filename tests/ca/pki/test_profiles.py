"""Root and intermediate profiles: what `step ca init` would produce, and what verifiers accept."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from support.binaries import OPENSSL, needs_openssl

from ca.errors import BadRequest, ConfigError
from ca.keys.files import PrivateKey, generate_private_key
from ca.pki.profiles import (
    build_intermediate_csr,
    build_root,
    check_intermediate,
    fingerprint,
    new_serial,
    pem,
    sign_intermediate,
    sign_intermediate_csr,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TEN_YEARS = timedelta(days=3650)


class Hierarchy:
    """A root and an intermediate of one key type, built once per module."""

    def __init__(self, kty: str) -> None:
        self.kty = kty
        self.root_key = generate_private_key(kty, rsa_bits=2048)
        self.root = build_root(self.root_key, name="Acme", now=NOW)
        self.intermediate_key = generate_private_key(kty, rsa_bits=2048)
        csr = build_intermediate_csr(self.intermediate_key, name="Acme")
        self.intermediate = sign_intermediate_csr(
            csr, root_cert=self.root, root_key=self.root_key, now=NOW
        )


@pytest.fixture(scope="module", params=["EC", "OKP", "RSA"])
def pki(request: pytest.FixtureRequest) -> Hierarchy:
    return Hierarchy(request.param)


@pytest.fixture(scope="module")
def ec_pki() -> Hierarchy:
    return Hierarchy("EC")


T = TypeVar("T", bound=x509.ExtensionType)


def _ext(cert: x509.Certificate, kind: type[T]) -> x509.Extension[T]:
    return cert.extensions.get_extension_for_class(kind)


def test_root_subject_and_issuer_are_the_root_name(pki: Hierarchy) -> None:
    assert pki.root.subject.rfc4514_string() == "CN=Acme Root CA,O=Acme"
    assert pki.root.issuer == pki.root.subject


def test_intermediate_subject_and_issuer(pki: Hierarchy) -> None:
    assert pki.intermediate.subject.rfc4514_string() == "CN=Acme Intermediate CA,O=Acme"
    assert pki.intermediate.issuer == pki.root.subject


def test_root_may_have_one_ca_below_it(pki: Hierarchy) -> None:
    constraints = _ext(pki.root, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 1


def test_intermediate_may_only_issue_leaves(pki: Hierarchy) -> None:
    constraints = _ext(pki.intermediate, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0


@pytest.mark.parametrize("which", ["root", "intermediate"])
def test_ca_key_usage_is_cert_and_crl_signing_only_and_critical(pki: Hierarchy, which: str) -> None:
    usage = _ext(getattr(pki, which), x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert not usage.value.key_encipherment


@pytest.mark.parametrize("which", ["root", "intermediate"])
def test_validity_is_ten_years_backdated_one_minute(pki: Hierarchy, which: str) -> None:
    cert: x509.Certificate = getattr(pki, which)
    assert cert.not_valid_before_utc == NOW - timedelta(minutes=1)
    assert cert.not_valid_after_utc == NOW + TEN_YEARS


def test_ski_is_rfc5280_method_one_and_aki_links_to_the_issuer(pki: Hierarchy) -> None:
    root_ski = _ext(pki.root, x509.SubjectKeyIdentifier).value
    intermediate_ski = _ext(pki.intermediate, x509.SubjectKeyIdentifier).value
    spki = x509.SubjectKeyIdentifier.from_public_key(pki.intermediate_key.public_key())

    assert intermediate_ski.digest == spki.digest
    assert _ext(pki.root, x509.AuthorityKeyIdentifier).value.key_identifier == root_ski.digest
    aki = _ext(pki.intermediate, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == root_ski.digest


def test_signature_hash_is_sha256_except_for_ed25519(pki: Hierarchy) -> None:
    algorithm = pki.intermediate.signature_hash_algorithm
    if pki.kty == "OKP":
        assert algorithm is None
    else:
        assert isinstance(algorithm, hashes.SHA256)


@needs_openssl
def test_openssl_accepts_the_chain(pki: Hierarchy, tmp_path: Path) -> None:
    openssl = OPENSSL
    assert openssl is not None
    (tmp_path / "root.pem").write_text(pem(pki.root))
    (tmp_path / "intermediate.pem").write_text(pem(pki.intermediate))
    # -attime: the certificates are built for a fixed NOW, not for the wall clock.
    result = subprocess.run(
        [
            openssl,
            "verify",
            "-attime",
            str(int((NOW + timedelta(days=1)).timestamp())),
            "-x509_strict",
            "-CAfile",
            str(tmp_path / "root.pem"),
            str(tmp_path / "intermediate.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith(": OK")


def test_intermediate_never_outlives_its_root(ec_pki: Hierarchy) -> None:
    late = NOW + timedelta(days=365)
    cert = sign_intermediate(
        ec_pki.intermediate.subject,
        ec_pki.intermediate_key.public_key(),
        root_cert=ec_pki.root,
        root_key=ec_pki.root_key,
        now=late,
    )
    assert cert.not_valid_after_utc == ec_pki.root.not_valid_after_utc
    assert cert.not_valid_before_utc == late - timedelta(minutes=1)


def test_no_intermediate_from_an_expired_root(ec_pki: Hierarchy) -> None:
    with pytest.raises(ConfigError, match="root certificate expired"):
        sign_intermediate(
            ec_pki.intermediate.subject,
            ec_pki.intermediate_key.public_key(),
            root_cert=ec_pki.root,
            root_key=ec_pki.root_key,
            now=NOW + TEN_YEARS + timedelta(days=1),
        )


def test_signing_with_a_key_that_is_not_the_roots_is_refused(ec_pki: Hierarchy) -> None:
    with pytest.raises(ConfigError, match="root key does not match"):
        sign_intermediate(
            ec_pki.intermediate.subject,
            ec_pki.intermediate_key.public_key(),
            root_cert=ec_pki.root,
            root_key=ec_pki.intermediate_key,
            now=NOW,
        )


def test_csr_with_a_bad_signature_is_refused(ec_pki: Hierarchy) -> None:
    csr = build_intermediate_csr(ec_pki.intermediate_key, name="Acme")
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte belongs to the signature
    tampered = x509.load_der_x509_csr(bytes(der))
    with pytest.raises(BadRequest, match="signature is invalid"):
        sign_intermediate_csr(tampered, root_cert=ec_pki.root, root_key=ec_pki.root_key, now=NOW)


def test_serials_are_random_positive_128_bit() -> None:
    serials = {new_serial() for _ in range(64)}
    assert len(serials) == 64
    assert all(0 < s < 2**128 for s in serials)
    assert max(serials).bit_length() > 120


def test_root_and_intermediate_serials_differ(ec_pki: Hierarchy) -> None:
    assert ec_pki.root.serial_number != ec_pki.intermediate.serial_number


def test_fingerprint_is_lowercase_hex_sha256_of_der(ec_pki: Hierarchy) -> None:
    der = ec_pki.root.public_bytes(serialization.Encoding.DER)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    assert fingerprint(ec_pki.root) == digest.finalize().hex()


def test_naive_clock_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_root(generate_private_key("EC"), name="Acme", now=datetime(2026, 1, 1))


# --- importing an intermediate signed by an offline root -----------------------------------


def test_check_intermediate_accepts_a_matching_chain_and_key(ec_pki: Hierarchy) -> None:
    check_intermediate(ec_pki.root, ec_pki.intermediate, ec_pki.intermediate_key)


def test_check_intermediate_refuses_another_roots_intermediate(ec_pki: Hierarchy) -> None:
    other_root_key = generate_private_key("EC")
    other_root = build_root(other_root_key, name="Acme", now=NOW)  # same name, other key
    with pytest.raises(ConfigError, match="not issued by this root"):
        check_intermediate(other_root, ec_pki.intermediate, ec_pki.intermediate_key)


def test_check_intermediate_refuses_a_key_that_does_not_match(ec_pki: Hierarchy) -> None:
    with pytest.raises(ConfigError, match="intermediate key does not match"):
        check_intermediate(ec_pki.root, ec_pki.intermediate, generate_private_key("EC"))


def test_check_intermediate_refuses_a_leaf(ec_pki: Hierarchy) -> None:
    leaf_key = generate_private_key("EC")
    leaf = _leaf_signed_by_root(ec_pki.root, ec_pki.root_key, leaf_key)
    with pytest.raises(ConfigError, match="not a CA certificate"):
        check_intermediate(ec_pki.root, leaf, leaf_key)


def _leaf_signed_by_root(
    root: x509.Certificate, root_key: PrivateKey, leaf_key: PrivateKey
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example")]))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(new_serial())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
