"""The append-only, hash-chained event ledger. Knows nothing of HTTP, keys or projections."""

from ledger.canonical import canonical_bytes, canonical_json
from ledger.database import create_engine, is_sqlite, is_unavailable, is_unique_violation
from ledger.errors import (
    AppendRefused,
    ChangedSince,
    ConcurrencyConflict,
    IntegrityViolation,
    LedgerError,
    SchemaError,
    UnsupportedDatabase,
)
from ledger.events import (
    Head,
    NewEvent,
    RecordedEvent,
    Unchanged,
    format_time,
    parse_time,
)
from ledger.group_commit import GroupCommitter
from ledger.hashing import GENESIS_HASH, event_hash
from ledger.store import AppendTransaction, EventStore, InlineApplier
from ledger.upcasting import Upcasters
from ledger.verify import Verified, verify_chain

__all__ = [
    "GENESIS_HASH",
    "AppendRefused",
    "AppendTransaction",
    "ChangedSince",
    "ConcurrencyConflict",
    "EventStore",
    "GroupCommitter",
    "Head",
    "InlineApplier",
    "IntegrityViolation",
    "LedgerError",
    "NewEvent",
    "RecordedEvent",
    "SchemaError",
    "Unchanged",
    "UnsupportedDatabase",
    "Upcasters",
    "Verified",
    "canonical_bytes",
    "canonical_json",
    "create_engine",
    "event_hash",
    "format_time",
    "is_sqlite",
    "is_unavailable",
    "is_unique_violation",
    "parse_time",
    "verify_chain",
]
