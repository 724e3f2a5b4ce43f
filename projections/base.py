"""What a projection is: named tables plus pure handlers from events to rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table

from ledger import RecordedEvent

metadata = MetaData()
"""Every projection table. The DDL lives in `migrations/`; a test keeps the two equal."""

Position = BigInteger().with_variant(Integer(), "sqlite")

projection_positions = Table(
    "projection_positions",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", Position, nullable=False),
)

Handler = Callable[[Connection, RecordedEvent], None]
BatchHandler = Callable[[Connection, Sequence[RecordedEvent]], None]


class Mode(Enum):
    INLINE = "inline"
    """Applied in the append transaction; a failure aborts the append."""
    FOLLOWER = "follower"
    """Applied later from a stored position, in a transaction of its own."""


@dataclass(frozen=True)
class Projection:
    """A read model. Handlers must be pure: everything they write comes from the event."""

    name: str
    mode: Mode
    tables: tuple[Table, ...]
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    every_event: Handler | None = None
    """A handler for event types without one of their own."""
    batch: BatchHandler | None = None
    """Applies consecutive events at once, with the same result as `apply` on each in
    order (fewer statements: replays and rebuilds go through it)."""

    def apply(self, connection: Connection, event: RecordedEvent) -> None:
        handler = self.handlers.get(event.type, self.every_event)
        if handler is not None:
            handler(connection, event)

    def apply_all(self, connection: Connection, events: Sequence[RecordedEvent]) -> None:
        if self.batch is not None:
            self.batch(connection, events)
            return
        for event in events:
            self.apply(connection, event)

    def clear(self, connection: Connection) -> None:
        # Children before parents, in case a later table refers to an earlier one.
        for table in reversed(self.tables):
            connection.execute(table.delete())
