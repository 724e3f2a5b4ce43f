"""The offline root's CRL: revocations, carried-over entries, numbering, wrong inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from ca.crl.root import Revocation, parse_reason, parse_serial, sign_root_crl
from ca.errors import ConfigError

NOW = datetime(2031, 3, 1, 9, 0, 0, tzinfo=UTC)
MONTH = timedelta(hours=720)


def sign(h: Any, revoke: list[Revocation], **kwargs: Any) -> Any:
    options: dict[str, Any] = {"now": NOW, "next_update": MONTH}
    options.update(kwargs)
    return sign_root_crl(root=h.root, root_key=h.root_key, revoke=revoke, **options)


def number_of(crl: x509.CertificateRevocationList) -> int:
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def test_revoking_the_intermediate_lists_it_signed_by_the_root(hierarchy: Any) -> None:
    serial = hierarchy.intermediate.serial_number
    signed = sign(hierarchy, [Revocation(serial, 1)])
    crl = signed.crl
    assert crl.is_signature_valid(hierarchy.root.public_key())
    assert crl.issuer == hierarchy.root.subject
    (revoked,) = list(crl)
    assert revoked.serial_number == serial
    assert revoked.revocation_date_utc == NOW
    assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    assert crl.next_update_utc == NOW + MONTH
    assert number_of(crl) == signed.number == 1
    assert signed.added == [serial]


def test_the_root_crl_has_no_issuing_distribution_point(hierarchy: Any) -> None:
    # A complete CRL for everything the root signed, whatever CDP the intermediate has.
    with pytest.raises(x509.ExtensionNotFound):
        sign(hierarchy, []).crl.extensions.get_extension_for_oid(
            ExtensionOID.ISSUING_DISTRIBUTION_POINT
        )


def test_an_empty_root_crl_is_valid(hierarchy: Any) -> None:
    assert len(sign(hierarchy, []).crl) == 0


def test_a_previous_crl_carries_its_entries_and_its_number_plus_one(hierarchy: Any) -> None:
    first = sign(hierarchy, [Revocation(1001, 2)], number=41).crl
    later = NOW + timedelta(days=20)
    second = sign(hierarchy, [Revocation(1002, 5)], previous=first, now=later)
    assert second.number == 42
    entries = {r.serial_number: r for r in second.crl}
    assert set(entries) == {1001, 1002}
    assert entries[1001].revocation_date_utc == NOW  # kept, not re-dated
    assert entries[1001].extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.ca_compromise
    )
    assert entries[1002].revocation_date_utc == later


def test_root_crl_entries_never_expire(hierarchy: Any) -> None:
    first = sign(hierarchy, [Revocation(7, 1)]).crl
    ten_years = sign(hierarchy, [], previous=first, now=NOW + timedelta(days=3650))
    assert [r.serial_number for r in ten_years.crl] == [7]


def test_revoking_a_serial_listed_already_keeps_the_first_revocation(hierarchy: Any) -> None:
    first = sign(hierarchy, [Revocation(7, 1)]).crl
    again = sign(hierarchy, [Revocation(7, 4)], previous=first, now=NOW + timedelta(days=1))
    assert again.already_listed == [7] and again.added == []
    (revoked,) = list(again.crl)
    assert revoked.revocation_date_utc == NOW


def test_a_number_not_above_the_previous_one_is_refused(hierarchy: Any) -> None:
    first = sign(hierarchy, [], number=5).crl
    with pytest.raises(ConfigError, match="not above the previous CRL's 5"):
        sign(hierarchy, [], previous=first, number=5)


def test_a_previous_crl_from_another_root_is_refused(hierarchy: Any, make_hierarchy: Any) -> None:
    foreign = sign(make_hierarchy(name="Acme"), [Revocation(9, 1)]).crl
    with pytest.raises(ConfigError, match="not signed by this root"):
        sign(hierarchy, [], previous=foreign)


def test_a_key_that_is_not_the_roots_is_refused(hierarchy: Any) -> None:
    with pytest.raises(ConfigError, match="does not match the root certificate"):
        sign_root_crl(
            root=hierarchy.root,
            root_key=hierarchy.intermediate_key,
            revoke=[],
            now=NOW,
            next_update=MONTH,
        )


@pytest.mark.parametrize(
    ("text", "value"),
    [("1234", 1234), ("0x4D2", 1234), ("04:d2", 1234), (" 0X04d2 ", 1234)],
)
def test_serials_are_decimal_or_openssl_hex(text: str, value: int) -> None:
    assert parse_serial(text) == value


@pytest.mark.parametrize("text", ["", "abc", "0", "-5", "0xZZ"])
def test_a_malformed_serial_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_serial(text)


@pytest.mark.parametrize(
    ("text", "code"),
    [("1", 1), ("keyCompromise", 1), ("CACompromise", 2), ("superseded", 4), ("10", 10)],
)
def test_reasons_are_codes_or_names(text: str, code: int) -> None:
    assert parse_reason(text) == code


@pytest.mark.parametrize("text", ["7", "11", "-1", "stolen"])
def test_an_unknown_reason_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="not an RFC 5280 reason code"):
        parse_reason(text)


def test_an_intermediate_can_name_where_the_root_crl_is_published(make_hierarchy: Any) -> None:
    url = "http://pki.example.test/root.crl"
    intermediate = make_hierarchy(crl_url=url).intermediate
    extension = intermediate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert not extension.critical
    (point,) = extension.value
    assert point.full_name == [x509.UniformResourceIdentifier(url)]
    assert point.reasons is None and point.crl_issuer is None
