"""One-time tokens spent by requests that record nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from projections.events.base import Event
from projections.events.streams import TOKEN, Stream
from projections.events.values import ProvisionerRef


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenSpent(Event):
    """A one-time token was used for something that writes no event of its own (an admin
    API request authenticated by a token): recorded so that it cannot be used again."""

    TYPE: ClassVar[str] = "token.spent"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = TOKEN

    token_id: str
    """The token's single-use key: its `jti`, or the SHA-256 of a token without one."""
    provisioner: ProvisionerRef
    """The provisioner whose key signed the token."""
    purpose: str
    """What the token was spent on: `admin`."""
