"""Provisioner changes: added, updated, removed — honoured by every instance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from projections.events.base import Event
from projections.events.streams import PROVISIONER, Stream


@dataclass(frozen=True, kw_only=True, slots=True)
class ProvisionerAdded(Event):
    """A provisioner may authorize certificates from now on."""

    TYPE: ClassVar[str] = "provisioner.added"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = PROVISIONER

    id: str
    """A new UUID: the provisioner's identity, kept across renames."""
    name: str
    """Its unique name (a token's `iss`)."""
    type: str
    """Its type: `JWK`."""
    key: Mapping[str, Any]
    """The public JWK that verifies its tokens; `kid` is the RFC 7638 thumbprint."""
    encrypted_key: str | None
    """The private JWK encrypted with the provisioner password (compact JWE, step-ca's
    `encryptedKey`), or null when the key pair was made elsewhere."""
    claims: Mapping[str, Any]
    """step-ca claims (durations and such), as given."""
    options: Mapping[str, Any]
    """Options: at most `{"x509": {"template": ...}}`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProvisionerUpdated(Event):
    """Some of a provisioner's fields change."""

    TYPE: ClassVar[str] = "provisioner.updated"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = PROVISIONER

    id: str
    """The provisioner's id."""
    name: str
    """Its name before the change."""
    changes: Mapping[str, Any]
    """`{field: new value}` for any of `name`, `key`, `encrypted_key`, `claims`, `options`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ProvisionerRemoved(Event):
    """A provisioner's tokens are refused from now on; its certificates stay valid."""

    TYPE: ClassVar[str] = "provisioner.removed"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = PROVISIONER

    id: str
    """The provisioner's id."""
    name: str
    """Its last name."""
