"""X.509 certificates and the CRLs that list their revocations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from projections.events.base import Event
from projections.events.streams import CRL, X509, Stream
from projections.events.values import SAN, ProvisionerRef


@dataclass(frozen=True, kw_only=True, slots=True)
class X509Issued(Event):
    """An X.509 certificate was signed; it leaves the CA only once this event commits.
    Renewal and rekey issue a new certificate linked to the one it replaces."""

    TYPE: ClassVar[str] = "x509.issued"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = X509

    serial: str
    """The serial number: 128 random bits, positive, as a decimal string."""
    certificate: str
    """The certificate, PEM."""
    subject: str
    """Its subject, RFC 4514."""
    sans: tuple[SAN, ...]
    """Its subject alternative names."""
    not_before: str
    """Start of validity (UTC, `ledger.format_time`)."""
    not_after: str
    """End of validity (UTC, `ledger.format_time`)."""
    provisioner: ProvisionerRef | None
    """The provisioner that authorized it (a renewal keeps the original's); null when none
    did."""
    issuer_key_id: str
    """The key id of the intermediate that signed it."""
    token_id: str | None = None
    """The one-time token spent on it, if a token authorized it."""
    renewed_from: str | None = None
    """The serial of the certificate this one renews."""
    rekeyed_from: str | None = None
    """The serial of the certificate this one replaces with a new key."""


@dataclass(frozen=True, kw_only=True, slots=True)
class X509Revoked(Event):
    """An X.509 certificate is revoked: it cannot renew or rekey, OCSP and the next CRL say
    so."""

    TYPE: ClassVar[str] = "x509.revoked"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = X509

    serial: str
    """The revoked certificate's serial (decimal)."""
    reason_code: int
    """The RFC 5280 CRLReason code."""
    reason: str
    """The reason in words, as the requester gave it (may be empty)."""
    revoked_at: str
    """When (UTC, `ledger.format_time`)."""
    token_id: str | None = None
    """The one-time token spent on the request, if a token authorized it."""
    provisioner: ProvisionerRef | None = None
    """The provisioner whose token authorized it; null for mTLS self-revocation."""
    mtls: bool = False
    """True when the certificate's holder revoked it over mTLS."""
    passive: bool = True
    """step-ca's `passive` flag as requested; recorded only: every revocation here is
    active as well as passive (CRL and OCSP read the same ledger)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class X509RevokedUnissued(Event):
    """A serial this ledger never issued is revoked, on a provisioner's one-time token:
    how operators pre-revoke, or revoke certificates from before a migration. Every CRL
    lists it from then on (its expiry is unknown), OCSP answers "revoked" for it under any
    of our issuers (RFC 6960 §2.2's non-issued form), and it takes the serial's stream, so
    the ledger refuses a later issuance that draws the same serial."""

    TYPE: ClassVar[str] = "x509.revoked_unissued"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = X509

    serial: str
    """The revoked serial (decimal)."""
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
    passive: bool = True
    """step-ca's `passive` flag as requested; recorded only, as for `x509.revoked`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CRLPublished(Event):
    """An issuer's next CRL was signed. Appended expecting stream version `number` - 1, so
    two instances never publish one number twice."""

    TYPE: ClassVar[str] = "crl.published"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = CRL

    issuer_key_id: str
    """The key id of the intermediate that signed it."""
    number: int
    """The CRL number: the event's stream version (1, 2, ...)."""
    this_update: str
    """thisUpdate (UTC, `ledger.format_time`)."""
    next_update: str
    """nextUpdate (UTC, `ledger.format_time`)."""
    revoked_through: int
    """The ledger position whose revocations the CRL reflects."""
    entries: int
    """How many revoked certificates it lists."""
    der: str
    """Base64 of the signed DER CRL."""
