"""The one SSH issuer, in the same two steps as the X.509 one (`ca.pki.issuer`).

`prepare(request, public_key, ca_key)` checks what the certificate will say before anything
is signed; `issue(prepared)` signs it with the CA key and verifies the signature before the
certificate may leave. `renewal_of` is the profile of renewal and rekey: the old
certificate's type, key id, principals, options and lifetime, from now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import SSHCertificate

from ca.errors import PolicyError, SignerError
from ca.keys.files import PrivateKey
from ca.ssh.certificates import (
    SSHPublicKey,
    SSHRequest,
    build_certificate,
    cert_type_of,
    new_ssh_serial,
    texts,
    times_of,
)

__all__ = ["PreparedSSH", "check", "issue", "prepare", "renewal_of"]

MIN_RENEWED_LIFETIME = timedelta(minutes=5)


@dataclass(frozen=True)
class PreparedSSH:
    """A checked, unsigned SSH certificate: `issue` signs it."""

    request: SSHRequest
    public_key: SSHPublicKey
    serial: int
    ca_key: PrivateKey = field(repr=False)


def renewal_of(old: SSHCertificate, *, valid_after: datetime) -> SSHRequest:
    """What a renewal or rekey of `old` says: everything `old` said, its lifetime (at least
    five minutes) from `valid_after`."""
    old_after, old_before = times_of(old)
    return SSHRequest(
        cert_type=cert_type_of(old),
        key_id=old.key_id.decode("utf-8", "replace"),
        principals=texts(old.valid_principals),
        valid_after=valid_after,
        valid_before=valid_after + max(old_before - old_after, MIN_RENEWED_LIFETIME),
        extensions=texts(old.extensions),
        critical_options=tuple((k.decode(), v.decode()) for k, v in old.critical_options.items()),
    )


def check(request: SSHRequest) -> None:
    """What every SSH certificate must satisfy before it is signed, for whatever profile."""
    if request.valid_before <= request.valid_after:
        raise PolicyError("the SSH certificate would expire before it starts")
    for what, values in (("principal", request.principals), ("key id", (request.key_id,))):
        if any("\x00" in value for value in values):
            raise PolicyError(f"an SSH certificate {what} cannot hold a NUL character")


def prepare(
    request: SSHRequest,
    public_key: SSHPublicKey,
    ca_key: PrivateKey,
    *,
    serial: int | None = None,
) -> PreparedSSH:
    """The certificate `request` describes for `public_key`, checked (`check`), unsigned."""
    check(request)
    return PreparedSSH(request, public_key, serial or new_ssh_serial(), ca_key)


def issue(prepared: PreparedSSH) -> SSHCertificate:
    """Sign `prepared` with the CA key and verify the signature."""
    certificate = build_certificate(
        prepared.request,
        public_key=prepared.public_key,
        ca_key=prepared.ca_key,
        serial=prepared.serial,
    )
    try:
        certificate.verify_cert_signature()
    except (InvalidSignature, UnsupportedAlgorithm) as exc:
        raise SignerError(f"the signed SSH certificate does not verify: {exc}") from exc
    return certificate
