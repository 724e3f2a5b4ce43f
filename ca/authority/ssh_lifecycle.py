"""SSH renewal, rekey and revocation.

Renew and rekey take an SSHPOP token (`ca.provisioners.sshpop`) for a current, unrevoked
host certificate of ours and return a new certificate with the same type, key id,
principals, extensions and lifetime (rekey: for a new public key), signed by the active
CA key. Revoke takes a provisioner's one-time token whose subject is the serial, or an
SSHPOP token of the certificate itself. The `ssh_certificates` projection re-checks inside
the append transaction that the old certificate was not revoked meanwhile, on whichever
instance.

A serial this ledger never issued is revoked on a provisioner's one-time token too (an
SSHPOP token proves a certificate of ours, so it cannot name one): `ssh.revoked_unissued`,
appended expecting the serial's stream to be empty, so the ledger refuses it if the serial
was issued or revoked meanwhile, and refuses a later issuance of the same serial. The KRL
lists it for any CA key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.serialization import SSHCertificate
from sqlalchemy import select

from ca.authority.authority import Authority
from ca.authority.lifecycle import RevokeRequest, check_reason
from ca.authority.recorder import Actor, RequestInfo
from ca.authority.ssh_issuance import SSHIssued, ca_key_for, ca_signer, record_issued
from ca.errors import AuthError, BadRequest, NotFound
from ca.pki.profiles import BACKDATE
from ca.pki.serials import parse_ssh_serial
from ca.provisioners.base import Context, RevokeGrant, SSHCertificateGrant
from ca.ssh.certificates import (
    SSHPublicKey,
    parse_certificate,
    parse_public_key,
)
from ca.ssh.inventory import ca_keys, certificate_status, revoked_unissued
from ca.ssh.issuer import issue, prepare, renewal_of
from ledger import ConcurrencyConflict, format_time
from projections import events
from projections.ssh_certificates import (
    SSHAlreadyRevoked,
    UnknownSSHCertificate,
    ssh_certificates,
)

__all__ = ["SSHRevoked", "parse_ssh_serial", "rekey", "renew", "revoke"]


@dataclass(frozen=True)
class SSHRevoked:
    serial: str
    position: int
    provisioner: str | None


def _ours_and_current(authority: Authority, certificate: SSHCertificate) -> None:
    """The certificate must be the very one we recorded, and not revoked."""
    serial = str(certificate.serial)
    with authority.runtime.engine.connect() as connection:
        row = connection.execute(
            select(ssh_certificates.c.certificate, ssh_certificates.c.status).where(
                ssh_certificates.c.serial == serial
            )
        ).one_or_none()
    if row is None or parse_certificate(row.certificate).public_bytes() != (
        certificate.public_bytes()
    ):
        raise AuthError("sshpop certificate was not issued by this CA")
    if row.status == "revoked":
        raise AuthError("sshpop certificate has been revoked")


def _ssh_context(authority: Authority) -> Context:
    """The context of an SSH request: every SSH CA key the ledger knows, retired ones too,
    so hosts renew into a rotated key. A certificate forged with a retired (say, leaked)
    key still fails: it must be the very one the ledger recorded."""
    snapshot = authority.snapshot()
    return dataclasses.replace(
        authority.context(snapshot, authority.clock()),
        ssh_ca_keys=tuple(k.public_key for k in ca_keys(authority.runtime.engine)),
        check_ssh_certificate=lambda certificate: _ours_and_current(authority, certificate),
    )


def _reissue(
    authority: Authority,
    grant: SSHCertificateGrant,
    public_key: SSHPublicKey,
    info: RequestInfo,
    *,
    rekey: bool,
) -> SSHIssued:
    """The old certificate's type, key id, principals, extensions and lifetime, from now."""
    old = grant.certificate
    now = authority.clock().replace(microsecond=0)
    request = renewal_of(old, valid_after=now - BACKDATE)
    issuer = ca_key_for(authority.snapshot(), request.cert_type)
    certificate = issue(prepare(request, public_key, ca_signer(authority, issuer)))
    ref = grant.provisioner
    position = record_issued(
        authority,
        certificate,
        issuer,
        provisioner=ref,
        token_id=grant.token_id,
        info=info,
        renewed_from=None if rekey else grant.serial,
        rekeyed_from=grant.serial if rekey else None,
        actor_extra=grant.actor_extra,
    )
    return SSHIssued(certificate, str(certificate.serial), ref.name if ref else None, position)


def _token(ott: str) -> str:
    if not ott:
        raise BadRequest("missing ott")
    return ott


def renew(authority: Authority, ott: str, info: RequestInfo) -> SSHIssued:
    """`POST /ssh/renew`: the same certificate, for the same key, from now."""
    token = _token(ott)
    provisioner = authority.provisioner_for_token(authority.snapshot(), token)
    grant = provisioner.authorize_ssh_renew(token, _ssh_context(authority))
    return _reissue(authority, grant, grant.certificate.public_key(), info, rekey=False)


def rekey(authority: Authority, ott: str, public_key: str, info: RequestInfo) -> SSHIssued:
    """`POST /ssh/rekey`: the same certificate for a new key."""
    new_key = parse_public_key(public_key)
    token = _token(ott)
    provisioner = authority.provisioner_for_token(authority.snapshot(), token)
    grant = provisioner.authorize_ssh_rekey(token, _ssh_context(authority))
    return _reissue(authority, grant, new_key, info, rekey=True)


def revoke(authority: Authority, request: RevokeRequest, info: RequestInfo) -> SSHRevoked:
    """`POST /ssh/revoke` with a provisioner's one-time token or an SSHPOP token."""
    serial = parse_ssh_serial(request.serial)
    check_reason(request.reason)
    if not request.ott:
        raise AuthError("missing ott: SSH revocation needs a one-time or SSHPOP token")
    context = _ssh_context(authority)
    provisioner = authority.provisioner_for_token(authority.snapshot(), request.ott)
    grant = provisioner.authorize_ssh_revoke(request.ott, serial, context)
    ref = grant.provisioner
    if certificate_status(authority.runtime.engine, serial) is None:
        return _revoke_unissued(authority, request, serial, grant, context.now, info)
    event = events.SSHRevoked(
        serial=serial,
        reason_code=request.reason_code,
        reason=request.reason,
        revoked_at=format_time(context.now),
        provisioner=ref,
        token_id=grant.token_id,
    )
    actor = Actor.of(authority.instance, info, ref, grant.token_id, grant.actor_extra)
    (recorded,) = authority.recorder.record(
        [event.to_new_event()],
        actor,
        refused={
            SSHAlreadyRevoked: lambda: BadRequest(
                f"ssh certificate with serial number {serial} is already revoked"
            ),
            UnknownSSHCertificate: lambda: NotFound(
                f"ssh certificate with serial number {serial} was not issued here"
            ),
        },
    )
    return SSHRevoked(serial, recorded.position, ref.name if ref else None)


def _revoke_unissued(
    authority: Authority,
    request: RevokeRequest,
    serial: str,
    grant: RevokeGrant,
    now: datetime,
    info: RequestInfo,
) -> SSHRevoked:
    """Revoke an SSH serial this ledger never issued: `ssh.revoked_unissued` on its fresh
    stream."""
    already = BadRequest(f"ssh certificate with serial number {serial} is already revoked")
    ref = grant.provisioner
    if ref is None or not grant.names_any_serial:
        raise AuthError("only a provisioner's token can revoke a serial this CA never issued")
    engine = authority.runtime.engine
    if revoked_unissued(engine, serial):
        raise already
    event = events.SSHRevokedUnissued(
        serial=serial,
        reason_code=request.reason_code,
        reason=request.reason,
        revoked_at=format_time(now),
        provisioner=ref,
        token_id=grant.token_id,
    )
    actor = Actor.of(authority.instance, info, ref, grant.token_id, grant.actor_extra)
    try:
        (recorded,) = authority.recorder.record(
            [event.to_new_event()],
            actor,
            expected={event.stream: 0},
            refused={SSHAlreadyRevoked: lambda: already},
        )
    except ConcurrencyConflict:
        # Revoked (a second revocation) or issued (409) by another instance meanwhile.
        if revoked_unissued(engine, serial) or certificate_status(engine, serial) == "revoked":
            raise already from None
        raise
    return SSHRevoked(serial, recorded.position, ref.name)
