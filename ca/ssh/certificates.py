"""Building and signing SSH certificates, and reading the ones clients present.

On the wire (step-ca's JSON) keys and certificates are std-base64 OpenSSH blobs with no type
prefix; the type is the blob's first string. Everything here is pure: the serial and the
times are arguments.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    SSHCertificate,
    SSHCertificateBuilder,
    SSHCertificateType,
)

from ca.errors import BadRequest, PolicyError
from ca.keys.files import MIN_RSA_BITS, PrivateKey

__all__ = [
    "DEFAULT_USER_EXTENSIONS",
    "CertType",
    "SSHPublicKey",
    "SSHRequest",
    "build_certificate",
    "cert_type_of",
    "certificate_line",
    "new_ssh_serial",
    "parse_certificate",
    "parse_public_key",
    "texts",
    "times_of",
]

CertType = Literal["user", "host"]
SSHPublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

DEFAULT_USER_EXTENSIONS = (
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
)
"""What step-ca grants a user certificate by default; host certificates get none."""

_MAX_BLOB = 16 * 1024
_TYPES = {"user": SSHCertificateType.USER, "host": SSHCertificateType.HOST}


@dataclass(frozen=True)
class SSHRequest:
    """What a certificate will say, once authorized."""

    cert_type: CertType
    key_id: str
    principals: tuple[str, ...]
    valid_after: datetime
    valid_before: datetime
    extensions: tuple[str, ...] = ()
    critical_options: tuple[tuple[str, str], ...] = ()


def new_ssh_serial() -> int:
    """A random, non-zero uint64 (OpenSSH serials are 64-bit; 0 means "no serial")."""
    while True:
        serial = secrets.randbits(64)
        if serial:
            return serial


def _blob(text: str, what: str) -> tuple[str, bytes]:
    if not text:
        raise BadRequest(f"missing {what}")
    if len(text) > _MAX_BLOB:
        raise BadRequest(f"{what} is too large")
    try:
        blob = base64.b64decode(text.strip(), validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        kind = blob[4 : 4 + length].decode("ascii")
    except (binascii.Error, ValueError, struct.error, UnicodeDecodeError):
        raise BadRequest(f"error parsing {what}: not a base64 OpenSSH blob") from None
    if not kind or length + 4 > len(blob):
        raise BadRequest(f"error parsing {what}: not a base64 OpenSSH blob")
    return kind, blob


def parse_public_key(text: str) -> SSHPublicKey:
    """A client's public key: std-base64 wire blob (step's JSON) or an `authorized_keys` line."""
    parts = text.split()
    if len(parts) >= 2:  # "type base64 [comment]"
        text = parts[1]
    kind, _ = _blob(text, "publicKey")
    if "-cert-" in kind:
        raise BadRequest("error parsing publicKey: a certificate is not a public key")
    try:
        key = serialization.load_ssh_public_key(f"{kind} {text.strip()}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise BadRequest("error parsing publicKey: unsupported or malformed key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise PolicyError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        return key
    raise BadRequest(f"error parsing publicKey: {kind} keys are not supported")


def parse_certificate(text: str) -> SSHCertificate:
    """An SSH certificate from its std-base64 blob or an OpenSSH `-cert.pub` line."""
    parts = text.split()
    if len(parts) >= 2:
        text = parts[1]
    kind, _ = _blob(text, "certificate")
    if "-cert-v01@openssh.com" not in kind:
        raise BadRequest(f"error parsing certificate: {kind} is not an SSH certificate type")
    try:
        identity = serialization.load_ssh_public_identity(f"{kind} {text.strip()}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise BadRequest("error parsing certificate: malformed SSH certificate") from None
    if not isinstance(identity, SSHCertificate):
        raise BadRequest("error parsing certificate: not an SSH certificate")
    return identity


def certificate_line(certificate: SSHCertificate) -> str:
    """`<type>-cert-v01@openssh.com AAAA...`: what a `-cert.pub` file holds."""
    return certificate.public_bytes().decode("ascii").strip()


def cert_type_of(certificate: SSHCertificate) -> CertType:
    return "host" if certificate.type == SSHCertificateType.HOST else "user"


def _seconds(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())


def build_certificate(
    request: SSHRequest, *, public_key: SSHPublicKey, ca_key: PrivateKey, serial: int
) -> SSHCertificate:
    """Sign `request` for `public_key` with the SSH CA key."""
    builder = (
        SSHCertificateBuilder()
        .public_key(public_key)
        .serial(serial)
        .type(_TYPES[request.cert_type])
        .key_id(request.key_id.encode())
        .valid_principals([p.encode() for p in request.principals])
        .valid_after(_seconds(request.valid_after))
        .valid_before(_seconds(request.valid_before))
    )
    # OpenSSH requires both lists in lexical order of their names.
    for name, value in sorted(request.critical_options):
        builder = builder.add_critical_option(name.encode(), value.encode())
    for name in sorted(set(request.extensions)):
        builder = builder.add_extension(name.encode(), b"")
    return builder.sign(ca_key)


_FOREVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _moment(seconds: int) -> datetime:
    # OpenSSH writes "forever" as 2^64-1, beyond what a datetime holds.
    return (
        _FOREVER if seconds >= int(_FOREVER.timestamp()) else datetime.fromtimestamp(seconds, UTC)
    )


def times_of(certificate: SSHCertificate) -> tuple[datetime, datetime]:
    """(valid_after, valid_before) as aware datetimes."""
    return _moment(certificate.valid_after), _moment(certificate.valid_before)


def texts(values: Iterable[bytes]) -> tuple[str, ...]:
    return tuple(v.decode("utf-8", "replace") for v in values)
