"""SSHPOP tokens: proof of possession of an SSH certificate this CA issued.

A compact JWS whose header carries the certificate (`sshpop`: std-base64 of its wire blob)
and which is signed by the certificate's own key (step-ca's SSHPOP provisioner). It
authorizes `/ssh/renew`, `/ssh/rekey` (host certificates) and `/ssh/revoke` (the
certificate named by `sub`). Verification is pure; whether the certificate was revoked is
asked of the ledger by the caller and re-checked inside the append transaction.

Unlike step-ca, no SSHPOP provisioner has to be configured: any certificate signed by one of
the CA's active SSH keys proves possession. The audience may carry step's
`#sshpop/<name>` fragment or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import SSHCertificate

from ca.errors import AuthError, BadRequest
from ca.keys.files import PublicKey
from ca.provisioners.jwk import (
    DEFAULT_LEEWAY,
    _numeric_date,
    _token_id,
    audience_matches,
    peek,
    verify_signed_by_key,
)
from ca.ssh.certificates import parse_certificate, times_of
from ca.ssh.keys import wire_b64

__all__ = ["SSHPOPToken", "verify_sshpop"]


@dataclass(frozen=True)
class SSHPOPToken:
    certificate: SSHCertificate
    serial: str
    subject: str
    token_id: str
    ca_key_blob: str
    """The std-base64 wire blob of the CA key that signed the certificate."""


def _without_fragment(aud: Any) -> Any:
    if isinstance(aud, str):
        return aud.split("#", 1)[0]
    if isinstance(aud, list):
        return [a.split("#", 1)[0] if isinstance(a, str) else a for a in aud]
    return aud


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

    if not isinstance(claims.get("iss"), str) or not claims.get("iss"):
        raise AuthError("token issuer ('iss') is missing")
    aud = _without_fragment(claims.get("aud"))
    if not isinstance(aud, (str, list)) or not audience_matches(aud, accepted_audiences):
        raise AuthError(f"token audience {claims.get('aud')!r} is not accepted here")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthError("token subject ('sub') is missing or empty")
    expires = _numeric_date(claims, "exp")
    if expires is None:
        raise AuthError("token has no expiry ('exp')")
    not_before = _numeric_date(claims, "nbf")
    if now > expires + leeway:
        raise AuthError("token expired")
    if not_before is not None and now + leeway < not_before:
        raise AuthError("token not yet valid")
    return SSHPOPToken(
        certificate=certificate,
        serial=str(certificate.serial),
        subject=subject,
        token_id=_token_id(claims, token),
        ca_key_blob=signer,
    )
