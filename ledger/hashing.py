"""The hash chain: each event's hash covers its predecessor's hash and its own record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
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


# The C encoder `json.dumps(value, ensure_ascii=False)` uses for a str: same output, less work.
_string: Callable[[str], str] = json.encoder.encode_basestring


def hash_parts(
    *,
    position: int,
    event_id: str,
    stream: str,
    version: int,
    type: str,
    schema: int,
    recorded_at: str,
    actor_text: str,
    data_text: str,
    prev_hash: str,
) -> str:
    """`event_hash` computed from the stored canonical texts of `actor` and `data`.

    The record's canonical form is assembled around the two texts instead of parsing and
    re-serialising them: the bytes are the same as `event_hash` hashes when the texts are
    canonical (as the store writes them), and a stored text that was altered in any way —
    even into equivalent JSON — no longer hashes to the stored value.
    """
    body = (
        f'{{"actor":{actor_text},"data":{data_text},"event_id":{_string(event_id)},'
        f'"position":{int(position)},"prev_hash":{_string(prev_hash)},'
        f'"recorded_at":{_string(recorded_at)},"schema":{int(schema)},'
        f'"stream":{_string(stream)},"type":{_string(type)},"version":{int(version)}}}'
    )
    return hashlib.sha256(bytes.fromhex(prev_hash) + body.encode("utf-8")).hexdigest()
