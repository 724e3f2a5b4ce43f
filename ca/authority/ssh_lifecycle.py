"""SSH renewal, rekey and revocation.

Renew and rekey take an SSHPOP token for a current, unrevoked host certificate of ours and
return a new certificate with the same type, key id, principals, extensions and lifetime
(rekey: for a new public key), signed by the active CA key. Revoke takes a JWK one-time
token whose subject is the serial, or an SSHPOP token of the certificate itself. The
`ssh_certificates` projection re-checks inside the append transaction that the old
certificate was not revoked meanwhile, on whichever instance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives.serialization import SSHCertificate
from sqlalchemy import select

from ca.authority.authority import Authority
from ca.authority.lifecycle import RevokeRequest, check_reason
from ca.authority.recorder import Actor, RequestInfo
from ca.authority.ssh_issuance import SSHIssued, ca_key_for, ca_signer, record_issued, ssh_audiences
from ca.errors import AuthError, BadRequest, NotFound, PolicyError
from ca.keys.files import PublicKey
from ca.pki.profiles import BACKDATE
from ca.provisioners.jwk import verify_token
from ca.ssh.certificates import (
    SSHPublicKey,
    SSHRequest,
    build_certificate,
    cert_type_of,
    new_ssh_serial,
    parse_certificate,
    parse_public_key,
    texts,
    times_of,
)
from ca.ssh.inventory import ca_keys
from ca.ssh.sshpop import SSHPOPToken, verify_sshpop
from ca.tokens import peek
from ledger import NewEvent, format_time
from ledger import catalogue as ev
from projections.ssh_certificates import (
    SSHAlreadyRevoked,
    UnknownSSHCertificate,
    ssh_certificates,
)

__all__ = ["SSHRevoked", "parse_ssh_serial", "rekey", "renew", "revoke"]

_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")


@dataclass(frozen=True)
class SSHRevoked:
    serial: str
    position: int
    provisioner: str | None


def parse_ssh_serial(text: str) -> str:
    """An SSH serial as a decimal string: a uint64 in decimal or `0x` hexadecimal."""
    text = text.strip()
    if not text:
        raise BadRequest("missing serial")
    if _DECIMAL.fullmatch(text):
        value = int(text, 10)
    elif _HEX.fullmatch(text):
        value = int(text, 16)
    else:
        raise BadRequest(f"'{text[:40]}' is not a valid SSH serial number")
    if not 0 < value < 2**64:
        raise BadRequest(f"'{text[:40]}' is not a valid SSH serial number (a uint64)")
    return str(value)


def _ca_keys(authority: Authority) -> list[PublicKey]:
    # Retired keys too, so hosts renew into a rotated key. A certificate forged with a
    # retired (say, leaked) key still fails: it must be the very one the ledger recorded.
    return [k.public_key for k in ca_keys(authority.runtime.engine)]


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


def _sshpop(authority: Authority, ott: str, op: str) -> SSHPOPToken:
    if not ott:
        raise BadRequest("missing ott")
    token = verify_sshpop(
        ott,
        ca_keys=_ca_keys(authority),
        accepted_audiences=ssh_audiences(authority.runtime.config.dns_names, op),
        now=authority.clock(),
    )
    _ours_and_current(authority, token.certificate)
    return token


def _reissue(
    authority: Authority,
    token: SSHPOPToken,
    public_key: SSHPublicKey,
    info: RequestInfo,
    *,
    rekey: bool,
) -> SSHIssued:
    old = token.certificate
    cert_type = cert_type_of(old)
    if cert_type != "host":
        raise AuthError("sshpop certificate must be a host ssh certificate")
    old_after, old_before = times_of(old)
    now = authority.clock().replace(microsecond=0)
    valid_after = now - BACKDATE
    issuer = ca_key_for(authority.snapshot(), cert_type)
    certificate = build_certificate(
        SSHRequest(
            cert_type=cert_type,
            key_id=old.key_id.decode("utf-8", "replace"),
            principals=texts(old.valid_principals),
            valid_after=valid_after,
            valid_before=valid_after + max(old_before - old_after, timedelta(minutes=5)),
            extensions=texts(old.extensions),
            critical_options=tuple(
                (k.decode(), v.decode()) for k, v in old.critical_options.items()
            ),
        ),
        public_key=public_key,
        ca_key=ca_signer(authority, issuer),
        serial=new_ssh_serial(),
    )
    position = record_issued(
        authority,
        certificate,
        issuer,
        provisioner=None,
        token_id=token.token_id,
        info=info,
        renewed_from=None if rekey else token.serial,
        rekeyed_from=token.serial if rekey else None,
        actor_extra={"sshpop_serial": token.serial},
    )
    return SSHIssued(certificate, str(certificate.serial), None, position)


def renew(authority: Authority, ott: str, info: RequestInfo) -> SSHIssued:
    token = _sshpop(authority, ott, "renew")
    public_key = token.certificate.public_key()
    return _reissue(authority, token, public_key, info, rekey=False)


def rekey(authority: Authority, ott: str, public_key: str, info: RequestInfo) -> SSHIssued:
    new_key = parse_public_key(public_key)
    token = _sshpop(authority, ott, "rekey")
    return _reissue(authority, token, new_key, info, rekey=True)


def revoke(authority: Authority, request: RevokeRequest, info: RequestInfo) -> SSHRevoked:
    serial = parse_ssh_serial(request.serial)
    check_reason(request.reason)
    if not request.ott:
        raise AuthError("missing ott: SSH revocation needs a one-time or SSHPOP token")
    now = authority.clock()
    provisioner: dict[str, str] | None = None
    if "sshpop" in peek(request.ott).header:
        token = _sshpop(authority, request.ott, "revoke")
        if token.serial != serial or token.subject != serial:
            raise PolicyError(f"the sshpop token does not name serial number {serial}")
        token_id = token.token_id
    else:
        snapshot = authority.snapshot()
        unverified = peek(request.ott)
        record = snapshot.by_issuer_kid.get(
            (str(unverified.claims.get("iss", "")), str(unverified.header.get("kid", "")))
        )
        if record is None or record.jwk is None:
            raise AuthError("no provisioner for the token's issuer and key id")
        verified = verify_token(
            request.ott,
            record.jwk,
            accepted_audiences=ssh_audiences(authority.runtime.config.dns_names, "revoke"),
            now=now,
            ca_started=authority.started_at,
        )
        if verified.subject != serial:
            raise PolicyError(f"token subject {verified.subject[:40]!r} is not serial {serial}")
        token_id = verified.token_id
        provisioner = {"id": record.id, "name": record.name, "type": record.type}
    stream = ev.ssh_stream(serial)
    event = NewEvent(
        stream,
        ev.SSH_REVOKED,
        {
            "serial": serial,
            "reason_code": request.reason_code,
            "reason": request.reason,
            "revoked_at": format_time(now),
            "provisioner": provisioner,
            "token_id": token_id,
        },
    )
    actor = Actor.of(authority.instance, info, provisioner, token_id)
    (recorded,) = authority.recorder.record(
        [event],
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
    return SSHRevoked(serial, recorded.position, provisioner["name"] if provisioner else None)
