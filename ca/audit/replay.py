"""Replaying the ledger into a private in-memory SQLite database, through the projections' own
handlers — so a point-in-time view or a verification replay is exactly what the live
projections would hold, with no second implementation of any of them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, String, Table, create_engine, select
from sqlalchemy.pool import StaticPool

from ledger import EventStore, RecordedEvent
from ledger.reads import stream_rows
from ledger.rows import batches_between
from ledger.transfer import create_partial_copy
from projections.base import Projection, projection_positions
from projections.events import ADMINS_STREAM
from projections.runner import ALL

Progress = Callable[[int, int], None]


def read_batches(
    store: EventStore, source: Connection, *, until: int, after: int = 0, batch: int = 5000
) -> Iterator[list[RecordedEvent]]:
    """Events after..until, read on `source` (so inside its snapshot), decoded by `store`."""
    for rows in batches_between(source, after, until, batch):
        yield [store.decode(row) for row in rows]


def memory_engine() -> Engine:
    # One shared connection: an in-memory database lives as long as its connection. Its
    # rows are the ledger's, so an error names the statement, never the bound values.
    return create_engine("sqlite://", poolclass=StaticPool, hide_parameters=True)


def replay(
    store: EventStore,
    source: Connection,
    *,
    until: int,
    projections: Sequence[Projection] = ALL,
    progress: Progress | None = None,
) -> Engine:
    """A new in-memory database holding `projections` as of ledger position `until`."""
    engine = memory_engine()
    tables = [t for p in projections for t in p.tables]
    tables[0].metadata.create_all(engine, tables=[*tables, projection_positions])
    with engine.begin() as target:
        # Admins are a fold of their own stream (`ca.authority.admins`), read from `events`:
        # carry that stream's prefix over, so the snapshot of the moment has its admins.
        admins = stream_rows(source, ADMINS_STREAM, until=until)
        create_partial_copy(target, head=until, rows=admins)
        for batch in read_batches(store, source, until=until):
            for projection in projections:
                projection.apply_all(target, batch)
            if progress is not None:
                progress(batch[-1].position, until)
    return engine


def _normal(value: Any) -> Any:
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _rows(connection: Connection, table: Table) -> Generator[tuple[Any, ...], None, None]:
    columns = list(table.primary_key.columns) or list(table.columns)
    # Byte order on both sides: PostgreSQL's default collation sorts text by locale rules.
    postgres = connection.dialect.name == "postgresql"
    order = [c.collate("C") if postgres and isinstance(c.type, String) else c for c in columns]
    result = connection.execution_options(yield_per=2000).execute(select(table).order_by(*order))
    try:
        for row in result:
            yield tuple(_normal(v) for v in row)
    finally:
        result.close()  # a server-side cursor on PostgreSQL: close it before the transaction


def first_difference(live: Connection, replayed: Connection, table: Table) -> str | None:
    """None when both hold the same rows; else a sentence naming the first row that differs."""
    keys = [c.name for c in (table.primary_key.columns or table.columns)]
    names = [c.name for c in table.columns]
    sides = (_rows(live, table), _rows(replayed, table))
    try:
        return _compare_rows(itertools.zip_longest(*sides), keys, names, table.name)
    finally:
        for side in sides:
            side.close()


def _compare_rows(
    pairs: Iterator[tuple[Any, Any]], keys: list[str], names: list[str], table: str
) -> str | None:
    for have, want in pairs:
        if have == want:
            continue
        row = have if have is not None else want
        assert row is not None
        key = ", ".join(f"{k}={row[names.index(k)]}" for k in keys)
        if have is None:
            return f"table {table}: row {key} is missing"
        if want is None:
            return f"table {table}: row {key} is not in the ledger"
        column = (
            next(n for n, a, b in zip(names, have, want, strict=True) if a != b)
            if (have[: len(keys)] == want[: len(keys)])
            else None
        )
        if column is not None:
            return f"table {table}: row {key} has a different {column}"
        return f"table {table}: row {key} differs"
    return None
