"""Stored event rows read in position ranges, as plain tuples from the driver.

Replays, rebuilds and verification read every event; SQLAlchemy's result rows cost more per
event than the work done with it, so these reads go through `ledger.fastsql`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, select

from ledger.fastsql import Prepared
from ledger.schema import events


class StoredRow(NamedTuple):
    """One row of `events` as stored, in column order."""

    position: int
    event_id: str
    stream: str
    version: int
    type: str
    schema: int
    recorded_at: str
    actor: str
    data: str
    prev_hash: str
    hash: str


_BETWEEN = Prepared(
    select(*(events.c[name] for name in StoredRow._fields))
    .where(events.c.position > bindparam("after"), events.c.position <= bindparam("until"))
    .order_by(events.c.position)
    .limit(bindparam("size"))
)


def rows_between(connection: Connection, after: int, until: int, size: int) -> list[StoredRow]:
    """Up to `size` rows with `after < position <= until`, in position order."""
    cursor = _BETWEEN.execute(connection, {"after": after, "until": until, "size": size})
    return list(map(StoredRow._make, cursor.fetchall()))


def batches_between(
    connection: Connection, after: int, until: int, size: int = 5000
) -> Iterator[list[StoredRow]]:
    """Every row with `after < position <= until`, `size` at a time, on one connection (so
    inside one snapshot when it holds a transaction)."""
    while after < until:
        rows = rows_between(connection, after, until, size)
        if not rows:
            return
        yield rows
        after = int(rows[-1].position)


_HASHES_BETWEEN = Prepared(
    select(events.c.position, events.c.hash)
    .where(events.c.position > bindparam("after"), events.c.position <= bindparam("until"))
    .order_by(events.c.position)
    .limit(bindparam("size"))
)


def hashes_between(
    connection: Connection, after: int, until: int, size: int
) -> list[tuple[int, str]]:
    """(position, stored chain hash) of up to `size` rows with `after < position <= until`,
    in position order: the Merkle tree's leaves, without the rest of each row."""
    cursor = _HASHES_BETWEEN.execute(connection, {"after": after, "until": until, "size": size})
    return [(int(position), str(chain_hash)) for position, chain_hash in cursor.fetchall()]
