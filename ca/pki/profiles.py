"""Profiles of the authority's own certificates: the root and the intermediate.

Pure builders: the caller passes the clock (`now`, timezone-aware) and the keys; nothing
here reads the time, the disk or the network. The profiles follow `step ca init`: root
path length 1, intermediate path length 0, both keyCertSign+cRLSign, 10 years, backdated
one minute, subject "<name> Root CA" / "<name> Intermediate CA" with O=<name>.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from ca.errors import BadRequest, ConfigError
from ca.keys.files import PrivateKey, PublicKey

__all__ = [
    "BACKDATE",
    "CA_VALIDITY",
    "build_intermediate_csr",
    "build_root",
    "check_intermediate",
    "fingerprint",
    "new_serial",
    "pem",
    "sign_intermediate",
    "sign_intermediate_csr",
]

CA_VALIDITY = timedelta(days=10 * 365)
# Backdating absorbs clock skew between the CA and the relying parties.
BACKDATE = timedelta(minutes=1)


def new_serial() -> int:
    """A random, positive 128-bit serial number (as step-ca generates them)."""
    while True:
        serial = secrets.randbits(128)
        if serial:
            return serial


def fingerprint(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER (step's root fingerprint)."""
    return cert.fingerprint(hashes.SHA256()).hex()


def pem(cert: x509.Certificate) -> str:
    """The certificate as a PEM string."""
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def build_root(key: PrivateKey, *, name: str, now: datetime) -> x509.Certificate:
    """A self-signed root: CA, path length 1, valid from now-1min for 10 years."""
    subject = _ca_name(name, "Root CA")
    public_key = key.public_key()
    not_before = _utc(now) - BACKDATE
    builder = (
        _ca_builder(subject, public_key, path_length=1)
        .issuer_name(subject)
        .not_valid_before(not_before)
        .not_valid_after(_utc(now) + CA_VALIDITY)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
    )
    return builder.sign(key, _signature_hash(key))


def build_intermediate_csr(key: PrivateKey, *, name: str) -> x509.CertificateSigningRequest:
    """A CSR for the intermediate, to be signed by an online or offline root."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        _ca_name(name, "Intermediate CA")
    )
    return builder.sign(key, _signature_hash(key))


def sign_intermediate(
    subject: x509.Name,
    public_key: PublicKey,
    *,
    root_cert: x509.Certificate,
    root_key: PrivateKey,
    now: datetime,
    crl_url: str | None = None,
) -> x509.Certificate:
    """Issue the intermediate: CA, path length 0, 10 years but never past the root's end.

    `crl_url`: a CRL Distribution Point where the root's CRL is published, so relying
    parties that check the whole chain (`openssl verify -crl_check_all`) can learn that the
    intermediate was revoked.
    """
    if _spki(root_key.public_key()) != _spki(root_cert.public_key()):
        raise ConfigError("the root key does not match the root certificate")
    not_before = _utc(now) - BACKDATE
    # A certificate outliving its issuer would be rejected by verifiers after the root expires.
    not_after = min(_utc(now) + CA_VALIDITY, root_cert.not_valid_after_utc)
    if not_after <= not_before:
        raise ConfigError(
            f"the root certificate expired on {root_cert.not_valid_after_utc:%Y-%m-%d}: "
            "create a new root before issuing an intermediate"
        )
    builder = (
        _ca_builder(subject, public_key, path_length=0)
        .issuer_name(root_cert.subject)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_authority_key_id(root_cert), critical=False)
    )
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(crl_url)], None, None, None
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(root_key, _signature_hash(root_key))


def sign_intermediate_csr(
    csr: x509.CertificateSigningRequest,
    *,
    root_cert: x509.Certificate,
    root_key: PrivateKey,
    now: datetime,
    crl_url: str | None = None,
) -> x509.Certificate:
    """Issue the intermediate for a CSR, after checking the CSR's proof of possession."""
    try:
        public_key = csr.public_key()
        signature_ok = csr.is_signature_valid
    except (ValueError, TypeError) as err:
        raise BadRequest(f"the intermediate CSR cannot be read: {err}") from err
    if not signature_ok:
        raise BadRequest("the intermediate CSR signature is invalid")
    if not isinstance(public_key, PublicKey):
        raise BadRequest(
            f"the intermediate CSR has a {type(public_key).__name__}: "
            "only EC, Ed25519 and RSA keys are supported"
        )
    if len(csr.subject) == 0:
        raise BadRequest("the intermediate CSR has an empty subject")
    return sign_intermediate(
        csr.subject, public_key, root_cert=root_cert, root_key=root_key, now=now, crl_url=crl_url
    )


def check_intermediate(
    root: x509.Certificate, intermediate: x509.Certificate, key: PrivateKey
) -> None:
    """Check an imported intermediate: issued by `root`, a CA, and matching `key`.

    Raises ConfigError saying which of the three is wrong.
    """
    try:
        intermediate.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature) as err:
        raise ConfigError(
            "the intermediate certificate was not issued by this root "
            f"(intermediate issuer: {intermediate.issuer.rfc4514_string()}, "
            f"root subject: {root.subject.rfc4514_string()})"
        ) from err
    try:
        constraints = intermediate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.value.ca:
        raise ConfigError("the intermediate certificate is not a CA certificate")
    try:
        usage = intermediate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        raise ConfigError("the intermediate certificate may not sign certificates (keyCertSign)")
    if _spki(key.public_key()) != _spki(intermediate.public_key()):
        raise ConfigError("the intermediate key does not match the intermediate certificate")


def _ca_name(name: str, role: str) -> x509.Name:
    # O before CN, as Go's pkix.Name orders them, so our DER matches step's.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {role}"),
        ]
    )


def _ca_builder(
    subject: x509.Name, public_key: PublicKey, *, path_length: int
) -> x509.CertificateBuilder:
    """The extensions root and intermediate share; issuer, validity and AKI are added later."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(public_key)
        .serial_number(new_serial())
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    # Copy the issuer's SKI verbatim (path building matches on it); an offline root made
    # elsewhere may lack one, then derive it from the key.
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        public_key = issuer.public_key()
        if not isinstance(public_key, PublicKey):
            raise ConfigError(
                f"the root has a {type(public_key).__name__}: "
                "only EC, Ed25519 and RSA keys are supported"
            ) from None
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    # Ed25519 signs the message itself; cryptography requires algorithm=None for it.
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    return hashes.SHA256()


def _spki(public_key: CertificatePublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _utc(now: datetime) -> datetime:
    # Naive datetimes are ambiguous (cryptography would read them as UTC); X.509 times
    # have whole seconds, so drop microseconds to keep what we build equal to what we parse.
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).replace(microsecond=0)
