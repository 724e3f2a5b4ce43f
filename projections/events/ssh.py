"""SSH user and host certificates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from projections.events.base import Event
from projections.events.streams import SSH, Stream
from projections.events.values import ProvisionerRef


@dataclass(frozen=True, kw_only=True, slots=True)
class SSHIssued(Event):
    """An SSH certificate was signed; it leaves the CA only once this event commits."""

    TYPE: ClassVar[str] = "ssh.issued"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = SSH

    serial: str
    """The serial number: a uint64 as a decimal string."""
    cert_type: str
    """`user` or `host`."""
    key_id: str
    """The certificate's key id."""
    principals: tuple[str, ...]
    """Its valid principals (user names or host names)."""
    valid_after: str
    """Start of validity (UTC, `ledger.format_time`)."""
    valid_before: str
    """End of validity (UTC, `ledger.format_time`)."""
    extensions: tuple[str, ...]
    """The names of its extensions, sorted."""
    certificate: str
    """The OpenSSH certificate line."""
    public_key_fingerprint: str
    """The certified key's `SHA256:` fingerprint."""
    provisioner: ProvisionerRef | None
    """The provisioner that authorized it (a renewal keeps the original's); null when none
    did."""
    issuer_key_id: str
    """The key id of the SSH CA key that signed it."""
    token_id: str | None = None
    """The one-time token spent on it, if a token authorized it."""
    renewed_from: str | None = None
    """The serial of the certificate this one renews."""
    rekeyed_from: str | None = None
    """The serial of the certificate this one replaces with a new key."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SSHRevoked(Event):
    """An SSH certificate is revoked: it cannot renew or rekey, and the KRL lists it."""

    TYPE: ClassVar[str] = "ssh.revoked"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = SSH

    serial: str
    """The revoked certificate's serial (decimal)."""
    reason_code: int
    """The RFC 5280 CRLReason code."""
    reason: str
    """The reason in words, as the requester gave it (may be empty)."""
    revoked_at: str
    """When (UTC, `ledger.format_time`)."""
    provisioner: ProvisionerRef | None = None
    """The provisioner whose token authorized it; null for an SSHPOP token."""
    token_id: str | None = None
    """The one-time token spent on the request."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SSHRevokedUnissued(Event):
    """An SSH serial this ledger never issued is revoked, on a provisioner's one-time token
    (pre-revocation, or a certificate from before a migration). The KRL lists it in a
    section for any CA key, since none is known; it takes the serial's stream, so the
    ledger refuses a later issuance that draws the same serial."""

    TYPE: ClassVar[str] = "ssh.revoked_unissued"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = SSH

    serial: str
    """The revoked serial (a uint64, decimal)."""
    reason_code: int
    """The RFC 5280 CRLReason code."""
    reason: str
    """The reason in words, as the requester gave it (may be empty)."""
    revoked_at: str
    """When (UTC, `ledger.format_time`)."""
    provisioner: ProvisionerRef
    """The provisioner whose token authorized it."""
    token_id: str
    """The one-time token spent on the request."""
