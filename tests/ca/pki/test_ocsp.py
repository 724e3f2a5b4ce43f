"""The pure OCSP core: requests read, responses built and signed by the issuing CA."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from support.binaries import OPENSSL, needs_openssl

from ca.keys.files import PrivateKey, generate_private_key
from ca.pki.ocsp import (
    DEFAULT_VALIDITY,
    CertificateStatus,
    MalformedRequest,
    Request,
    build_response,
    decode_get_path,
    issuer_hashes,
    parse_request,
    unsuccessful,
)
from ca.pki.profiles import build_intermediate_csr, build_root, sign_intermediate_csr

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
REVOKED_AT = datetime(2026, 3, 1, 11, 30, 15, 123456, tzinfo=UTC)
# CertIDs are hashed with SHA-1 by every OCSP client (openssl too); not a signature.
SHA1 = hashes.SHA1()  # noqa: S303


class Hierarchy:
    """A root, an intermediate of one key type, and a leaf under it."""

    def __init__(self, kty: str) -> None:
        self.root_key = generate_private_key(kty, rsa_bits=2048)
        self.root = build_root(self.root_key, name="Acme", now=NOW - timedelta(days=1))
        self.key: PrivateKey = generate_private_key(kty, rsa_bits=2048)
        self.intermediate = sign_intermediate_csr(
            build_intermediate_csr(self.key, name="Acme"),
            root_cert=self.root,
            root_key=self.root_key,
            now=NOW - timedelta(days=1),
        )
        self.leaf = leaf_under(self.intermediate, self.key, serial=0x1234567890ABCDEF)


def leaf_under(issuer: x509.Certificate, key: PrivateKey, *, serial: int) -> x509.Certificate:
    algorithm = (
        None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
        else (hashes.SHA256())
    )
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf.example")]))
        .issuer_name(issuer.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(serial)
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(hours=23))
        .sign(key, algorithm)
    )


@pytest.fixture(scope="module", params=["EC", "OKP", "RSA"])
def pki(request: pytest.FixtureRequest) -> Hierarchy:
    return Hierarchy(request.param)


@pytest.fixture(scope="module")
def ec_pki() -> Hierarchy:
    return Hierarchy("EC")


def request_der(
    pki: Hierarchy,
    *,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
    serial: int | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder()
    if serial is None:
        builder = builder.add_certificate(pki.leaf, pki.intermediate, algorithm or SHA1)
    else:
        name_hash, key_hash = issuer_hashes(pki.intermediate, algorithm or SHA1)
        builder = builder.add_certificate_by_hash(name_hash, key_hash, serial, algorithm or SHA1)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def respond(pki: Hierarchy, request: Request, status: CertificateStatus) -> ocsp.OCSPResponse:
    der = build_response(request, status, issuer=pki.intermediate, issuer_key=pki.key, now=NOW)
    return ocsp.load_der_ocsp_response(der)


def assert_signed_by(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
    public_key = issuer.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(
            response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256())
        )
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(
            response.signature, response.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256()
        )
    else:
        public_key.verify(response.signature, response.tbs_response_bytes)  # type: ignore[call-arg]


# -- DER helpers for requests cryptography will not build --------------------------------


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def cert_id(oid: bytes, name_hash: bytes, key_hash: bytes, serial: int) -> bytes:
    algorithm = tlv(0x30, tlv(0x06, oid) + b"\x05\x00")
    number = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    return tlv(0x30, algorithm + tlv(0x04, name_hash) + tlv(0x04, key_hash) + tlv(0x02, number))


SHA1_OID = bytes.fromhex("2b0e03021a")
MD5_OID = bytes.fromhex("2a864886f70d0205")


def multi_request(pki: Hierarchy, serials: list[int]) -> bytes:
    name_hash, key_hash = issuer_hashes(pki.intermediate, SHA1)
    requests = b"".join(
        tlv(0x30, cert_id(SHA1_OID, name_hash, key_hash, serial)) for serial in serials
    )
    return tlv(0x30, tlv(0x30, tlv(0x30, requests)))


# -- requests ----------------------------------------------------------------------------


def test_request_names_issuer_serial_and_nonce(ec_pki: Hierarchy) -> None:
    request = parse_request(request_der(ec_pki, nonce=b"n" * 16))
    assert (request.issuer_name_hash, request.issuer_key_hash) == issuer_hashes(
        ec_pki.intermediate, SHA1
    )
    assert request.serial_number == ec_pki.leaf.serial_number
    assert request.nonce == b"n" * 16
    assert isinstance(request.hash_algorithm, hashes.SHA1)
    assert request.count == 1


@pytest.mark.parametrize(
    "algorithm", [SHA1, hashes.SHA224(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512()]
)
def test_issuer_hashes_match_what_clients_compute(
    ec_pki: Hierarchy, algorithm: hashes.HashAlgorithm
) -> None:
    built = ocsp.load_der_ocsp_request(
        ocsp.OCSPRequestBuilder()
        .add_certificate(ec_pki.leaf, ec_pki.intermediate, algorithm)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    assert issuer_hashes(ec_pki.intermediate, algorithm) == (
        built.issuer_name_hash,
        built.issuer_key_hash,
    )


def test_sha1_key_hash_is_the_subject_key_identifier(pki: Hierarchy) -> None:
    _, key_hash = issuer_hashes(pki.intermediate, SHA1)
    assert (
        key_hash
        == x509.SubjectKeyIdentifier.from_public_key(
            pki.intermediate.public_key()  # type: ignore[arg-type]
        ).digest
    )


def test_request_without_nonce(ec_pki: Hierarchy) -> None:
    assert parse_request(request_der(ec_pki)).nonce is None


def test_only_the_first_of_several_certificates_is_read(ec_pki: Hierarchy) -> None:
    request = parse_request(multi_request(ec_pki, [7, 8, 9]))
    assert request.serial_number == 7
    assert request.count == 3


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"not der at all",
        b"\x30\x03\x02\x01",  # truncated
        b"\x30\x02\x30\x00",  # no request list
        b"\x30\x04\x30\x02\x30\x00",  # an empty request list
    ],
)
def test_garbage_is_malformed(der: bytes) -> None:
    with pytest.raises(MalformedRequest):
        parse_request(der)


def test_truncated_request_is_malformed(ec_pki: Hierarchy) -> None:
    with pytest.raises(MalformedRequest):
        parse_request(request_der(ec_pki, nonce=b"x" * 16)[:-5])


def test_truncated_multi_request_is_malformed(ec_pki: Hierarchy) -> None:
    with pytest.raises(MalformedRequest):
        parse_request(multi_request(ec_pki, [1, 2])[:-3])


def test_nonce_longer_than_32_octets_is_malformed(ec_pki: Hierarchy) -> None:
    """RFC 8954 §2.1."""
    parse_request(request_der(ec_pki, nonce=b"x" * 32))
    with pytest.raises(MalformedRequest, match="nonce"):
        parse_request(request_der(ec_pki, nonce=b"x" * 33))


def test_unsupported_hash_algorithm_is_malformed(ec_pki: Hierarchy) -> None:
    md5 = tlv(0x30, tlv(0x30, tlv(0x30, tlv(0x30, cert_id(MD5_OID, b"a" * 16, b"b" * 16, 5)))))
    with pytest.raises(MalformedRequest, match="hash"):
        parse_request(md5)


def test_get_path_decoding_tolerates_what_clients_send(ec_pki: Hierarchy) -> None:
    der = request_der(ec_pki, nonce=b"\xfb\xff" * 8)  # base64 with '+' and '/'
    standard = base64.b64encode(der).decode()
    variants = [
        standard,
        quote(standard, safe=""),
        standard.replace("+", " "),
        base64.urlsafe_b64encode(der).decode(),
        standard.rstrip("="),
    ]
    for text in variants:
        assert decode_get_path(text) == der, text


@pytest.mark.parametrize("text", ["", "!!!", "abc$"])
def test_get_path_that_is_not_base64_is_malformed(text: str) -> None:
    with pytest.raises(MalformedRequest):
        decode_get_path(text)


# -- responses ---------------------------------------------------------------------------


def test_good_response_is_signed_by_the_issuer(pki: Hierarchy) -> None:
    request = parse_request(request_der(pki, nonce=b"0123456789abcdef"))
    response = respond(pki, request, CertificateStatus.good())
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == pki.leaf.serial_number
    assert response.responder_key_hash == issuer_hashes(pki.intermediate, SHA1)[1]
    assert response.responder_name is None
    assert response.certificates == []
    assert_signed_by(response, pki.intermediate)


def test_revoked_response_carries_time_and_reason(ec_pki: Hierarchy) -> None:
    request = parse_request(request_der(ec_pki))
    response = respond(ec_pki, request, CertificateStatus.revoked(REVOKED_AT, 1))
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == REVOKED_AT.replace(microsecond=0)
    assert response.revocation_reason == x509.ReasonFlags.key_compromise


def test_unspecified_reason_is_left_out(ec_pki: Hierarchy) -> None:
    request = parse_request(request_der(ec_pki))
    response = respond(ec_pki, request, CertificateStatus.revoked(REVOKED_AT, 0))
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is None


def test_unknown_serial_answers_unknown(ec_pki: Hierarchy) -> None:
    request = parse_request(request_der(ec_pki, serial=424242))
    response = respond(ec_pki, request, CertificateStatus.unknown())
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    assert response.serial_number == 424242
    assert_signed_by(response, ec_pki.intermediate)


def test_update_times_and_signature_algorithm(ec_pki: Hierarchy) -> None:
    response = respond(ec_pki, parse_request(request_der(ec_pki)), CertificateStatus.good())
    assert response.this_update_utc == NOW
    assert response.next_update_utc == NOW + DEFAULT_VALIDITY
    # producedAt is cryptography's own clock at signing time; nothing to pass in.
    assert isinstance(response.signature_hash_algorithm, hashes.SHA256)


def test_validity_is_configurable(ec_pki: Hierarchy) -> None:
    der = build_response(
        parse_request(request_der(ec_pki)),
        CertificateStatus.good(),
        issuer=ec_pki.intermediate,
        issuer_key=ec_pki.key,
        now=NOW,
        validity=timedelta(minutes=10),
    )
    assert ocsp.load_der_ocsp_response(der).next_update_utc == NOW + timedelta(minutes=10)


def test_nonce_is_echoed(ec_pki: Hierarchy) -> None:
    request = parse_request(request_der(ec_pki, nonce=b"nonce-1234567890"))
    response = respond(ec_pki, request, CertificateStatus.good())
    echoed = response.extensions.get_extension_for_class(x509.OCSPNonce)
    assert echoed.value.nonce == b"nonce-1234567890"
    assert not echoed.critical


def test_no_nonce_no_extension(ec_pki: Hierarchy) -> None:
    response = respond(ec_pki, parse_request(request_der(ec_pki)), CertificateStatus.good())
    assert len(response.extensions) == 0


def test_cert_id_is_echoed_in_the_clients_hash_algorithm(ec_pki: Hierarchy) -> None:
    request = parse_request(request_der(ec_pki, algorithm=hashes.SHA256()))
    response = respond(ec_pki, request, CertificateStatus.good())
    assert isinstance(response.hash_algorithm, hashes.SHA256)
    assert (response.issuer_name_hash, response.issuer_key_hash) == issuer_hashes(
        ec_pki.intermediate, hashes.SHA256()
    )


@pytest.mark.parametrize(
    "status",
    [
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        ocsp.OCSPResponseStatus.UNAUTHORIZED,
        ocsp.OCSPResponseStatus.INTERNAL_ERROR,
    ],
)
def test_unsuccessful_responses(status: ocsp.OCSPResponseStatus) -> None:
    assert ocsp.load_der_ocsp_response(unsuccessful(status)).response_status == status


@needs_openssl
def test_openssl_verifies_a_revoked_response(ec_pki: Hierarchy, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    leaf = leaf_under(ec_pki.intermediate, ec_pki.key, serial=99)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, ec_pki.intermediate, SHA1)
        .add_extension(x509.OCSPNonce(b"abcdefghijklmnop"), critical=False)
        .build()
    )
    der = build_response(
        parse_request(request.public_bytes(serialization.Encoding.DER)),
        CertificateStatus.revoked(now - timedelta(minutes=5), 4),
        issuer=ec_pki.intermediate,
        issuer_key=ec_pki.key,
        now=now,
    )
    files = {
        "req.der": request.public_bytes(serialization.Encoding.DER),
        "resp.der": der,
        "root.pem": ec_pki.root.public_bytes(serialization.Encoding.PEM),
        "int.pem": ec_pki.intermediate.public_bytes(serialization.Encoding.PEM),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, "ocsp", "-reqin", "req.der", "-respin", "resp.der", "-issuer", "int.pem",
         "-CAfile", "root.pem", "-resp_text"],
        cwd=tmp_path, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Response verify OK" in output, output
    # With -reqin, openssl prints the response rather than a per-certificate summary.
    assert "Serial Number: 63" in output, output
    assert "Cert Status: revoked" in output, output
    assert "Revocation Reason: superseded" in output, output
