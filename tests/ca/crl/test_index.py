"""index.txt lines, field by field as `openssl ca` writes them.

The subject's one-line form is judged by OpenSSL itself: `X509_NAME_oneline` called through
ctypes on the DER name.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from ca.crl.index import (
    OPENSSL_REASONS,
    index_line,
    openssl_dn,
    openssl_serial,
    openssl_time,
    read_index,
)

NOW = datetime(2031, 3, 1, 9, 0, 0, tzinfo=UTC)
NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
        x509.NameAttribute(NameOID.COMMON_NAME, "host.example.test"),
    ]
)


def _libcrypto() -> ctypes.CDLL | None:
    path = ctypes.util.find_library("crypto")
    if path is None:
        return None
    lib = ctypes.CDLL(path)
    lib.d2i_X509_NAME.restype = ctypes.c_void_p
    lib.d2i_X509_NAME.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long]
    lib.X509_NAME_oneline.restype = ctypes.c_char_p
    lib.X509_NAME_oneline.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    lib.X509_NAME_free.argtypes = [ctypes.c_void_p]
    return lib


LIBCRYPTO = _libcrypto()


def openssl_oneline(name: x509.Name) -> str:
    assert LIBCRYPTO is not None
    der = name.public_bytes()
    cursor = ctypes.c_char_p(der)
    parsed = LIBCRYPTO.d2i_X509_NAME(None, ctypes.byref(cursor), len(der))
    assert parsed
    try:
        buffer = ctypes.create_string_buffer(4096)
        return bytes(LIBCRYPTO.X509_NAME_oneline(parsed, buffer, len(buffer))).decode("ascii")
    finally:
        LIBCRYPTO.X509_NAME_free(parsed)


COMMON = (
    NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME,
    NameOID.STREET_ADDRESS, NameOID.POSTAL_CODE, NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.SERIAL_NUMBER, NameOID.SURNAME,
    NameOID.GIVEN_NAME, NameOID.TITLE, NameOID.EMAIL_ADDRESS, NameOID.USER_ID,
    NameOID.DOMAIN_COMPONENT, NameOID.PSEUDONYM, NameOID.BUSINESS_CATEGORY,
    NameOID.ORGANIZATION_IDENTIFIER, NameOID.JURISDICTION_COUNTRY_NAME,
)  # fmt: skip
SUBJECTS = {
    "plain": NAME,
    "slash and plus": x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "R/D + Ops, Inc.")]),
    "utf-8": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Zoë Ñandú ✓")]),
    "control": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tab\there")]),
    "bmp string": x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "bmp é", _type=_ASN1Type.BMPString)]
    ),
    "multi-valued rdn": x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "a"),
                    x509.NameAttribute(NameOID.USER_ID, "u1"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "x")]),
        ]
    ),
    "every common attribute": x509.Name([x509.NameAttribute(oid, "vv") for oid in COMMON]),
    "unknown attribute": x509.Name(
        [x509.NameAttribute(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), "private")]
    ),
    "empty": x509.Name([]),
}


@pytest.mark.skipif(LIBCRYPTO is None, reason="libcrypto not found (apt-get install libssl3)")
@pytest.mark.parametrize("case", list(SUBJECTS))
def test_the_subject_is_written_exactly_as_x509_name_oneline_writes_it(case: str) -> None:
    name = SUBJECTS[case]
    assert openssl_dn(name) == openssl_oneline(name)


def test_the_subject_of_a_typical_leaf() -> None:
    assert openssl_dn(NAME) == "/C=US/O=Example/CN=host.example.test"


@pytest.mark.parametrize(
    ("serial", "text"),
    [(1, "01"), (0xABC, "0ABC"), (0xFF, "FF"), (2**127 + 1, "80" + "00" * 14 + "01"), (0, "00")],
)
def test_serials_are_upper_case_hex_in_whole_bytes(serial: int, text: str) -> None:
    assert openssl_serial(serial) == text


def test_times_before_2050_are_utctime_and_after_generalizedtime() -> None:
    assert openssl_time(datetime(2031, 3, 1, 9, 5, 7, 999, tzinfo=UTC)) == "310301090507Z"
    assert openssl_time(datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)) == "491231235959Z"
    assert openssl_time(datetime(2050, 1, 1, tzinfo=UTC)) == "20500101000000Z"


def line(**kwargs: object) -> str:
    fields: dict[str, object] = {
        "serial": 0x1F,
        "subject": NAME,
        "not_after": NOW + timedelta(hours=1),
        "revoked_at": None,
        "reason_code": None,
        "now": NOW,
    }
    fields.update(kwargs)
    return index_line(**fields)  # type: ignore[arg-type]


def test_a_valid_certificate_is_v_with_an_empty_revocation_field() -> None:
    assert line() == "V\t310301100000Z\t\t1F\tunknown\t/C=US/O=Example/CN=host.example.test"


def test_an_expired_certificate_is_e_judged_at_the_given_time() -> None:
    assert line(not_after=NOW - timedelta(seconds=1)).startswith("E\t310301085959Z\t\t")
    assert line(not_after=NOW).startswith("V\t")


def test_a_revoked_certificate_is_r_with_its_time_and_openssl_reason_name() -> None:
    revoked = line(revoked_at=NOW - timedelta(minutes=1), reason_code=1)
    assert revoked.split("\t")[:3] == ["R", "310301100000Z", "310301085900Z,keyCompromise"]


def test_a_revoked_and_expired_certificate_stays_r() -> None:
    revoked = line(not_after=NOW - timedelta(days=2), revoked_at=NOW - timedelta(days=3))
    assert revoked.startswith("R\t")


@pytest.mark.parametrize("code", [0, 7, 8, 9, 10])
def test_reasons_openssl_ca_cannot_read_or_that_crls_omit_are_left_out(code: int) -> None:
    revoked = line(revoked_at=NOW, reason_code=code)
    assert revoked.split("\t")[2] == "310301090000Z"


def test_reason_names_are_those_openssl_ca_accepts() -> None:
    assert OPENSSL_REASONS == {
        1: "keyCompromise",
        2: "CACompromise",
        3: "affiliationChanged",
        4: "superseded",
        5: "cessationOfOperation",
        6: "certificateHold",
    }


def test_lines_read_back_field_by_field() -> None:
    (entry,) = read_index([line(revoked_at=NOW, reason_code=4) + "\n"])
    assert (entry.status, entry.serial, entry.revocation) == ("R", "1F", "310301090000Z,superseded")
    assert entry.subject == "/C=US/O=Example/CN=host.example.test"
