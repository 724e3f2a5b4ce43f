"""The event store: atomic, serialised, hash-chained appends and ordered reads.

Every append runs inside an `AppendTransaction`, which holds the ledger lock (the head row,
`FOR UPDATE` on PostgreSQL; `BEGIN IMMEDIATE` on SQLite) from its first statement to its
commit. One transaction may carry several independent appends, each in its own savepoint:
that is the shape group commit needs (many requests, one commit), and a failing append
rolls back alone without failing its neighbours.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, bindparam, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from ledger.canonical import canonical_json, parse_json
from ledger.database import WRITE, is_sqlite, is_unique_violation, write_lock
from ledger.errors import AppendRefused, ChangedSince, ConcurrencyConflict, LedgerError
from ledger.events import Head, NewEvent, RecordedEvent, Unchanged, format_time, parse_time
from ledger.fastsql import Prepared
from ledger.hashing import GENESIS_HASH, hash_parts
from ledger.rows import StoredRow
from ledger.schema import events as events_table
from ledger.schema import ledger_head
from ledger.upcasting import NO_UPCASTERS, Upcasters

# Statements of the append path, compiled once and run on the driver's cursor: SQLAlchemy's
# execution path costs more CPU than SQLite takes to run them (see ledger.fastsql).
_LOCK_HEAD = Prepared(
    select(ledger_head.c.position, ledger_head.c.hash, ledger_head.c.recorded_at)
    .where(ledger_head.c.id == 1)
    .with_for_update()
)
_MOVE_HEAD = Prepared(
    update(ledger_head)
    .where(ledger_head.c.id == 1)
    .values(
        position=bindparam("new_position"),
        hash=bindparam("new_hash"),
        recorded_at=bindparam("new_time"),
    )
)
_INSERT_EVENTS = Prepared(events_table.insert())
_SAVEPOINT = Prepared("SAVEPOINT ledger_unit")
_RELEASE = Prepared("RELEASE SAVEPOINT ledger_unit")
_ROLLBACK_TO = Prepared("ROLLBACK TO SAVEPOINT ledger_unit")
_LATEST_OF: dict[frozenset[str], Prepared] = {}


@dataclass(frozen=True)
class AppendUnit:
    """One caller's events, appended all or none, with the conditions they depend on."""

    events: Sequence[NewEvent]
    actor: Mapping[str, Any] | None = None
    expected: Mapping[str, int] | None = None
    unchanged: Unchanged | None = None


InlineApplier = Callable[[Connection, Sequence[RecordedEvent]], None]
"""Called inside the append's savepoint with the events just written; raising aborts it."""

NOTIFY_CHANNEL = "ledgerca_head"


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventStore:
    """Append to and read from the `events` table of one database."""

    def __init__(
        self,
        engine: Engine,
        *,
        upcasters: Upcasters = NO_UPCASTERS,
        inline: InlineApplier | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.upcasters = upcasters
        self.inline = inline
        self.clock = clock

    # -- writing ---------------------------------------------------------------------------

    def append(
        self,
        events: Sequence[NewEvent],
        *,
        actor: Mapping[str, Any] | None = None,
        expected: Mapping[str, int] | None = None,
        unchanged: Unchanged | None = None,
    ) -> list[RecordedEvent]:
        """Append `events` atomically; return them as recorded once committed."""
        with self.transaction() as tx:
            return tx.append(events, actor=actor, expected=expected, unchanged=unchanged)

    @contextmanager
    def transaction(self) -> Iterator[AppendTransaction]:
        """Hold the ledger lock for one commit that may carry several appends."""
        with write_lock(self.engine), self.engine.connect() as connection:
            connection = connection.execution_options(**WRITE)
            with connection.begin():
                tx = AppendTransaction(self, connection)
                yield tx
                tx.finish()

    # -- reading ---------------------------------------------------------------------------

    def head(self, connection: Connection | None = None) -> Head:
        if connection is None:
            with self.engine.connect() as own:
                return self.head(own)
        row = connection.execute(
            select(ledger_head.c.position, ledger_head.c.hash, ledger_head.c.recorded_at).where(
                ledger_head.c.id == 1
            )
        ).one_or_none()
        if row is None:
            raise LedgerError("the ledger has no head row: run `ledgerca db upgrade`")
        recorded = parse_time(row.recorded_at) if row.recorded_at else None
        return Head(int(row.position), str(row.hash), recorded)

    def read(
        self,
        after: int = 0,
        *,
        limit: int | None = None,
        stream: str | None = None,
        types: Iterable[str] | None = None,
        since: datetime | None = None,
        until_position: int | None = None,
        batch: int = 1000,
    ) -> Iterator[RecordedEvent]:
        """Events with `position > after` in position order, fetched `batch` at a time."""
        remaining = limit
        type_list = list(types) if types is not None else None
        while remaining is None or remaining > 0:
            size = batch if remaining is None else min(batch, remaining)
            query = _filtered(select(events_table), stream, type_list, since, until_position)
            query = query.where(events_table.c.position > after)
            query = query.order_by(events_table.c.position).limit(size)
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
            for row in rows:
                yield self.decode(row)
            if len(rows) < size:
                return
            after = int(rows[-1].position)
            if remaining is not None:
                remaining -= len(rows)

    def read_stream(self, stream: str) -> list[RecordedEvent]:
        return list(self.read(stream=stream))

    def stream_version(self, stream: str, connection: Connection | None = None) -> int:
        query = select(func.max(events_table.c.version)).where(events_table.c.stream == stream)
        if connection is None:
            with self.engine.connect() as own:
                return int(own.execute(query).scalar() or 0)
        return int(connection.execute(query).scalar() or 0)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(events_table)).scalar_one()
            )

    def decode(self, row: Row[Any] | StoredRow) -> RecordedEvent:
        schema, data = self.upcasters.upcast(row.type, int(row.schema), parse_json(row.data))
        return RecordedEvent(
            position=int(row.position),
            event_id=uuid.UUID(row.event_id),
            stream=row.stream,
            version=int(row.version),
            type=row.type,
            schema=schema,
            recorded_at=parse_time(row.recorded_at),
            actor=parse_json(row.actor),
            data=data,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )


def _filtered(
    query: Select[Any],
    stream: str | None,
    types: list[str] | None,
    since: datetime | None,
    until_position: int | None,
) -> Select[Any]:
    if stream is not None:
        query = query.where(events_table.c.stream == stream)
    if types is not None:
        query = query.where(events_table.c.type.in_(types))
    if since is not None:
        query = query.where(events_table.c.recorded_at >= format_time(since))
    if until_position is not None:
        query = query.where(events_table.c.position <= until_position)
    return query


class AppendTransaction:
    """One locked transaction on the ledger; `append` may be called several times."""

    def __init__(self, store: EventStore, connection: Connection) -> None:
        self.store = store
        self.connection = connection
        self.recorded: list[RecordedEvent] = []
        row = _LOCK_HEAD.execute(connection).fetchone()
        if row is None:
            raise LedgerError("the ledger has no head row: run `ledgerca db upgrade`")
        self._position = int(row[0])
        self._hash = str(row[1])
        self._time = str(row[2] or "")
        self._versions: dict[str, int] = {}
        self._latest: dict[frozenset[str], int] = {}

    def append(
        self,
        events: Sequence[NewEvent],
        *,
        actor: Mapping[str, Any] | None = None,
        expected: Mapping[str, int] | None = None,
        unchanged: Unchanged | None = None,
    ) -> list[RecordedEvent]:
        """Append `events` as one unit: all of them (and their inline projections) or none."""
        if not events:
            return []
        self._check_unchanged(unchanged)
        saved = (self._position, self._hash, self._time, dict(self._versions), dict(self._latest))
        # A savepoint per unit, in plain SQL: SQLAlchemy's nested transactions cost ~0.1 ms.
        _SAVEPOINT.execute(self.connection)
        try:
            recorded = self._write(events, actor or {}, expected or {})
            if self.store.inline is not None:
                self.store.inline(self.connection, recorded)
            _RELEASE.execute(self.connection)
        except BaseException:
            if not self.connection.invalidated:
                _ROLLBACK_TO.execute(self.connection)
                _RELEASE.execute(self.connection)
            self._position, self._hash, self._time, self._versions, self._latest = saved
            raise
        self.recorded.extend(recorded)
        return recorded

    def append_all(self, units: Sequence[AppendUnit]) -> list[list[RecordedEvent]]:
        """Append several units at once, without savepoints: one insert for all their
        events and one batch per inline projection.

        All or nothing, and on a refusal the transaction is unusable (PostgreSQL aborts it):
        the caller rolls it back and appends the units one at a time, each in its savepoint,
        to learn whose refusal it was. The cheap path of group commit, where refusals are
        rare."""
        rows: list[dict[str, Any]] = []
        results: list[list[RecordedEvent]] = []
        for unit in units:
            self._check_unchanged(unit.unchanged)
            staged, recorded = self._stage(unit.events, unit.actor or {}, unit.expected or {})
            rows.extend(staged)
            results.append(recorded)
        everything = [event for recorded in results for event in recorded]
        if rows:
            alone = units[0] if len(units) == 1 else None  # names the stream in a conflict
            self._insert(rows, alone.expected or {} if alone else {}, alone.events if alone else [])
            if self.store.inline is not None:
                self.store.inline(self.connection, everything)
        self.recorded.extend(everything)
        return results

    def _check_unchanged(self, unchanged: Unchanged | None) -> None:
        if unchanged is None:
            return
        latest = self.latest_position(unchanged.types)
        if latest > unchanged.position:
            raise ChangedSince(
                f"an event of the watched types was recorded at {latest}, "
                f"after position {unchanged.position}",
                position=latest,
            )

    def latest_position(self, types: frozenset[str]) -> int:
        """The position of the newest event of `types` (0 if none), this transaction's own
        appends included. Read once per transaction: the ledger lock keeps it true."""
        if types not in self._latest:
            query = _LATEST_OF.get(types)
            if query is None:
                # One bound value per type (not an expanding IN): compiled once, reused.
                names = sorted(types)
                query = _LATEST_OF[types] = Prepared(
                    select(func.max(events_table.c.position)).where(
                        events_table.c.type.in_(
                            [bindparam(f"type_{i}", name) for i, name in enumerate(names)]
                        )
                    )
                )
            row = query.execute(self.connection).fetchone()
            self._latest[types] = int(row[0] or 0) if row else 0
        return self._latest[types]

    def _version(self, stream: str) -> int:
        if stream not in self._versions:
            self._versions[stream] = self.store.stream_version(stream, self.connection)
        return self._versions[stream]

    def _load_versions(self, streams: set[str]) -> None:
        """Current versions of `streams`, one query per few hundred streams (0 = new)."""
        pending = sorted(streams)
        for start in range(0, len(pending), 500):
            chunk = pending[start : start + 500]
            rows = self.connection.execute(
                select(events_table.c.stream, func.max(events_table.c.version))
                .where(events_table.c.stream.in_(chunk))
                .group_by(events_table.c.stream)
            )
            found = {str(stream): version for stream, version in rows}
            for stream in chunk:
                self._versions[stream] = int(found.get(stream) or 0)

    def _write(
        self, events: Sequence[NewEvent], actor: Mapping[str, Any], expected: Mapping[str, int]
    ) -> list[RecordedEvent]:
        rows, recorded = self._stage(events, actor, expected)
        self._insert(rows, expected, events)
        return recorded

    def _stage(
        self, events: Sequence[NewEvent], actor: Mapping[str, Any], expected: Mapping[str, int]
    ) -> tuple[list[dict[str, Any]], list[RecordedEvent]]:
        """Number, chain and hash `events` after what this transaction holds so far: the
        rows to insert and the events as they will be recorded."""
        for stream, version in expected.items():
            known = self._versions.get(stream)
            if known is None:
                # Trust the caller's expectation instead of reading the stream first: if it is
                # wrong, UNIQUE(stream, version) refuses the insert below (versions are dense).
                self._versions[stream] = version
            elif known != version:
                raise ConcurrencyConflict(
                    f"stream {stream} is at version {known}, expected {version}", stream=stream
                )
        self._load_versions({e.stream for e in events} - self._versions.keys())
        now = format_time(self.store.clock())
        # Keep recorded_at monotonic with position, so "as of a time" maps to a prefix.
        self._time = max(now, self._time)
        actor_text = canonical_json(actor)
        actor_copy = parse_json(actor_text)
        recorded_at = parse_time(self._time)
        rows: list[dict[str, Any]] = []
        recorded: list[RecordedEvent] = []
        for new in events:
            version = self._version(new.stream) + 1
            self._versions[new.stream] = version
            self._position += 1
            for types in self._latest:
                if new.type in types:
                    self._latest[types] = self._position
            data_text = canonical_json(new.data)
            event_id = str(new.event_id)
            prev_hash = self._hash
            self._hash = hash_parts(
                position=self._position,
                event_id=event_id,
                stream=new.stream,
                version=version,
                type=new.type,
                schema=new.schema,
                recorded_at=self._time,
                actor_text=actor_text,
                data_text=data_text,
                prev_hash=prev_hash,
            )
            rows.append(
                {
                    "position": self._position,
                    "event_id": event_id,
                    "stream": new.stream,
                    "version": version,
                    "type": new.type,
                    "schema": new.schema,
                    "recorded_at": self._time,
                    "actor": actor_text,
                    "data": data_text,
                    "prev_hash": prev_hash,
                    "hash": self._hash,
                }
            )
            # The stored form, parsed: exactly what a replay will hand the projections.
            schema, data = self.store.upcasters.upcast(new.type, new.schema, parse_json(data_text))
            recorded.append(
                RecordedEvent(
                    position=self._position,
                    event_id=new.event_id,
                    stream=new.stream,
                    version=version,
                    type=new.type,
                    schema=schema,
                    recorded_at=recorded_at,
                    actor=actor_copy,
                    data=data,
                    prev_hash=prev_hash,
                    hash=self._hash,
                )
            )
        return rows, recorded

    def _insert(
        self,
        rows: list[dict[str, Any]],
        expected: Mapping[str, int],
        events: Sequence[NewEvent],
    ) -> None:
        try:
            _INSERT_EVENTS.executemany(self.connection, rows)
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise AppendRefused(f"the database refused the append: {exc.orig}") from exc
            streams = list(expected) or [e.stream for e in events]
            raise ConcurrencyConflict(
                f"stream {', '.join(streams)} is not at the expected version: {exc.orig}",
                stream=streams[0] if len(streams) == 1 else None,
            ) from exc

    def finish(self) -> None:
        """Move the head row to the last event appended; called just before commit."""
        if not self.recorded:
            return
        _MOVE_HEAD.execute(
            self.connection,
            {"new_position": self._position, "new_hash": self._hash, "new_time": self._time},
        )
        if not is_sqlite(self.connection.engine):
            # A wake-up for other instances; delivered only if this transaction commits.
            self.connection.exec_driver_sql(
                f"SELECT pg_notify('{NOTIFY_CHANNEL}', '{int(self._position)}')"
            )


GENESIS = Head(0, GENESIS_HASH, None)
