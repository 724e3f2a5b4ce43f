"""The CRL builder: a pure function of the issuer, its revocations and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from ca.crl.builder import RevokedEntry, build_crl, listed, pem_crl

Hierarchy = Any  # tests/ca/crl/conftest.py
NOW = datetime(2031, 3, 1, 9, 0, 0, 250000, tzinfo=UTC)

IDP = "https://ca.example.test:9443/1.0/crl"
DAY = timedelta(hours=24)


def entry(serial: int, *, reason: int = 1, expires_in: timedelta = DAY) -> RevokedEntry:
    return RevokedEntry(serial, NOW - timedelta(minutes=5), reason, NOW + expires_in)


def crl_of(
    hierarchy: Hierarchy, entries: list[RevokedEntry], **kwargs: object
) -> x509.CertificateRevocationList:
    options: dict[str, object] = {"number": 7, "now": NOW, "lifetime": DAY, "idp_url": IDP}
    options.update(kwargs)
    return build_crl(
        issuer=hierarchy.intermediate,
        issuer_key=hierarchy.intermediate_key,
        entries=entries,
        **options,  # type: ignore[arg-type]
    )


def test_a_crl_is_signed_by_the_issuer_and_names_it(hierarchy: Hierarchy) -> None:
    crl = crl_of(hierarchy, [entry(11)])
    assert crl.is_signature_valid(hierarchy.intermediate.public_key())  # type: ignore[arg-type]
    assert crl.issuer == hierarchy.intermediate.subject
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = hierarchy.intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ski.value.digest


def test_this_update_is_now_in_whole_seconds_and_next_update_one_cache_duration_later(
    hierarchy: Hierarchy,
) -> None:
    crl = crl_of(hierarchy, [], lifetime=timedelta(hours=6))
    assert crl.last_update_utc == NOW.replace(microsecond=0)
    assert crl.next_update_utc == NOW.replace(microsecond=0) + timedelta(hours=6)


def test_the_crl_number_is_the_one_given(hierarchy: Hierarchy) -> None:
    crl = crl_of(hierarchy, [], number=123456)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 123456


def test_the_issuing_distribution_point_is_critical_and_names_only_the_url(
    hierarchy: Hierarchy,
) -> None:
    extension = crl_of(hierarchy, []).extensions.get_extension_for_oid(
        ExtensionOID.ISSUING_DISTRIBUTION_POINT
    )
    assert extension.critical
    idp = extension.value
    assert isinstance(idp, x509.IssuingDistributionPoint)
    assert idp.full_name == [x509.UniformResourceIdentifier(IDP)]
    assert not (idp.only_contains_user_certs or idp.only_contains_ca_certs or idp.indirect_crl)
    assert idp.only_some_reasons is None


def test_without_an_idp_url_there_is_no_issuing_distribution_point(hierarchy: Hierarchy) -> None:
    crl = crl_of(hierarchy, [], idp_url=None)
    with pytest.raises(x509.ExtensionNotFound):
        crl.extensions.get_extension_for_oid(ExtensionOID.ISSUING_DISTRIBUTION_POINT)


def test_entries_carry_serial_revocation_time_in_seconds_and_reason(hierarchy: Hierarchy) -> None:
    crl = crl_of(hierarchy, [entry(2**127 + 5, reason=1)])
    (revoked,) = list(crl)
    assert revoked.serial_number == 2**127 + 5
    assert revoked.revocation_date_utc == (NOW - timedelta(minutes=5)).replace(microsecond=0)
    reason = revoked.extensions.get_extension_for_oid(CRLEntryExtensionOID.CRL_REASON)
    assert reason.value.reason == x509.ReasonFlags.key_compromise


@pytest.mark.parametrize(
    ("code", "flag"),
    [
        (1, x509.ReasonFlags.key_compromise),
        (2, x509.ReasonFlags.ca_compromise),
        (3, x509.ReasonFlags.affiliation_changed),
        (4, x509.ReasonFlags.superseded),
        (5, x509.ReasonFlags.cessation_of_operation),
        (6, x509.ReasonFlags.certificate_hold),
        (9, x509.ReasonFlags.privilege_withdrawn),
        (10, x509.ReasonFlags.aa_compromise),
    ],
)
def test_each_rfc_5280_reason_code_is_written_as_its_crl_reason(
    hierarchy: Hierarchy, code: int, flag: x509.ReasonFlags
) -> None:
    (revoked,) = list(crl_of(hierarchy, [entry(3, reason=code)]))
    assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason == flag


@pytest.mark.parametrize("code", [0, 7, 8])
def test_unspecified_unassigned_and_remove_from_crl_are_listed_without_a_reason(
    hierarchy: Hierarchy, code: int
) -> None:
    # RFC 5280 5.3.1: no extension rather than "unspecified"; removeFromCRL in a full CRL
    # would tell verifiers the certificate is not revoked.
    (revoked,) = list(crl_of(hierarchy, [entry(3, reason=code)]))
    assert len(revoked.extensions) == 0


def test_entries_whose_certificate_expired_more_than_an_hour_ago_are_dropped(
    hierarchy: Hierarchy,
) -> None:
    entries = [
        entry(1, expires_in=DAY),
        entry(2, expires_in=-timedelta(minutes=59)),
        entry(3, expires_in=-timedelta(hours=1)),
        entry(4, expires_in=-timedelta(hours=1, seconds=1)),
        entry(5, expires_in=-timedelta(days=30)),
    ]
    assert [e.serial for e in listed(entries, NOW)] == [1, 2, 3]
    assert sorted(r.serial_number for r in crl_of(hierarchy, entries)) == [1, 2, 3]


def test_the_same_certificate_drops_out_once_the_clock_passes_its_expiry_plus_an_hour(
    hierarchy: Hierarchy,
) -> None:
    revoked = entry(9, expires_in=timedelta(hours=2))
    assert len(crl_of(hierarchy, [revoked], now=NOW + timedelta(hours=3))) == 1
    assert len(crl_of(hierarchy, [revoked], now=NOW + timedelta(hours=3, seconds=1))) == 0


def test_entries_without_an_expiry_are_always_listed(hierarchy: Hierarchy) -> None:
    forever = RevokedEntry(77, NOW, 2, None)
    assert len(crl_of(hierarchy, [forever], now=NOW + timedelta(days=3650))) == 1


def test_equal_input_gives_equal_der_whatever_the_entry_order(make_hierarchy: Any) -> None:
    ed25519 = make_hierarchy("OKP")  # Ed25519 signatures are deterministic
    entries = [entry(n) for n in (5, 3, 9, 1)]
    first = crl_of(ed25519, entries)
    second = crl_of(ed25519, list(reversed(entries)))
    assert [r.serial_number for r in first] == [1, 3, 5, 9]
    encoding = serialization.Encoding.DER
    assert first.public_bytes(encoding) == second.public_bytes(encoding)


@pytest.mark.parametrize("kty", ["EC", "OKP", "RSA"])
def test_every_supported_key_type_signs_crls(kty: str, make_hierarchy: Any) -> None:
    other = make_hierarchy(kty)
    crl = crl_of(other, [entry(1)])
    assert crl.is_signature_valid(other.intermediate.public_key())  # type: ignore[arg-type]


def test_a_naive_clock_is_refused(hierarchy: Hierarchy) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        crl_of(hierarchy, [], now=NOW.replace(tzinfo=None))


def test_pem_is_x509_crl_in_64_character_lines(hierarchy: Hierarchy) -> None:
    crl = crl_of(hierarchy, [entry(n) for n in range(1, 40)])
    der = crl.public_bytes(serialization.Encoding.DER)
    text = pem_crl(der)
    assert text == crl.public_bytes(serialization.Encoding.PEM)
    assert x509.load_pem_x509_crl(text).public_bytes(serialization.Encoding.DER) == der
