"""Renewal, rekey and revocation: what happens to a certificate after it was issued.

The same pipeline as issuance, with a certificate as the credential:

* **authenticate** — the mTLS peer certificate (the handshake verified its chain and
  expiry), or for renewal a step-style "x5cInsecure" token: a JWT signed by the
  certificate's key and carrying its chain (`verify_renew_token`, pure); for revocation a
  JWK one-time token whose subject is the serial, or the certificate revoking itself;
* **authorize** — the certificate is ours (its serial and DER are in `certificates`), not
  revoked, and its provisioner's claims allow it (`authorize_renewal`, pure);
* **build** — a copy of the old certificate: subject, SANs and every extension, the
  lifetime kept, a new serial, signed by the current intermediate (`ca.pki.issuer.CopyProfile`);
* **record** — `x509.issued` with `renewed_from` / `rekeyed_from`, or `x509.revoked`,
  through the authority's group committer. The `certificates` projection re-checks inside
  the append transaction that the old certificate is not revoked, so a revocation
  committed by any instance an instant earlier wins.

Unlike step-ca, every revocation is active as well as passive: the CRL and the OCSP
responder read the same ledger, so `passive: false` is accepted rather than refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import select

from ca.authority.authority import Authority, Issued, parse_csr
from ca.authority.recorder import Actor, RequestInfo
from ca.authority.state import ActiveKey, ProvisionerRecord, Snapshot
from ca.errors import AuthError, BadRequest, NotFound, PolicyError
from ca.keys.files import PublicKey
from ca.pki.claims import Claims
from ca.pki.issuer import CopyProfile, issue, prepare
from ca.pki.provisioner_extension import from_certificate

# The JWS primitives are shared with the JWK provisioner so both verify tokens identically
# (go-jose's rules: r‖s ECDSA signatures, PSS with any salt length).
from ca.provisioners.jwk import _check_csr_key
from ca.tokens import (
    DEFAULT_LEEWAY,
    audiences,
    check_registered,
    peek,
    verify_signed_by_key,
)
from ledger import NewEvent, format_time
from ledger import catalogue as ev
from projections.certificates import (
    AlreadyRevoked,
    CertificateRevoked,
    UnknownCertificate,
    certificates,
)

__all__ = [
    "RENEW_TOKEN_ISSUER",
    "RenewToken",
    "RevokeRequest",
    "Revoked",
    "authorize_renewal",
    "check_reason",
    "check_reason_code",
    "parse_serial",
    "rekey",
    "renew",
    "renewal_validity",
    "revoke",
    "verify_renew_token",
]

RENEW_TOKEN_ISSUER = "step-ca-client/1.0"  # noqa: S105 - a JWT issuer, not a password
"""The `iss` of step's renewal tokens (`step ca renew --mtls=false`)."""

# RFC 5280 CRLReason; 7 is not assigned.
REASON_CODES = frozenset(range(11)) - {7}
MAX_REASON_LENGTH = 1024
_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")


# -- values ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevokeRequest:
    """`POST /revoke`'s body, its types already checked."""

    serial: str
    ott: str = ""
    reason_code: int = 0
    reason: str = ""
    passive: bool = True


@dataclass(frozen=True)
class Revoked:
    serial: str
    position: int
    provisioner: str | None
    mtls: bool


@dataclass(frozen=True)
class RenewToken:
    """A verified renewal token: the certificate it proves possession of, its single-use id."""

    certificate: x509.Certificate
    token_id: str


def parse_serial(text: str) -> str:
    """A serial as step-ca keys it: decimal digits, from decimal or `0x` hexadecimal."""
    text = text.strip()
    if not text:
        raise BadRequest("missing serial")
    if _DECIMAL.fullmatch(text):
        value = int(text, 10)
    elif _HEX.fullmatch(text):
        value = int(text, 16)
    else:
        raise BadRequest(
            f"'{text[:80]}' is not a valid serial number - use a base 10 representation or a "
            "base 16 representation with '0x' prefix"
        )
    if value <= 0 or value.bit_length() > 160:  # RFC 5280: positive, at most 20 octets
        raise BadRequest(f"'{text[:80]}' is not a valid serial number")
    return str(value)


def check_reason_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("reasonCode must be an integer")
    if value not in REASON_CODES:
        raise BadRequest("reasonCode out of bounds")
    return value


def check_reason(reason: str) -> str:
    """A revocation reason is free text that reaches CRL readers' logs and operators'
    terminals: bounded, and printable (no escape sequences, no forged newlines)."""
    if len(reason) > MAX_REASON_LENGTH:
        raise BadRequest(f"reason is longer than {MAX_REASON_LENGTH} characters")
    if not reason.isprintable():
        raise BadRequest("reason must be printable text: it contains control characters")
    return reason


# -- renewal: pure parts -----------------------------------------------------------------


def verify_renew_token(
    token: str,
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    accepted_audiences: frozenset[str],
    now: datetime,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> RenewToken:
    """step-ca's `AuthorizeRenewToken`: a JWT signed by the key of the certificate it carries.

    The chain is verified as of the leaf's NotAfter - 1 minute: an expired certificate can
    prove possession here (whether it may renew is the provisioner's `allowRenewalAfterExpiry`).
    """
    unverified = peek(token)
    header, claims = unverified.header, unverified.claims
    leaf, supplied = _x5c_chain(header.get("x5cInsecure"))
    verify_signed_by_key(token, header, leaf.public_key(), "renewal certificate")

    _verify_chain(leaf, [*supplied, *intermediates], roots, at=leaf.not_valid_after_utc - leeway)
    _require_client_usage(leaf)

    provisioner = _extension(leaf)
    common_names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    registered = check_registered(
        token,
        claims,
        accepted_audiences=accepted_audiences,
        now=now,
        issuers={RENEW_TOKEN_ISSUER} | ({provisioner.name} if provisioner else set()),
        subject=str(common_names[0].value) if common_names else "",
        leeway=leeway,
    )
    return RenewToken(leaf, registered.token_id)


def authorize_renewal(
    certificate: x509.Certificate, claims: Claims, *, now: datetime, via_token: bool
) -> None:
    """step-ca's `DefaultAuthorizeRenew`; revocation is checked against the ledger, not here."""
    if claims.disable_renewal:
        raise AuthError("renew is disabled for the certificate's provisioner")
    if now < certificate.not_valid_before_utc:
        raise AuthError(
            f"certificate is not yet valid: it starts at {_iso(certificate.not_valid_before_utc)}"
        )
    if now > certificate.not_valid_after_utc:
        expired = f"certificate expired on {_iso(certificate.not_valid_after_utc)}"
        if not via_token:
            raise AuthError(expired)
        if not claims.allow_renewal_after_expiry:
            raise AuthError(f"{expired}; its provisioner does not allow renewal after expiry")


def renewal_validity(
    old: x509.Certificate, *, now: datetime, backdate: timedelta
) -> tuple[datetime, datetime]:
    """The old lifetime from now: NotBefore = now - backdate, the span unchanged."""
    now = now.replace(microsecond=0)
    span = old.not_valid_after_utc - old.not_valid_before_utc
    ahead = span - backdate if span > backdate else span
    return now - backdate, now + ahead


# -- renewal and rekey -------------------------------------------------------------------


def renew(
    authority: Authority,
    *,
    peer: x509.Certificate | None,
    bearer: str | None,
    info: RequestInfo,
) -> Issued:
    """`POST /renew`: the mTLS peer certificate wins; else an x5cInsecure bearer token."""
    now = authority.clock()
    snapshot = authority.snapshot()
    token_id: str | None = None
    if peer is not None:
        old = peer
    elif bearer:
        verified = verify_renew_token(
            bearer,
            roots=_certificates(snapshot.roots),
            intermediates=_certificates(snapshot.intermediates),
            accepted_audiences=audiences(authority.runtime.config.dns_names, "renew"),
            now=now,
        )
        old, token_id = verified.certificate, verified.token_id
    else:
        raise AuthError("missing client certificate")
    return _reissue(
        authority,
        snapshot,
        old,
        public_key=cast(PublicKey, old.public_key()),
        now=now,
        via_token=peer is None,
        token_id=token_id,
        info=info,
        rekey=False,
    )


def rekey(
    authority: Authority, *, peer: x509.Certificate | None, csr_pem: str, info: RequestInfo
) -> Issued:
    """`POST /rekey`: mTLS only; the renewed certificate carries the CSR's key."""
    if peer is None:
        raise AuthError("missing client certificate: rekey needs mTLS")
    csr = parse_csr(csr_pem)
    _check_csr_key(csr)  # the same key rules as issuance: 403 for a weak key
    return _reissue(
        authority,
        authority.snapshot(),
        peer,
        public_key=cast(PublicKey, csr.public_key()),
        now=authority.clock(),
        via_token=False,
        token_id=None,
        info=info,
        rekey=True,
    )


def _reissue(
    authority: Authority,
    snapshot: Snapshot,
    old: x509.Certificate,
    *,
    public_key: PublicKey,
    now: datetime,
    via_token: bool,
    token_id: str | None,
    info: RequestInfo,
    rekey: bool,
) -> Issued:
    row = _own_row(authority, old)
    if row["status"] == "revoked":
        raise AuthError("certificate has been revoked")
    record = _provisioner_of(snapshot, row)
    claims = record.parsed_claims if record else Claims.from_json(None, None)
    authorize_renewal(old, claims, now=now, via_token=via_token)
    issuer = snapshot.intermediate
    validity = renewal_validity(old, now=now, backdate=claims.backdate)
    prepared = prepare(
        CopyProfile(old),
        public_key,
        validity,
        authority.issuer(snapshot),
        authority.leaf_rules(snapshot),
    )
    certificate = issue(prepared)
    old_serial = str(old.serial_number)
    actor: dict[str, Any] = {"authenticated_by": "token" if via_token else "mtls"}
    if not via_token:
        actor["mtls_serial"] = old_serial
    provisioner = {"id": record.id, "name": record.name, "type": record.type} if record else None
    try:
        position = authority.record_issued(
            certificate,
            issuer,
            sans=json.loads(row["sans"]),
            provisioner=provisioner,
            token_id=token_id,
            info=info,
            actor_extra=actor,
            renewed_from=None if rekey else old_serial,
            rekeyed_from=old_serial if rekey else None,
        )
    except CertificateRevoked:
        # Revoked by some instance between our read and our append: the ledger decides.
        raise AuthError("certificate has been revoked") from None
    except UnknownCertificate:
        raise AuthError("certificate was not issued by this CA") from None
    return Issued(
        certificate,
        authority.chain_pems(certificate, issuer),
        str(certificate.serial_number),
        record.name if record else None,
        position,
    )


# -- revocation --------------------------------------------------------------------------


def revoke(
    authority: Authority,
    request: RevokeRequest,
    *,
    peer: x509.Certificate | None,
    info: RequestInfo,
) -> Revoked:
    """`POST /revoke` with a JWK one-time token (`sub` = serial) or mTLS (self-revocation)."""
    serial = parse_serial(request.serial)
    reason_code = check_reason_code(request.reason_code)
    check_reason(request.reason)
    now = authority.clock()
    actor = Actor(authority.instance, info)
    provisioner: dict[str, str] | None = None
    token_id: str | None = None
    if request.ott:
        record, token_id = _revoke_token(authority, request.ott, serial, now)
        provisioner = {"id": record.id, "name": record.name, "type": record.type}
        actor = Actor(
            authority.instance, info, provisioner_id=record.id, provisioner=record.name,
            token_id=token_id,
        )  # fmt: skip
        if _find_row(authority, serial) is None:
            # step-ca records unknown serials too; we revoke only what we issued.
            raise NotFound(f"certificate with serial number {serial} was not issued by this CA")
    elif peer is not None:
        if str(peer.serial_number) != serial:
            raise BadRequest("serial number in client certificate different than body")
        _own_row(authority, peer)
        actor = Actor(authority.instance, info, extra={"mtls_serial": serial})
    else:
        raise BadRequest("missing ott or client certificate")
    event = NewEvent(
        ev.x509_stream(serial),
        ev.X509_REVOKED,
        {
            "serial": serial,
            "reason_code": reason_code,
            "reason": request.reason,
            "revoked_at": format_time(now),
            "token_id": token_id,
            "provisioner": provisioner,
            "mtls": token_id is None,
            "passive": request.passive,
        },
    )
    (recorded,) = authority.recorder.record(
        [event],
        actor,
        refused={
            AlreadyRevoked: lambda: BadRequest(
                f"certificate with serial number {serial} is already revoked"
            ),
            UnknownCertificate: lambda: NotFound(
                f"certificate with serial number {serial} was not issued by this CA"
            ),
        },
    )
    return Revoked(
        serial, recorded.position, provisioner["name"] if provisioner else None, token_id is None
    )


def _revoke_token(
    authority: Authority, ott: str, serial: str, now: datetime
) -> tuple[ProvisionerRecord, str]:
    snapshot = authority.snapshot()
    accepted = audiences(authority.runtime.config.dns_names, "revoke")
    record, token = authority.verify_jwk_token(snapshot, ott, accepted, now=now)
    try:
        subject = parse_serial(token.subject)
    except BadRequest:
        subject = None
    if subject != serial:
        raise PolicyError(f"token subject {token.subject[:80]!r} is not the serial number {serial}")
    return record, token.token_id


# -- shared ------------------------------------------------------------------------------


def _find_row(authority: Authority, serial: str) -> Mapping[str, Any] | None:
    with authority.runtime.engine.connect() as connection:
        row = connection.execute(
            select(
                certificates.c.certificate,
                certificates.c.status,
                certificates.c.sans,
                certificates.c.provisioner_id,
            ).where(certificates.c.serial == serial)
        ).one_or_none()
    return dict(row._mapping) if row is not None else None


def _own_row(authority: Authority, certificate: x509.Certificate) -> Mapping[str, Any]:
    """The projection row of `certificate`, which must be the very certificate we issued."""
    row = _find_row(authority, str(certificate.serial_number))
    if row is None or x509.load_pem_x509_certificate(row["certificate"].encode()) != certificate:
        raise AuthError("certificate was not issued by this CA")
    return row


def _provisioner_of(snapshot: Snapshot, row: Mapping[str, Any]) -> ProvisionerRecord | None:
    """The provisioner whose claims govern renewal: the one whose id the ledger recorded when
    the certificate was issued; None for certificates issued without one (the CA's own).

    Only the id counts. The provisioner extension inside the certificate names the
    provisioner too, but names are labels: a provisioner renamed, or removed and re-added
    under the same name, is another provisioner, and a certificate never changes hands.
    """
    provisioner_id = row["provisioner_id"]
    if not provisioner_id:
        return None
    record = next((p for p in snapshot.provisioners if p.id == provisioner_id), None)
    if record is None:
        raise AuthError("the provisioner of the certificate no longer exists")
    return record


def _extension(certificate: x509.Certificate) -> Any:
    try:
        return from_certificate(certificate)
    except ValueError:
        raise AuthError("the certificate's provisioner extension is malformed") from None


def _x5c_chain(value: object) -> tuple[x509.Certificate, list[x509.Certificate]]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise AuthError("token has no x5cInsecure certificate chain")
    try:
        chain = [x509.load_der_x509_certificate(base64.b64decode(v, validate=True)) for v in value]
    except (ValueError, binascii.Error):
        raise AuthError("token x5cInsecure holds something that is not a DER certificate") from None
    return chain[0], chain[1:]


def _verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    at: datetime,
) -> None:
    """Leaf → intermediate → one of our roots, every link valid at `at`.

    ledgerca's hierarchy is root → intermediate → leaf (intermediate path length 0), so the
    path is at most that long; a leaf signed by a root directly is refused.
    """
    if _is_ca(leaf):
        raise AuthError("the token's certificate is a CA certificate")
    for intermediate in intermediates:
        if not (_issued_by(leaf, intermediate) and _is_ca(intermediate)):
            continue
        if not _valid_at(intermediate, at):
            continue
        if any(_issued_by(intermediate, root) and _valid_at(root, at) for root in roots):
            return
    raise AuthError("the token's certificate does not chain to this CA's roots")


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _valid_at(certificate: x509.Certificate, at: datetime) -> bool:
    return certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _require_client_usage(leaf: x509.Certificate) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        signs = usage.digital_signature
    except x509.ExtensionNotFound:
        signs = False
    if not signs:
        raise AuthError("the token's certificate lacks the digitalSignature key usage")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise AuthError("the token's certificate lacks the clientAuth extended key usage")


def _certificates(keys: Sequence[ActiveKey]) -> list[x509.Certificate]:
    return [k.certificate for k in keys if k.certificate is not None]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
