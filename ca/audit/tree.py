"""The ledger's Merkle tree, read from the events table (leaves: `ledger.merkle.event_leaf`)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, Engine, select

from ledger.merkle import CompactTree, event_leaf
from ledger.schema import events


def leaves(
    engine: Engine | Connection, *, after: int = 0, until: int, batch: int = 20000
) -> Iterator[tuple[int, bytes]]:
    """(position, leaf hash) for positions after..until, from the stored chain hashes.

    Stored hashes are trusted here only to build proofs and checkpoints; `audit verify`
    recomputes every one of them, and a proof built from a forged hash cannot verify
    against a checkpoint signed before the forgery.
    """
    while after < until:
        query = (
            select(events.c.position, events.c.hash)
            .where(events.c.position > after, events.c.position <= until)
            .order_by(events.c.position)
            .limit(batch)
        )
        if isinstance(engine, Connection):
            rows = engine.execute(query).all()
        else:
            with engine.connect() as connection:
                rows = connection.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield int(row.position), event_leaf(row.hash)
        after = int(rows[-1].position)


def leaf_list(engine: Engine | Connection, size: int) -> list[bytes]:
    """Every leaf of the tree of `size` events; fewer if the ledger is shorter."""
    return [leaf for _position, leaf in leaves(engine, until=size)]


class GrowingTree:
    """A compact tree kept in step with the ledger head, one read of the new events at a time."""

    def __init__(self) -> None:
        self.tree = CompactTree()

    @property
    def size(self) -> int:
        return self.tree.size

    def catch_up(self, source: Engine | Connection, head: int) -> None:
        for position, leaf in leaves(source, after=self.tree.size, until=head):
            if position != self.tree.size + 1:
                raise LookupError(f"position {self.tree.size + 1} is missing from the ledger")
            self.tree.append(leaf)

    def root(self) -> bytes:
        return self.tree.root()
