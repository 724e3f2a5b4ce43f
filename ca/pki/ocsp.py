"""OCSP (RFC 6960) without I/O: read a request, build and sign the response.

Pure: the caller passes the certificate's status, the issuer and its key, and the clock;
nothing here reads the time, the disk or the database. cryptography parses and signs; the
few lines of DER handling here exist for what it does not do (a request listing several
certificates, the exact issuer name and key bytes a CertID hashes).

A serial the CA never issued but revoked (`x509.revoked_unissued`) is answered "revoked" in
the form RFC 6960 §2.2 prescribes for a "non-issued" certificate: reason certificateHold,
revocation time 1970-01-01T00:00:00Z, no CRL entry extensions, and the extended revoked
definition extension (§4.4.8: NULL, non-critical, in responseExtensions). Other serials we
have no record of stay "unknown".

A request may list several certificates, but cryptography's builder writes one
SingleResponse per response: we answer the first and the client reports "no status" for the
others (openssl does exactly that). Clients ask for one certificate in practice (RFC 5019).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519
from cryptography.x509 import ocsp

from ca.keys.files import PrivateKey

__all__ = [
    "CERT_ID_HASHES",
    "DEFAULT_VALIDITY",
    "EXTENDED_REVOKE",
    "NON_ISSUED_REVOCATION_TIME",
    "CertificateStatus",
    "MalformedRequest",
    "Request",
    "build_response",
    "decode_get_path",
    "issuer_hashes",
    "parse_request",
    "unsuccessful",
]

DEFAULT_VALIDITY = timedelta(hours=1)
"""nextUpdate - thisUpdate: how long a client (or an HTTP cache) may keep an answer."""

EXTENDED_REVOKE = x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.9")
"""id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8); its value is NULL."""

NON_ISSUED_REVOCATION_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""The revocationTime RFC 6960 §2.2 requires in a "revoked" answer for a non-issued
certificate (with reason certificateHold)."""

_DER_NULL = b"\x05\x00"

# RFC 8954 §2.1: a nonce longer than 32 octets MUST be refused as malformed.
MAX_NONCE = 32

# A DER INTEGER of 20 content octets holds a positive value of at most 159 bits.
MAX_SERIAL_BITS = 159

CERT_ID_HASHES: tuple[hashes.HashAlgorithm, ...] = (
    hashes.SHA1(),  # noqa: S303 - CertID hashing, as every client sends it; not a signature
    hashes.SHA224(),
    hashes.SHA256(),
    hashes.SHA384(),
    hashes.SHA512(),
)
"""The CertID hash algorithms cryptography reads from a request."""

# RFC 5280 CRLReason codes (7 is unused). 0, "unspecified", is left out of the response as
# RFC 5280 asks of CRL entries, and as Go's responders (step-ca, Boulder) write it.
REASONS: dict[int, x509.ReasonFlags] = {
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    8: x509.ReasonFlags.remove_from_crl,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
}


class MalformedRequest(ValueError):
    """The bytes are not an OCSP request we can answer: the reply is `malformedRequest`."""


@dataclass(frozen=True)
class Request:
    """The first CertID of a request, its nonce, and how many CertIDs it listed."""

    hash_algorithm: hashes.HashAlgorithm
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int
    nonce: bytes | None
    count: int = 1


@dataclass(frozen=True)
class CertificateStatus:
    """What the ledger says about one serial under one issuer."""

    state: Literal["good", "revoked", "unknown"]
    revoked_at: datetime | None = None
    reason_code: int | None = None
    non_issued: bool = False
    """Revoked, though never issued here: the response claims the extended revoked
    definition (RFC 6960 §2.2, §4.4.8)."""

    @classmethod
    def good(cls) -> CertificateStatus:
        return cls("good")

    @classmethod
    def unknown(cls) -> CertificateStatus:
        return cls("unknown")

    @classmethod
    def revoked(cls, at: datetime, reason_code: int | None) -> CertificateStatus:
        return cls("revoked", at, reason_code)

    @classmethod
    def revoked_non_issued(cls) -> CertificateStatus:
        """RFC 6960 §2.2's "revoked" for a non-issued certificate: certificateHold at
        1970-01-01, whatever time and reason the revocation recorded (the CRL has those)."""
        return cls("revoked", NON_ISSUED_REVOCATION_TIME, 6, non_issued=True)


# -- requests ----------------------------------------------------------------------------


def decode_get_path(text: str) -> bytes:
    """The DER request from the path of `GET /ocsp/{base64}` (RFC 6960 Appendix A.1).

    Tolerant of what clients and proxies do to it: still percent-encoded, `+` turned into a
    space, URL-safe alphabet, padding missing.
    """
    if "%" in text:
        text = unquote(text)
    text = text.strip().replace(" ", "+").replace("-", "+").replace("_", "/").rstrip("=")
    try:
        der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequest("the path is not base64") from None
    if not der:
        raise MalformedRequest("empty request")
    return der


def parse_request(der: bytes) -> Request:
    """The first CertID and the nonce of a DER OCSP request; MalformedRequest otherwise.

    The request's optional signature is not checked: anyone may ask for a status.
    """
    count = 1
    try:
        loaded = ocsp.load_der_ocsp_request(der)
    except NotImplementedError:
        # cryptography reads single-certificate requests only: keep the first one.
        der, count = _first_request_only(der)
        loaded = _load(der)
    except ValueError:
        raise MalformedRequest("not a DER OCSP request") from None
    try:
        algorithm = loaded.hash_algorithm
    except UnsupportedAlgorithm:
        raise MalformedRequest("unsupported CertID hash algorithm") from None
    try:
        extensions = loaded.extensions
    except (ValueError, x509.DuplicateExtension):
        raise MalformedRequest("unreadable request extensions") from None
    nonce: bytes | None = None
    with contextlib.suppress(x509.ExtensionNotFound):
        nonce = extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE:
        raise MalformedRequest(f"nonce of {len(nonce)} octets (1 to {MAX_NONCE} allowed)")
    serial = loaded.serial_number
    if not 0 < serial < 1 << MAX_SERIAL_BITS:
        # RFC 5280 §4.1.2.2: a positive INTEGER of at most 20 octets. No certificate has
        # another (ours are 128-bit), and a 4,300-digit one cannot even be logged.
        raise MalformedRequest("the serial number is not a positive integer of at most 20 octets")
    return Request(
        hash_algorithm=algorithm,
        issuer_name_hash=loaded.issuer_name_hash,
        issuer_key_hash=loaded.issuer_key_hash,
        serial_number=serial,
        nonce=nonce,
        count=count,
    )


def _load(der: bytes) -> ocsp.OCSPRequest:
    try:
        return ocsp.load_der_ocsp_request(der)
    except (ValueError, NotImplementedError):
        raise MalformedRequest("not a DER OCSP request") from None


# -- issuers -----------------------------------------------------------------------------


def issuer_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CertID naming `issuer` (RFC 6960 §4.1.1).

    Hashed over the exact DER of the issuer's subject and of its subjectPublicKey bits, as
    they appear in its certificate (not a re-encoding).
    """
    subject, public_key_bits = _subject_and_key_bits(issuer.tbs_certificate_bytes)
    return _digest(algorithm, subject), _digest(algorithm, public_key_bits)


def _digest(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


# -- responses ---------------------------------------------------------------------------


def build_response(
    request: Request,
    status: CertificateStatus,
    *,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    now: datetime,
    validity: timedelta = DEFAULT_VALIDITY,
) -> bytes:
    """A successful, DER-encoded basic response signed by the issuing CA itself.

    The CertID is echoed as the client sent it (same hash algorithm); the responder ID is
    the issuer's key hash; no certificates are included, since the issuer signs directly and
    the client already holds its certificate.
    """
    revocation_time: datetime | None = None
    reason: x509.ReasonFlags | None = None
    if status.state == "good":
        cert_status = ocsp.OCSPCertStatus.GOOD
    elif status.state == "revoked":
        if status.revoked_at is None:
            raise ValueError("a revoked status needs its revocation time")
        cert_status = ocsp.OCSPCertStatus.REVOKED
        revocation_time = status.revoked_at
        reason = REASONS.get(status.reason_code or 0)
    else:
        cert_status = ocsp.OCSPCertStatus.UNKNOWN
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=cert_status,
            this_update=now,
            next_update=now + validity,
            revocation_time=revocation_time,
            revocation_reason=reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
    )
    if request.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(request.nonce), critical=False)
    if status.non_issued:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(EXTENDED_REVOKE, _DER_NULL), critical=False
        )
    response = builder.sign(issuer_key, _signature_hash(issuer_key))
    return response.public_bytes(serialization.Encoding.DER)


def unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    """An unsigned error response: malformedRequest, internalError, unauthorized…"""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


def _signature_hash(key: PrivateKey) -> hashes.HashAlgorithm | None:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None  # EdDSA hashes internally
    return hashes.SHA256()


# -- the little DER this needs -----------------------------------------------------------

_SEQUENCE = 0x30
_BIT_STRING = 0x03
_CONTEXT_0 = 0xA0


@dataclass(frozen=True)
class _TLV:
    tag: int
    start: int  # of the tag
    content: int  # first content byte
    end: int  # one past the last content byte


def _read(data: bytes, offset: int, limit: int) -> _TLV:
    if offset + 2 > limit:
        raise MalformedRequest("truncated DER")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise MalformedRequest("unexpected high-number DER tag")
    length = data[offset + 1]
    content = offset + 2
    if length & 0x80:
        octets = length & 0x7F
        if not 1 <= octets <= 4 or content + octets > limit:
            raise MalformedRequest("bad DER length")
        length = int.from_bytes(data[content : content + octets], "big")
        content += octets
    end = content + length
    if end > limit:
        raise MalformedRequest("truncated DER")
    return _TLV(tag, offset, content, end)


def _children(data: bytes, parent: _TLV) -> list[_TLV]:
    items = []
    offset = parent.content
    while offset < parent.end:
        item = _read(data, offset, parent.end)
        items.append(item)
        offset = item.end
    return items


def _encode(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _first_request_only(der: bytes) -> tuple[bytes, int]:
    """The request re-encoded with only its first CertID (and without its signature),
    and how many CertIDs it had."""
    outer = _read(der, 0, len(der))
    if outer.tag != _SEQUENCE or outer.end != len(der):
        raise MalformedRequest("not a DER OCSP request")
    tbs = _children(der, outer)[0] if outer.end > outer.content else None
    if tbs is None or tbs.tag != _SEQUENCE:
        raise MalformedRequest("not a DER OCSP request")
    parts: list[bytes] = []
    count = 0
    for item in _children(der, tbs):
        if item.tag == _SEQUENCE and count == 0:  # requestList: the only untagged field
            requests = _children(der, item)
            if not requests:
                raise MalformedRequest("the request lists no certificate")
            count = len(requests)
            parts.append(_encode(_SEQUENCE, der[requests[0].start : requests[0].end]))
        else:
            parts.append(der[item.start : item.end])
    if count == 0:
        raise MalformedRequest("the request lists no certificate")
    return _encode(_SEQUENCE, _encode(_SEQUENCE, b"".join(parts))), count


def _subject_and_key_bits(tbs_certificate: bytes) -> tuple[bytes, bytes]:
    """The subject Name's DER and the subjectPublicKey bits from a TBSCertificate."""
    tbs = _read(tbs_certificate, 0, len(tbs_certificate))
    fields = _children(tbs_certificate, tbs)
    if fields and fields[0].tag == _CONTEXT_0:  # version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    subject, spki = fields[4], fields[5]
    algorithm_and_key = _children(tbs_certificate, spki)
    key = algorithm_and_key[1]
    if key.tag != _BIT_STRING or key.end <= key.content:
        raise ValueError("certificate without a subjectPublicKey BIT STRING")
    # Skip the BIT STRING's unused-bits octet: the hash covers the key bits only.
    return tbs_certificate[subject.start : subject.end], tbs_certificate[key.content + 1 : key.end]
