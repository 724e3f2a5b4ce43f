"""SSHPOP tokens: proof of possession of an SSH certificate this CA issued.

A compact JWS whose header carries the certificate (`sshpop`: std-base64 of its wire blob)
and which is signed by the certificate's own key (step-ca's SSHPOP provisioner). It
authorizes `/ssh/renew`, `/ssh/rekey` (host certificates) and `/ssh/revoke` (the
certificate named by `sub`). Verification is pure; whether the certificate was revoked is
asked of the ledger by the caller and re-checked inside the append transaction.

As in step-ca, an SSHPOP provisioner is a provisioner like any other (`provisioner.added`
with type `SSHPOP`, made when the SSH CA is set up, listed, renamed and removed as any
other): the token names it by its audience's `#sshpop/<name>` fragment, or by its `iss`.
Any certificate signed by one of the CA's SSH keys then proves possession.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import SSHCertificate

from ca.errors import AuthError, BadRequest, PolicyError
from ca.keys.files import PublicKey
from ca.provisioners.base import (
    Context,
    ProvisionerRef,
    RevokeGrant,
    SSHCertificateGrant,
    Unsupported,
)
from ca.ssh.certificates import cert_type_of, parse_certificate, times_of
from ca.ssh.keys import wire_b64
from ca.tokens import DEFAULT_LEEWAY, check_registered, peek, verify_signed_by_key

__all__ = ["SSHPOP", "SSHPOPToken", "verify_sshpop"]


@dataclass(frozen=True)
class SSHPOPToken:
    certificate: SSHCertificate
    serial: str
    subject: str
    token_id: str
    ca_key_blob: str
    """The std-base64 wire blob of the CA key that signed the certificate."""


def verify_sshpop(
    token: str,
    *,
    ca_keys: Sequence[PublicKey],
    accepted_audiences: frozenset[str],
    now: datetime,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> SSHPOPToken:
    """Check an SSHPOP token; AuthError says why it is refused."""
    unverified = peek(token)
    header, claims = unverified.header, unverified.claims
    carried = header.get("sshpop")
    if not isinstance(carried, str) or not carried:
        raise AuthError("token has no 'sshpop' header: it is not an SSHPOP token")
    try:
        certificate = parse_certificate(carried)
    except BadRequest as exc:
        raise AuthError(f"sshpop header: {exc.message}") from None
    try:
        certificate.verify_cert_signature()
    except (InvalidSignature, UnsupportedAlgorithm):
        raise AuthError("sshpop certificate signature does not verify") from None
    signer = wire_b64(certificate.signature_key())
    if signer not in {wire_b64(key) for key in ca_keys}:
        raise AuthError("sshpop certificate was not signed by this CA's SSH keys")
    valid_after, valid_before = times_of(certificate)
    if now < valid_after:
        raise AuthError("sshpop certificate is not yet valid")
    if now >= valid_before:
        raise AuthError(f"sshpop certificate expired at {valid_before:%Y-%m-%dT%H:%M:%SZ}")

    verify_signed_by_key(token, header, certificate.public_key(), "sshpop certificate")

    registered = check_registered(
        token,
        claims,
        accepted_audiences=accepted_audiences,
        now=now,
        audience_fragments=True,  # step writes `…#sshpop/<name>`
        leeway=leeway,
    )
    return SSHPOPToken(
        certificate=certificate,
        serial=str(certificate.serial),
        subject=registered.subject,
        token_id=registered.token_id,
        ca_key_blob=signer,
    )


@dataclass(frozen=True)
class SSHPOP(Unsupported):
    """An SSHPOP provisioner: SSH renewal and rekey of host certificates, and SSH
    revocation, by proof of possession."""

    id: str
    name: str

    kind = "SSHPOP"

    @property
    def ref(self) -> ProvisionerRef:
        return ProvisionerRef(self.id, self.name, self.kind)

    def _proven(self, token: str, op: str, context: Context) -> SSHPOPToken:
        proven = verify_sshpop(
            token,
            ca_keys=context.ssh_ca_keys,
            accepted_audiences=context.ssh_audiences(op),
            now=context.now,
        )
        if context.check_ssh_certificate is not None:
            context.check_ssh_certificate(proven.certificate)
        return proven

    def _reissue(self, token: str, op: str, context: Context) -> SSHCertificateGrant:
        proven = self._proven(token, op, context)
        if cert_type_of(proven.certificate) != "host":
            raise AuthError("sshpop certificate must be a host ssh certificate")
        return SSHCertificateGrant(
            self.ref,
            proven.token_id,
            proven.certificate,
            proven.serial,
            actor_extra={"sshpop_serial": proven.serial},
        )

    def authorize_ssh_renew(self, token: str, context: Context) -> SSHCertificateGrant:
        return self._reissue(token, "renew", context)

    def authorize_ssh_rekey(self, token: str, context: Context) -> SSHCertificateGrant:
        return self._reissue(token, "rekey", context)

    def authorize_ssh_revoke(self, token: str, serial: str, context: Context) -> RevokeGrant:
        proven = self._proven(token, "revoke", context)
        if proven.serial != serial or proven.subject != serial:
            raise PolicyError(f"the sshpop token does not name serial number {serial}")
        return RevokeGrant(self.ref, proven.token_id, names_any_serial=False)
