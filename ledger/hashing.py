"""The hash chain: each event's hash covers its predecessor's hash and its own record."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ledger.canonical import canonical_bytes

GENESIS_HASH = "0" * 64
"""`prev_hash` of the first event."""

HASHED_FIELDS = (
    "position",
    "event_id",
    "stream",
    "version",
    "type",
    "schema",
    "recorded_at",
    "actor",
    "data",
    "prev_hash",
)


def event_hash(record: Mapping[str, Any]) -> str:
    """SHA-256(prev_hash ‖ canonical(record without hash)), lowercase hex.

    `record` maps every name in HASHED_FIELDS to its value, with `actor` and `data` as
    parsed JSON (not text), so that a database that re-serialises JSON cannot change a hash.
    """
    body = {name: record[name] for name in HASHED_FIELDS}
    prev = bytes.fromhex(str(record["prev_hash"]))
    return hashlib.sha256(prev + canonical_bytes(body)).hexdigest()
