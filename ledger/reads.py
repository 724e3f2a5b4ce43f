"""Reads of the ledger's tables for code outside the ledger: the head, single events, streams,
positions by type or time.

Each takes the caller's connection, so a read lands inside the caller's snapshot or
transaction. Rows come back as stored (`StoredRow`: actor and data as canonical JSON text,
times as ledger text), for callers that check or show the ledger as it is; `EventStore.read`
gives decoded, upcast events. Range reads over many events are in `ledger.rows`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, select

from ledger.events import format_time, parse_time
from ledger.rows import StoredRow
from ledger.schema import events, ledger_head

__all__ = [
    "event_at",
    "first_of_stream_after",
    "first_recorded_at",
    "head_position",
    "last_of_stream",
    "last_position_at",
    "latest_position",
    "position_of",
    "stream_row",
    "stream_rows",
]

# Built once: these run on request paths (the state check, CRL builds).
_HEAD_POSITION = select(ledger_head.c.position).where(ledger_head.c.id == 1)
_ROWS = select(*(events.c[name] for name in StoredRow._fields))
_AT = _ROWS.where(events.c.position == bindparam("position"))
_STREAM = _ROWS.where(events.c.stream == bindparam("stream"))
_LATEST_OF_TYPES = select(func.max(events.c.position)).where(
    events.c.type.in_(bindparam("types", expanding=True))
)
_LAST_AT = select(func.max(events.c.position)).where(events.c.recorded_at <= bindparam("time"))
_FIRST_TIME = select(func.min(events.c.recorded_at))


def head_position(connection: Connection) -> int:
    """The position of the newest event, as the head row records it (0: none yet)."""
    return int(connection.execute(_HEAD_POSITION).scalar_one())


def event_at(connection: Connection, position: int) -> StoredRow | None:
    """The stored row at `position`, or None."""
    row = connection.execute(_AT, {"position": position}).one_or_none()
    return StoredRow._make(row) if row is not None else None


def stream_rows(
    connection: Connection, stream: str, *, until: int | None = None
) -> list[StoredRow]:
    """Every stored row of `stream` in position order (with `until`, those at or before it)."""
    query = _STREAM if until is None else _STREAM.where(events.c.position <= until)
    rows = connection.execute(query.order_by(events.c.position), {"stream": stream})
    return list(map(StoredRow._make, rows))


def stream_row(connection: Connection, stream: str, version: int) -> StoredRow | None:
    """The stored row of `stream` at `version`, or None."""
    row = connection.execute(
        _STREAM.where(events.c.version == version), {"stream": stream}
    ).one_or_none()
    return StoredRow._make(row) if row is not None else None


def last_of_stream(connection: Connection, stream: str) -> StoredRow | None:
    """The newest stored row of `stream`, or None."""
    row = connection.execute(
        _STREAM.order_by(events.c.position.desc()).limit(1), {"stream": stream}
    ).one_or_none()
    return StoredRow._make(row) if row is not None else None


def first_of_stream_after(connection: Connection, stream: str, position: int) -> StoredRow | None:
    """The oldest stored row of `stream` after `position`, or None."""
    row = connection.execute(
        _STREAM.where(events.c.position > position).order_by(events.c.position).limit(1),
        {"stream": stream},
    ).one_or_none()
    return StoredRow._make(row) if row is not None else None


def position_of(connection: Connection, stream: str, event_type: str) -> int | None:
    """The position of the first event of `event_type` in `stream`, or None."""
    value = connection.execute(
        select(events.c.position)
        .where(events.c.stream == stream, events.c.type == event_type)
        .order_by(events.c.position)
        .limit(1)
    ).scalar()
    return int(value) if value is not None else None


def latest_position(connection: Connection, types: Iterable[str]) -> int:
    """The position of the newest event of any of `types` (0: none)."""
    value = connection.execute(_LATEST_OF_TYPES, {"types": list(types)}).scalar()
    return int(value or 0)


def last_position_at(connection: Connection, moment: datetime) -> int:
    """The newest position recorded at or before `moment` (0: none)."""
    value = connection.execute(_LAST_AT, {"time": format_time(moment)}).scalar()
    return int(value or 0)


def first_recorded_at(connection: Connection) -> datetime | None:
    """When the ledger's first event was recorded (None: the ledger is empty)."""
    value = connection.execute(_FIRST_TIME).scalar()
    return parse_time(value) if value else None
