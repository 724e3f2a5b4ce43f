"""The leaf profile: from a rendered template to a signed certificate, then checked.

Pure: the caller passes the serial, the validity and the issuer; nothing here reads the
clock or the database.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca.errors import BadRequest, PolicyError, SignerError
from ca.keys.files import PrivateKey, PublicKey
from ca.pki.leaf_rules import LeafRules, refuse_authority_powers

_SUBJECT_OIDS = (
    ("country", NameOID.COUNTRY_NAME),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("province", NameOID.STATE_OR_PROVINCE_NAME),
    ("street_address", NameOID.STREET_ADDRESS),
    ("postal_code", NameOID.POSTAL_CODE),
    ("serial_number", NameOID.SERIAL_NUMBER),
)

_EKU = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocspSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
}

_KEY_USAGE_ARGS = {
    "digitalSignature": "digital_signature",
    "contentCommitment": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "certSign": "key_cert_sign",
    "crlSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value if v]


def subject_name(subject: Any) -> x509.Name:
    """Go's order: country … serialNumber, then commonName last (as step-ca encodes)."""
    attributes: list[x509.NameAttribute[str]] = []
    for field, oid in _SUBJECT_OIDS:
        attributes.extend(
            x509.NameAttribute(oid, v) for v in _values(getattr(subject, field, None))
        )
    common_name = getattr(subject, "common_name", "") or ""
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_dns_name(name: str) -> str:
    """A DNS SAN as RFC 5280 and RFC 1123 allow it, or BadRequest: LDH labels of 1-63
    characters (no leading or trailing hyphen), at most 253 in all, a leftmost `*` label for
    a wildcard, and IDNs only as A-labels (`xn--…`) that decode. Applied to every leaf's
    DNS names whether or not a name policy is set: a NUL, a space or a U-label in a SAN is
    read differently by different relying parties (and a U-label cannot be encoded at all).
    """
    shown = repr(name[:80])
    if not name.isascii():
        try:
            suggestion = idna.encode(name, uts46=True).decode()
        except idna.IDNAError:
            suggestion = ""
        hint = f": write it as the A-label {suggestion!r}" if suggestion else ""
        raise BadRequest(f"the DNS name {shown} is not ASCII{hint}")
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise BadRequest(f"{shown} is not a valid DNS name (letters, digits and hyphens only)")
    for label in labels:
        if label[:4].lower() == "xn--":
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise BadRequest(f"{shown} holds an invalid IDN label {label!r}") from None
    return name


def general_names(sans: Iterable[Any]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for san in sans:
        kind, value = san.type, san.value
        if kind == "dns":
            names.append(x509.DNSName(check_dns_name(value)))
        elif kind == "ip":
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        elif kind == "email":
            names.append(x509.RFC822Name(value))
        elif kind == "uri":
            names.append(x509.UniformResourceIdentifier(value))
        else:
            raise PolicyError(f"unsupported SAN type {kind!r}")
    return names


def key_usage(names: Sequence[str]) -> x509.KeyUsage:
    flags = {arg: False for arg in _KEY_USAGE_ARGS.values()}
    for name in names:
        flags[_KEY_USAGE_ARGS[name]] = True
    return x509.KeyUsage(**flags)


def _signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def build_leaf(
    template: Any,
    *,
    public_key: PublicKey,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    extensions: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    subject = subject_name(template.subject)
    sans = general_names(template.sans)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    try:
        aki = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(aki), critical=False
        )
    except x509.ExtensionNotFound:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if template.key_usage:
        builder = builder.add_extension(key_usage(template.key_usage), critical=True)
    if template.ext_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_EKU[name] for name in template.ext_key_usage]), critical=False
        )
    if sans:
        # RFC 5280: the SAN extension is critical when the subject is empty.
        builder = builder.add_extension(
            x509.SubjectAlternativeName(sans), critical=len(subject) == 0
        )
    crl_urls = list(getattr(template, "crl_distribution_points", ()) or ())
    if crl_urls:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None)
                    for u in crl_urls
                ]
            ),
            critical=False,
        )
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u)
        )
        for u in getattr(template, "ocsp_server", ()) or ()
    ] + [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(u)
        )
        for u in getattr(template, "issuing_certificate_url", ()) or ()
    ]
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    if len(subject) == 0 and not sans:
        raise PolicyError("the certificate would have neither a subject nor a SAN")
    try:
        return builder.sign(issuer_key, _signature_hash(issuer_key))
    except (ValueError, TypeError) as exc:
        raise SignerError(f"signing failed: {exc}") from exc


def check_leaf(certificate: x509.Certificate, issuer: x509.Certificate, rules: LeafRules) -> None:
    """Pre-release lint: no CA powers (`refuse_authority_powers`), a strong key, and it chains."""
    refuse_authority_powers(certificate, rules)
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise PolicyError(f"RSA key of {key.key_size} bits: at least 2048 are required")
    certificate.verify_directly_issued_by(issuer)


def check_template(template: Any, rules: LeafRules) -> None:
    """The release rule, applied when a template is added: a throwaway leaf built from the
    rendered template (on a throwaway issuer) must pass `refuse_authority_powers`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ledgerca template check")])
    issuer = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(minutes=1))
        .sign(key, hashes.SHA256())
    )
    leaf = build_leaf(
        template,
        public_key=key.public_key(),
        issuer=issuer,
        issuer_key=key,
        serial=2,
        not_before=now,
        not_after=now + timedelta(minutes=1),
    )
    refuse_authority_powers(leaf, rules)
