"""The authority's own events: its initialisation and the keys it signs with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from projections.events.base import Event
from projections.events.streams import AUTHORITY, Stream


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthorityInitialized(Event):
    """`ledgerca init` created the CA: always the ledger's first event."""

    TYPE: ClassVar[str] = "authority.initialized"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = AUTHORITY

    name: str
    """The CA's name (the organisation of its root and intermediate)."""
    root_fingerprint: str
    """SHA-256 of the root certificate's DER, lowercase hex: what clients bootstrap with."""


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyActivated(Event):
    """A key starts signing: the root, an intermediate, an SSH user or host CA key, or the
    ledger key that signs checkpoints."""

    TYPE: ClassVar[str] = "authority.key_activated"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = AUTHORITY

    key_id: str
    """SHA-256 of the public key's SubjectPublicKeyInfo DER, lowercase hex."""
    role: str
    """`x509_root`, `x509_intermediate`, `ssh_user`, `ssh_host` or `ledger`."""
    certificate: str | None
    """The key's certificate, PEM; null for SSH CA keys and the ledger key."""
    public_key: str
    """The public key, PEM (SubjectPublicKeyInfo)."""
    key_ref: Mapping[str, str]
    """Where the private key is, never the key: `{"type": "file", "path": ...}` (relative to
    the CA home), `{"type": "pkcs11", "uri": ...}` (RFC 7512) or `{"type": "offline"}`."""
    fingerprint: str
    """The certificate's SHA-256 fingerprint; for SSH keys the OpenSSH `SHA256:` form; for
    the ledger key its key id."""


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRetired(Event):
    """A key stops signing (a rotation appends it with the successor's activation)."""

    TYPE: ClassVar[str] = "authority.key_retired"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = AUTHORITY

    key_id: str
    """The retired key's id, as activated."""
    role: str
    """Its role, as activated."""
