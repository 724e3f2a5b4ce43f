"""Name policies, at authority and provisioner level."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from projections.events.base import Event
from projections.events.streams import POLICY, Stream


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicySet(Event):
    """A name policy is set, replacing the one before, or cleared."""

    TYPE: ClassVar[str] = "policy.set"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = POLICY

    scope: str
    """`authority` or `provisioner/<id>`."""
    provisioner_id: str | None
    """The provisioner of a provisioner scope; null for the authority."""
    policy: Mapping[str, Any] | None
    """The name policy as `ca.policy.NamePolicy.to_json` writes it (allow/deny lists);
    null clears the scope's policy."""
