"""The one X.509 issuer: every certificate the CA signs for someone else comes out of here.

Two steps, in the spirit of Boulder's `issuance` package:

* `prepare(profile, public_key, validity, issuer, rules)` builds the to-be-signed
  certificate from a profile and runs every check before release on it (`check`): it must
  name a subject or a SAN, hold no CA power (`ca.pki.leaf_rules`), carry a strong key.
  Nothing is signed yet, and a refusal costs no signature.
* `issue(prepared)` signs it with the issuer's key and verifies the signature against the
  issuer's certificate before anything else may see it.

A profile says what the certificate carries. `TemplateProfile` is a rendered template
(leaves from `/sign`, the CA's own TLS certificate); `CopyProfile` is a renewed or rekeyed
copy of an earlier certificate. Pure: the caller passes the serial, validity and issuer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ca.errors import PolicyError, SignerError
from ca.keys.files import MIN_RSA_BITS, PrivateKey, PublicKey
from ca.pki.leaf import EXTENDED_KEY_USAGES, general_names, key_usage, subject_name
from ca.pki.leaf_rules import LeafRules, refuse_authority_powers
from ca.pki.profiles import new_serial

__all__ = [
    "CopyProfile",
    "Issuer",
    "Prepared",
    "Profile",
    "TemplateProfile",
    "check",
    "check_template",
    "issue",
    "prepare",
    "signature_hash",
]


@dataclass(frozen=True)
class Issuer:
    """The intermediate that signs: its certificate and its private key (file or HSM)."""

    certificate: x509.Certificate
    key: PrivateKey


class Profile(Protocol):
    """What a certificate carries besides its key, validity, serial and issuer."""

    def subject(self) -> x509.Name: ...

    def extensions(
        self, public_key: PublicKey, issuer: x509.Certificate
    ) -> list[x509.Extension[Any]]:
        """Every extension, in the order they are encoded."""
        ...


@dataclass(frozen=True)
class Prepared:
    """A checked, unsigned certificate: `issue` signs it."""

    subject: x509.Name
    public_key: PublicKey
    serial: int
    not_before: datetime
    not_after: datetime
    extensions: tuple[x509.Extension[Any], ...]
    issuer: Issuer = field(repr=False)


def signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    """The digest an issuer key signs with: none for Ed25519, SHA-256 otherwise."""
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _extension(value: x509.ExtensionType, critical: bool = False) -> x509.Extension[Any]:
    return x509.Extension(value.oid, critical, value)


def authority_key_identifier(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """From the issuer's subject key identifier, else from its public key."""
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


@dataclass(frozen=True)
class TemplateProfile:
    """A rendered template (`ca.templates.x509.CertificateTemplate`) and extra extensions
    (the provisioner extension)."""

    template: Any
    extra: Sequence[x509.ExtensionType] = ()

    def subject(self) -> x509.Name:
        return subject_name(self.template.subject)

    def extensions(
        self, public_key: PublicKey, issuer: x509.Certificate
    ) -> list[x509.Extension[Any]]:
        template = self.template
        result = [
            _extension(x509.SubjectKeyIdentifier.from_public_key(public_key)),
            _extension(authority_key_identifier(issuer)),
        ]
        if template.key_usage:
            result.append(_extension(key_usage(template.key_usage), critical=True))
        if template.ext_key_usage:
            usages = [EXTENDED_KEY_USAGES[name] for name in template.ext_key_usage]
            result.append(_extension(x509.ExtendedKeyUsage(usages)))
        sans = general_names(template.sans)
        if sans:
            # RFC 5280: the SAN extension is critical when the subject is empty.
            empty_subject = len(self.subject()) == 0
            result.append(_extension(x509.SubjectAlternativeName(sans), critical=empty_subject))
        crl_urls = list(getattr(template, "crl_distribution_points", ()) or ())
        if crl_urls:
            points = [
                x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None)
                for u in crl_urls
            ]
            result.append(_extension(x509.CRLDistributionPoints(points)))
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
            result.append(_extension(x509.AuthorityInformationAccess(access)))
        result.extend(_extension(extension) for extension in self.extra)
        return result


@dataclass(frozen=True)
class CopyProfile:
    """A renewal or rekey of `old`: the same subject, SANs and extensions. The authority key
    identifier names the current issuer; the subject key identifier is recomputed when the
    key changed (rekey) and kept otherwise."""

    old: x509.Certificate

    def subject(self) -> x509.Name:
        return self.old.subject

    def extensions(
        self, public_key: PublicKey, issuer: x509.Certificate
    ) -> list[x509.Extension[Any]]:
        same_key = public_key == self.old.public_key()
        result = (
            [] if same_key else [_extension(x509.SubjectKeyIdentifier.from_public_key(public_key))]
        )
        for extension in self.old.extensions:
            if isinstance(extension.value, x509.AuthorityKeyIdentifier):
                continue
            if isinstance(extension.value, x509.SubjectKeyIdentifier) and not same_key:
                continue
            result.append(extension)
        result.append(_extension(authority_key_identifier(issuer)))
        return result


def prepare(
    profile: Profile,
    public_key: PublicKey,
    validity: tuple[datetime, datetime],
    issuer: Issuer,
    rules: LeafRules,
    *,
    serial: int | None = None,
) -> Prepared:
    """The to-be-signed certificate, checked (`check`); NotAfter never past the issuer's."""
    not_before, not_after = validity
    prepared = Prepared(
        subject=profile.subject(),
        public_key=public_key,
        serial=serial if serial is not None else new_serial(),
        not_before=not_before,
        not_after=min(not_after, issuer.certificate.not_valid_after_utc),
        extensions=tuple(profile.extensions(public_key, issuer.certificate)),
        issuer=issuer,
    )
    check(prepared, rules)
    return prepared


def check(prepared: Prepared, rules: LeafRules) -> None:
    """Every rule a certificate must pass before it is signed, for whatever profile."""
    extensions = x509.Extensions(list(prepared.extensions))
    try:
        has_sans = bool(extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        has_sans = False
    if len(prepared.subject) == 0 and not has_sans:
        raise PolicyError("the certificate would have neither a subject nor a SAN")
    refuse_authority_powers(prepared.subject, extensions, rules)
    key = prepared.public_key
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise PolicyError(f"RSA key of {key.key_size} bits: at least {MIN_RSA_BITS} are required")


def issue(prepared: Prepared) -> x509.Certificate:
    """Sign `prepared` and verify the signature against the issuer's certificate."""
    issuer = prepared.issuer
    builder = (
        x509.CertificateBuilder()
        .subject_name(prepared.subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(prepared.public_key)
        .serial_number(prepared.serial)
        .not_valid_before(prepared.not_before)
        .not_valid_after(prepared.not_after)
    )
    for extension in prepared.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    try:
        certificate = builder.sign(issuer.key, signature_hash(issuer.key))
    except (ValueError, TypeError) as exc:
        raise SignerError(f"signing failed: {exc}") from exc
    try:
        certificate.verify_directly_issued_by(issuer.certificate)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise SignerError(
            f"the signed certificate does not verify against its issuer: {exc}"
        ) from exc
    return certificate


def check_template(template: Any, rules: LeafRules) -> None:
    """The rules of `check`, applied when a template is added or changed: the template,
    rendered with sample data, is prepared for a throwaway key and issuer, so a template
    that could never issue is refused at once instead of failing every issuance later."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ledgerca template check")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(minutes=1))
        .sign(key, hashes.SHA256())
    )
    validity = (now, now + timedelta(minutes=1))
    prepare(TemplateProfile(template), key.public_key(), validity, Issuer(certificate, key), rules)
