"""The OpenSSL CA database (`index.txt`), written from the `certificates` projection.

One line per certificate, six tab-separated fields, exactly as `openssl ca` writes them:

    status  expiry  revocation[,reason]  serial  filename  subject

status `V` (valid), `R` (revoked) or `E` (expired, not revoked — judged at `now`); times as
the certificate encodes them (UTCTime `yymmddHHMMSSZ` before 2050, GeneralizedTime after);
the serial in upper-case hex with an even number of digits; `unknown` for the file name;
the subject in `X509_NAME_oneline` form (`/C=US/O=Example/CN=host`).

So `openssl ca -gencrl`, `openssl ocsp -index` and any tool reading that database work on
what the ledger says.

A serial revoked without being issued here (`x509.revoked_unissued`) has a line too, after
the certificates, whichever issuer is asked for: `R`, expiry `99991231235959Z` (RFC 5280
§4.1.2.5's "no well-defined expiration date": none is known), its revocation, its serial,
and an empty subject (none is known). `openssl ca` reads such a line (a subject is checked
for uniqueness only on `V` lines) and lists the serial in `-gencrl`; `openssl ocsp -index`
answers "revoked" for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from sqlalchemy import Connection, select

from ca.crl.records import parse_stored_time
from projections.certificates import certificates, revoked_unissued

__all__ = [
    "NO_EXPIRY",
    "OPENSSL_REASONS",
    "IndexEntry",
    "index_entries",
    "index_line",
    "openssl_dn",
    "openssl_serial",
    "openssl_time",
    "read_index",
    "unissued_index_line",
]

OPENSSL_REASONS = {
    1: "keyCompromise",
    2: "CACompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
    6: "certificateHold",
}
"""Reason codes as `openssl ca` names them in the database.

Left without a name, as our CRLs list them without a CRLReason: 0 (unspecified — what
`openssl ca -revoke` writes when no -crl_reason is given), 7 (unassigned), 8 (removeFromCRL,
which in a full CRL means "not revoked"), and 9/10 (privilegeWithdrawn, AACompromise),
which `openssl ca` cannot read: one such line makes it refuse the whole database.
"""

NO_EXPIRY = "99991231235959Z"
"""The expiry of a line whose certificate's expiry is unknown (RFC 5280 §4.1.2.5)."""

# OpenSSL's short names (OBJ_nid2sn); other attributes are written as dotted OIDs.
_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.4": "SN",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "street",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "title",
    "2.5.4.15": "businessCategory",
    "2.5.4.16": "postalAddress",
    "2.5.4.17": "postalCode",
    "2.5.4.41": "name",
    "2.5.4.42": "GN",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.45": "x500UniqueIdentifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.97": "organizationIdentifier",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "1.2.840.113549.1.9.1": "emailAddress",
    "1.2.840.113549.1.9.2": "unstructuredName",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionL",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionST",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionC",
}

_BMP_STRING = 30
_UNIVERSAL_STRING = 28


@dataclass(frozen=True)
class IndexEntry:
    status: str
    expiry: str
    revocation: str
    serial: str
    subject: str

    def line(self) -> str:
        return "\t".join((self.status, self.expiry, self.revocation, self.serial, "unknown",
                          self.subject))  # fmt: skip


def openssl_time(moment: datetime) -> str:
    """An ASN.1 time as OpenSSL prints it: UTCTime until 2049, GeneralizedTime after."""
    moment = moment.astimezone(UTC)
    if 1950 <= moment.year < 2050:
        return moment.strftime("%y%m%d%H%M%SZ")
    return moment.strftime("%Y%m%d%H%M%SZ")


def openssl_serial(serial: int) -> str:
    """Upper-case hex, whole bytes (BN_bn2hex), "00" for zero."""
    if serial == 0:
        return "00"
    digits = f"{serial:X}"
    return digits if len(digits) % 2 == 0 else "0" + digits


def openssl_dn(name: x509.Name) -> str:
    """The one-line form of X509_NAME_oneline: `/TYPE=value`, `+` inside a multi-valued RDN;
    `/` and `+` in values escaped with a backslash, bytes outside 0x20-0x7E as `\\xHH`."""
    parts: list[str] = []
    for rdn in name.rdns:
        members = [f"{_short_name(a.oid)}={_escape(_value_bytes(a))}" for a in rdn]
        parts.append("/" + "+".join(members))
    return "".join(parts)


def _short_name(oid: x509.ObjectIdentifier) -> str:
    return _SHORT_NAMES.get(oid.dotted_string, oid.dotted_string)


def _value_bytes(attribute: x509.NameAttribute[str | bytes]) -> bytes:
    value = attribute.value
    if isinstance(value, bytes):
        return value
    # The bytes the certificate holds: OpenSSL escapes those, not characters.
    tag = getattr(getattr(attribute, "_type", None), "value", None)
    if tag == _BMP_STRING:
        return value.encode("utf-16-be")
    if tag == _UNIVERSAL_STRING:
        return value.encode("utf-32-be")
    return value.encode("utf-8")


def _escape(data: bytes) -> str:
    out: list[str] = []
    for byte in data:
        if byte < 0x20 or byte > 0x7E:
            out.append(f"\\x{byte:02X}")
        elif byte in (0x2F, 0x2B):  # "/" and "+"
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    return "".join(out)


def index_line(
    *,
    serial: int,
    subject: x509.Name,
    not_after: datetime,
    revoked_at: datetime | None,
    reason_code: int | None,
    now: datetime,
) -> str:
    """One line of index.txt for one certificate, judged at `now`."""
    if revoked_at is not None:
        status = "R"
        revocation = _revocation(revoked_at, reason_code)
    else:
        status = "E" if not_after < now else "V"
        revocation = ""
    return IndexEntry(
        status, openssl_time(not_after), revocation, openssl_serial(serial), openssl_dn(subject)
    ).line()


def unissued_index_line(*, serial: int, revoked_at: datetime, reason_code: int | None) -> str:
    """The line of a serial revoked without being issued here: no expiry, no subject."""
    revocation = _revocation(revoked_at, reason_code)
    return IndexEntry("R", NO_EXPIRY, revocation, openssl_serial(serial), "").line()


def _revocation(revoked_at: datetime, reason_code: int | None) -> str:
    revocation = openssl_time(revoked_at)
    reason = OPENSSL_REASONS.get(reason_code or 0)
    return revocation if reason is None else f"{revocation},{reason}"


def index_entries(
    connection: Connection, *, now: datetime, issuer_key_id: str | None = None
) -> Iterator[str]:
    """index.txt lines for every certificate (of one issuer, if given), in issuance order,
    then for every serial revoked without being issued here, in revocation order."""
    query = select(
        certificates.c.serial,
        certificates.c.certificate,
        certificates.c.not_after,
        certificates.c.revoked_at,
        certificates.c.revocation_reason_code,
    ).order_by(certificates.c.issued_position)
    if issuer_key_id is not None:
        query = query.where(certificates.c.issuer_key_id == issuer_key_id)
    for row in connection.execution_options(yield_per=1000).execute(query):
        certificate = x509.load_pem_x509_certificate(row.certificate.encode())
        yield index_line(
            serial=int(row.serial),
            subject=certificate.subject,
            not_after=parse_stored_time(row.not_after),
            revoked_at=parse_stored_time(row.revoked_at) if row.revoked_at else None,
            reason_code=row.revocation_reason_code,
            now=now,
        )
    unissued = select(
        revoked_unissued.c.serial,
        revoked_unissued.c.revoked_at,
        revoked_unissued.c.revocation_reason_code,
    ).order_by(revoked_unissued.c.revoked_position)
    for revoked in connection.execute(unissued):
        yield unissued_index_line(
            serial=int(revoked.serial),
            revoked_at=parse_stored_time(revoked.revoked_at),
            reason_code=revoked.revocation_reason_code,
        )


def read_index(lines: Iterable[str]) -> list[IndexEntry]:
    """Parse index.txt lines back (for checks and tests); the file name field is dropped."""
    entries = []
    for line in lines:
        status, expiry, revocation, serial, _filename, subject = line.rstrip("\n").split("\t")
        entries.append(IndexEntry(status, expiry, revocation, serial, subject))
    return entries
