"""Small values nested in event payloads, each with its one JSON form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SAN:
    """A subject alternative name as the CA records it."""

    type: str
    """`dns`, `ip`, `email` or `uri`."""
    value: str
    """The name itself, as it appears in the certificate."""

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SAN:
        return cls(data["type"], data["value"])


@dataclass(frozen=True, slots=True)
class ProvisionerRef:
    """The provisioner that authorized something, as it was named at that moment."""

    id: str
    """Its id: stable across renames, what a certificate is linked by."""
    name: str
    """Its name at the time (a label: names change)."""
    type: str
    """Its type, e.g. `JWK`."""

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "type": self.type}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProvisionerRef:
        return cls(data["id"], data["name"], data["type"])


VALUES: tuple[type[SAN | ProvisionerRef], ...] = (SAN, ProvisionerRef)
"""Every nested value, in the order the catalogue describes them."""
