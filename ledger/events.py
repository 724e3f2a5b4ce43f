"""Event value objects: what callers append and what the store gives back."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(moment: datetime) -> str:
    """UTC with microseconds and a `Z`: fixed width, so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("recorded times must be timezone-aware")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """The inverse of `format_time`, strict about the shape (strptime is ~40x slower, and
    replays parse one time per event)."""
    if len(text) != 27 or text[10] != "T" or text[-1] != "Z" or text[19] != ".":
        raise ValueError(f"time data {text!r} does not match format {TIME_FORMAT!r}")
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class NewEvent:
    """An event to append. `type` is a stable name such as `x509.issued`, never a code path."""

    stream: str
    type: str
    data: Mapping[str, Any]
    schema: int = 1
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored, its payload upcast to the newest schema this code knows."""

    position: int
    event_id: uuid.UUID
    stream: str
    version: int
    type: str
    schema: int
    recorded_at: datetime
    actor: Mapping[str, Any]
    data: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Unchanged:
    """An append's precondition: no event of `types` recorded after `position`.

    Optimistic concurrency over a set of event types rather than one stream: a caller that
    decided from what it read up to `position` appends only if that reading still holds at
    commit time, checked under the ledger lock (`ChangedSince` otherwise).
    """

    types: frozenset[str]
    position: int


@dataclass(frozen=True)
class Head:
    """The newest committed position, its hash and time (position 0 = empty ledger)."""

    position: int
    hash: str
    recorded_at: datetime | None
