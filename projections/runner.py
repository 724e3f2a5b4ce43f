"""Applying projections: inline inside appends, followers from a stored position,
and rebuilds from position zero."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ledger import EventStore, InlineApplier, RecordedEvent
from ledger.database import WRITE
from ledger.rows import batches_between
from ledger.schema import ledger_head
from projections import (
    activity,
    authority_keys,
    certificates,
    crls,
    policies,
    provisioners,
    ssh_certificates,
    ssh_hosts,
    used_tokens,
)
from projections.base import Mode, Projection, projection_positions

ALL: tuple[Projection, ...] = (
    authority_keys.projection,
    provisioners.projection,
    certificates.projection,
    used_tokens.projection,
    crls.projection,
    policies.projection,
    activity.projection,
    ssh_certificates.projection,
    ssh_hosts.projection,
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Status:
    name: str
    mode: Mode
    position: int
    head: int

    @property
    def lag(self) -> int:
        return self.head - self.position


class Projections:
    """The set of projections one CA process runs."""

    def __init__(self, projections: Sequence[Projection] = ALL) -> None:
        self.all = tuple(projections)
        self.by_name = {p.name: p for p in self.all}
        self.inline = tuple(p for p in self.all if p.mode is Mode.INLINE)
        self.followers = tuple(p for p in self.all if p.mode is Mode.FOLLOWER)

    def get(self, name: str) -> Projection:
        try:
            return self.by_name[name]
        except KeyError:
            known = ", ".join(sorted(self.by_name))
            raise KeyError(f"no projection named {name!r} (known: {known})") from None

    def inline_applier(self) -> InlineApplier:
        inline = self.inline

        def apply(connection: Connection, events: Sequence[RecordedEvent]) -> None:
            # Projections never read each other's tables: each may take the events at once.
            for projection in inline:
                projection.apply_all(connection, events)

        return apply

    # -- followers -------------------------------------------------------------------------

    def catch_up(self, store: EventStore, projection: Projection, *, batch: int = 1000) -> int:
        """Apply what a follower has not seen yet; return how many events it applied.

        Each batch commits together with the follower's new position, and the position row is
        locked first, so two instances running the same follower never apply an event twice.
        """
        applied = 0
        while True:
            with store.engine.connect() as connection:
                connection = connection.execution_options(**WRITE)
                with connection.begin():
                    position = _locked_position(connection, projection.name)
                    events = list(store.read(position, limit=batch))
                    projection.apply_all(connection, events)
                    if events:
                        _store_position(connection, projection.name, events[-1].position)
            applied += len(events)
            if len(events) < batch:
                return applied

    def catch_up_followers(self, store: EventStore) -> int:
        """Catch up every follower behind the head (one read when none is: a serving
        process calls this often, and a write transaction per call would be wasted)."""
        behind = {s.name for s in self.status(store) if s.mode is Mode.FOLLOWER and s.lag > 0}
        return sum(self.catch_up(store, f) for f in self.followers if f.name in behind)

    # -- rebuild and status ----------------------------------------------------------------

    def rebuild(
        self, store: EventStore, projection: Projection, *, progress: Progress | None = None
    ) -> int:
        """Replay the whole ledger into empty tables and swap them in atomically.

        The replay runs in one transaction holding the ledger lock: readers keep seeing the
        old rows until the commit replaces them all at once, and no append can slip in
        between the last replayed event and the swap.
        """
        with store.engine.connect() as connection:
            connection = connection.execution_options(**WRITE)
            with connection.begin():
                head = int(
                    connection.execute(
                        select(ledger_head.c.position)
                        .where(ledger_head.c.id == 1)
                        .with_for_update()
                    ).scalar_one()
                )
                _locked_position(connection, projection.name)
                projection.clear(connection)
                replayed = 0
                for rows in batches_between(connection, 0, head, 5000):
                    projection.apply_all(connection, [store.decode(row) for row in rows])
                    replayed += len(rows)
                    if progress is not None:
                        progress(rows[-1].position, head)
                _store_position(connection, projection.name, head)
        return replayed

    def status(self, store: EventStore) -> list[Status]:
        head = store.head().position
        with store.engine.connect() as connection:
            stored = {
                str(name): int(position)
                for name, position in connection.execute(
                    select(projection_positions.c.name, projection_positions.c.position)
                )
            }
        return [
            Status(
                p.name,
                p.mode,
                # Inline projections commit with every append: they are at the head by
                # construction.
                head if p.mode is Mode.INLINE else int(stored.get(p.name, 0)),
                head,
            )
            for p in self.all
        ]


def _locked_position(connection: Connection, name: str) -> int:
    # Insert-if-absent before locking: `FOR UPDATE` locks nothing when the row is missing,
    # so two instances starting the same new follower would both try to create it.
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(
        insert(projection_positions)
        .values(name=name, position=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return int(
        connection.execute(
            select(projection_positions.c.position)
            .where(projection_positions.c.name == name)
            .with_for_update()
        ).scalar_one()
    )


def _store_position(connection: Connection, name: str, position: int) -> None:
    connection.execute(
        update(projection_positions)
        .where(projection_positions.c.name == name)
        .values(position=position)
    )
