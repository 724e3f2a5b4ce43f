"""Renewal, rekey and revocation: what happens to a certificate after it was issued.

The same pipeline as issuance, with a certificate as the credential:

* **authenticate** — the mTLS peer certificate (the handshake verified its chain and
  expiry), or for renewal a step-style "x5cInsecure" token: a JWT signed by the
  certificate's key and carrying its chain (`ca.provisioners.x5c`); for revocation a
  provisioner's one-time token whose subject is the serial, or the certificate revoking
  itself;
* **authorize** — the certificate is ours (its serial and DER are in `certificates`), not
  revoked, and the provisioner the ledger recorded for it allows it
  (`Provisioner.authorize_renew` / `authorize_rekey` / `authorize_revoke`);
* **build** — a copy of the old certificate: subject, SANs and every extension, the
  lifetime kept, a new serial, signed by the current intermediate (`ca.pki.issuer.CopyProfile`);
* **record** — `x509.issued` with `renewed_from` / `rekeyed_from`, or `x509.revoked`,
  through the authority's group committer. The `certificates` projection re-checks inside
  the append transaction that the old certificate is not revoked, so a revocation
  committed by any instance an instant earlier wins.

Unlike step-ca, every revocation is active as well as passive: the CRL and the OCSP
responder read the same ledger, so `passive: false` is accepted rather than refused.

A serial this ledger never issued is revoked too, as step-ca does — it is how operators
pre-revoke, or revoke certificates from before a migration — but only on a provisioner's
one-time token (mTLS proves a certificate of ours, so it cannot name one we never issued).
It is recorded as `x509.revoked_unissued`, appended expecting the serial's stream to be
empty: the ledger itself refuses it if the serial was issued or revoked meanwhile, and
refuses any later issuance that draws the same serial, so CRL and OCSP never stop saying
"revoked" for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from cryptography import x509
from sqlalchemy import select

from ca.authority.authority import Authority
from ca.authority.recorder import Actor, RequestInfo
from ca.authority.state import Snapshot
from ca.authority.x509_issuance import Issued, chain_pems, record_issued
from ca.errors import AuthError, BadRequest, NotFound
from ca.keys.files import PublicKey
from ca.pki.csr import check_csr_key, parse_csr
from ca.pki.issuer import CopyProfile, issue, prepare
from ca.pki.serials import parse_serial
from ca.provisioners.base import RevokeGrant
from ca.provisioners.x5c import verify_renew_token
from ledger import ConcurrencyConflict, format_time
from projections.certificates import (
    AlreadyRevoked,
    CertificateRevoked,
    UnknownCertificate,
    certificates,
    revoked_unissued,
)
from projections.events import SAN, ProvisionerRef, X509Revoked, X509RevokedUnissued

__all__ = [
    "RevokeRequest",
    "Revoked",
    "check_reason",
    "check_reason_code",
    "parse_serial",
    "rekey",
    "renew",
    "renewal_validity",
    "revoke",
]

# RFC 5280 CRLReason; 7 is not assigned.
REASON_CODES = frozenset(range(11)) - {7}
MAX_REASON_LENGTH = 1024


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
        context = authority.context(snapshot, now)
        verified = verify_renew_token(
            bearer,
            roots=context.roots,
            intermediates=context.intermediates,
            accepted_audiences=context.audiences("renew"),
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
    check_csr_key(csr)  # the same key rules as issuance: 403 for a weak key
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
    """Authorize, prepare, issue, record."""
    row = _own_row(authority, old)
    if row["status"] == "revoked":
        raise AuthError("certificate has been revoked")
    provisioner = authority.provisioner_by_id(snapshot, row["provisioner_id"])
    context = authority.context(snapshot, now)
    if rekey:
        claims = provisioner.authorize_rekey(old, context)
    else:
        claims = provisioner.authorize_renew(old, context, via_token=via_token)
    validity = renewal_validity(old, now=now, backdate=claims.backdate)
    issuer = authority.issuer(snapshot)
    certificate = issue(
        prepare(CopyProfile(old), public_key, validity, issuer, authority.leaf_rules(snapshot))
    )
    old_serial = str(old.serial_number)
    actor: dict[str, Any] = {"authenticated_by": "token" if via_token else "mtls"}
    if not via_token:
        actor["mtls_serial"] = old_serial
    ref = provisioner.ref
    try:
        position = record_issued(
            authority,
            certificate,
            snapshot.intermediate,
            sans=tuple(SAN(s["type"], s["value"]) for s in json.loads(row["sans"])),
            provisioner=ref,
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
        chain_pems(certificate, snapshot.intermediate),
        str(certificate.serial_number),
        ref.name if ref else None,
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
    """`POST /revoke` with a provisioner's one-time token (`sub` = serial) or mTLS
    (self-revocation)."""
    serial = parse_serial(request.serial)
    reason_code = check_reason_code(request.reason_code)
    check_reason(request.reason)
    now = authority.clock()
    provisioner: ProvisionerRef | None = None
    token_id: str | None = None
    if request.ott:
        snapshot = authority.snapshot()
        grant = authority.provisioner_for_token(snapshot, request.ott).authorize_revoke(
            request.ott, serial, authority.context(snapshot, now)
        )
        provisioner = grant.provisioner
        token_id = grant.token_id
        actor = Actor.of(authority.instance, info, provisioner, token_id)
        if _find_row(authority, serial) is None:
            return _revoke_unissued(authority, request, serial, reason_code, grant, actor, now)
    elif peer is not None:
        if str(peer.serial_number) != serial:
            raise BadRequest("serial number in client certificate different than body")
        _own_row(authority, peer)
        actor = Actor(authority.instance, info, extra={"mtls_serial": serial})
    else:
        raise BadRequest("missing ott or client certificate")
    event = X509Revoked(
        serial=serial,
        reason_code=reason_code,
        reason=request.reason,
        revoked_at=format_time(now),
        token_id=token_id,
        provisioner=provisioner,
        mtls=token_id is None,
        passive=request.passive,
    )
    (recorded,) = authority.recorder.record(
        [event.to_new_event()],
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
        serial, recorded.position, provisioner.name if provisioner else None, token_id is None
    )


def _revoke_unissued(
    authority: Authority,
    request: RevokeRequest,
    serial: str,
    reason_code: int,
    grant: RevokeGrant,
    actor: Actor,
    now: datetime,
) -> Revoked:
    """Revoke a serial this ledger never issued: `x509.revoked_unissued` on its fresh stream."""
    already = BadRequest(f"certificate with serial number {serial} is already revoked")
    if grant.provisioner is None or not grant.names_any_serial:
        raise AuthError("only a provisioner's token can revoke a serial this CA never issued")
    if _revoked_unissued(authority, serial):
        raise already
    event = X509RevokedUnissued(
        serial=serial,
        reason_code=reason_code,
        reason=request.reason,
        revoked_at=format_time(now),
        provisioner=grant.provisioner,
        token_id=grant.token_id,
        passive=request.passive,
    )
    try:
        (recorded,) = authority.recorder.record(
            [event.to_new_event()],
            actor,
            expected={event.stream: 0},
            refused={AlreadyRevoked: lambda: already},
        )
    except ConcurrencyConflict:
        # Another instance wrote on the serial's stream since we looked: revoked it (then
        # this is a second revocation), or issued it (409: the client may simply retry).
        row = _find_row(authority, serial)
        if _revoked_unissued(authority, serial) or (row and row["status"] == "revoked"):
            raise already from None
        raise
    return Revoked(serial, recorded.position, grant.provisioner.name, False)


# -- shared ------------------------------------------------------------------------------


def _revoked_unissued(authority: Authority, serial: str) -> bool:
    with authority.runtime.engine.connect() as connection:
        found = connection.execute(
            select(revoked_unissued.c.serial).where(revoked_unissued.c.serial == serial)
        ).first()
    return found is not None


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
