"""Signed checkpoints of the ledger's Merkle tree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from projections.events.base import Event
from projections.events.streams import CHECKPOINT, Stream


@dataclass(frozen=True, kw_only=True, slots=True)
class LedgerCheckpoint(Event):
    """The ledger key signed the Merkle tree of positions 1..`tree_size`, where `tree_size`
    is always the checkpoint's own position - 1 (`ledger.merkle`, `ca.audit.checkpoints`).
    Appended expecting stream version `number` - 1, as for CRLs."""

    TYPE: ClassVar[str] = "ledger.checkpoint"
    SCHEMA: ClassVar[int] = 1
    STREAM: ClassVar[Stream] = CHECKPOINT

    number: int
    """The checkpoint number: its stream version (1, 2, ...)."""
    tree_size: int
    """How many events the tree covers."""
    root_hash: str
    """The RFC 6962 tree head, lowercase hex."""
    time: str
    """When it was signed (UTC, `ledger.format_time`)."""
    key_id: str
    """The ledger key that signed it."""
    signature: str
    """Base64 of the signature over the checkpoint statement."""
