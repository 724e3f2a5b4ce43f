"""Small values nested in event payloads, each with its one JSON form."""

from __future__ import annotations

from dataclasses import dataclass

from projections.events.base import Value


@dataclass(frozen=True, slots=True)
class SAN(Value):
    """A subject alternative name as the CA records it."""

    type: str
    """`dns`, `ip`, `email` or `uri`."""
    value: str
    """The name itself, as it appears in the certificate."""


@dataclass(frozen=True, slots=True)
class ProvisionerRef(Value):
    """The provisioner that authorized something, as it was named at that moment."""

    id: str
    """Its id: stable across renames, what a certificate is linked by."""
    name: str
    """Its name at the time (a label: names change)."""
    type: str
    """Its type, e.g. `JWK`."""


VALUES: tuple[type[SAN | ProvisionerRef], ...] = (SAN, ProvisionerRef)
"""Every nested value, in the order the catalogue describes them."""
