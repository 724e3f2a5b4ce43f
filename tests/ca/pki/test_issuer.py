"""The one X.509 issuer: profiles are checked before anything is signed, and what is signed
verifies against its issuer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from ca.errors import PolicyError, SignerError
from ca.pki.issuer import CopyProfile, Issuer, TemplateProfile, check_template, issue, prepare
from ca.pki.leaf_rules import LeafRules
from ca.templates.x509 import SAN, CertificateTemplate, Subject

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
VALIDITY = (NOW, NOW + timedelta(hours=24))


def _issuer(not_after: datetime = NOW + timedelta(days=365)) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Intermediate")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(certificate, key)


def _template(**changes: object) -> CertificateTemplate:
    fields: dict[str, object] = {
        "subject": Subject(common_name="svc.example.test"),
        "sans": (SAN("dns", "svc.example.test"),),
        "key_usage": ("digitalSignature",),
        "ext_key_usage": ("serverAuth", "clientAuth"),
    }
    fields.update(changes)
    return CertificateTemplate(**fields)  # type: ignore[arg-type]


def _leaf_key() -> ec.EllipticCurvePublicKey:
    return ec.generate_private_key(ec.SECP256R1()).public_key()


def test_a_template_leaf_carries_its_names_and_verifies_against_the_issuer() -> None:
    issuer = _issuer()
    rules = LeafRules.of((issuer.certificate,), ())
    certificate = issue(prepare(TemplateProfile(_template()), _leaf_key(), VALIDITY, issuer, rules))
    certificate.verify_directly_issued_by(issuer.certificate)
    assert [e.oid for e in certificate.extensions] == [
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ]
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["svc.example.test"]
    assert certificate.not_valid_after_utc == VALIDITY[1]


def test_not_after_never_passes_the_issuer() -> None:
    issuer = _issuer(not_after=NOW + timedelta(hours=2))
    prepared = prepare(TemplateProfile(_template()), _leaf_key(), VALIDITY, issuer, LeafRules())
    assert prepared.not_after == NOW + timedelta(hours=2)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"ext_key_usage": ("ocspSigning",)}, "OCSP"),
        ({"key_usage": ("digitalSignature", "certSign")}, "sign certificates"),
        ({"subject": Subject(common_name="Test Intermediate")}, "CA's subject"),
        ({"subject": Subject(), "sans": ()}, "neither a subject nor a SAN"),
        ({"ocsp_server": ("http://evil.example/ocsp",)}, "evil.example"),
    ],
)
def test_prepare_refuses_before_anything_is_signed(changes: dict[str, object], match: str) -> None:
    issuer = _issuer()
    rules = LeafRules.of((issuer.certificate,), ())
    with pytest.raises(PolicyError, match=match):
        prepare(TemplateProfile(_template(**changes)), _leaf_key(), VALIDITY, issuer, rules)


def test_a_weak_rsa_key_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    with pytest.raises(PolicyError, match="1024 bits"):
        prepare(TemplateProfile(_template()), weak, VALIDITY, _issuer(), LeafRules())


def test_a_copy_profile_refuses_an_old_certificate_that_gained_a_ca_power() -> None:
    issuer = _issuer()
    old = issue(
        prepare(
            TemplateProfile(_template(ext_key_usage=("serverAuth",))),
            _leaf_key(),
            VALIDITY,
            issuer,
            LeafRules(),
        )
    )
    # The same certificate under rules that now name its subject as a CA's: the renewal
    # passes the same checks as a new leaf.
    rules = LeafRules((old.subject,), ())
    with pytest.raises(PolicyError, match="CA's subject"):
        prepare(CopyProfile(old), _leaf_key(), VALIDITY, issuer, rules)


def test_issue_refuses_a_key_that_is_not_the_issuers() -> None:
    issuer = _issuer()
    impostor = Issuer(issuer.certificate, ec.generate_private_key(ec.SECP256R1()))
    prepared = prepare(TemplateProfile(_template()), _leaf_key(), VALIDITY, impostor, LeafRules())
    with pytest.raises(SignerError, match="does not verify"):
        issue(prepared)


def test_the_template_check_uses_the_same_rules() -> None:
    check_template(_template(), LeafRules())
    with pytest.raises(PolicyError, match="OCSP"):
        check_template(_template(ext_key_usage=("ocspSigning",)), LeafRules())
