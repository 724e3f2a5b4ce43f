"""The ledger's Merkle tree, read from the events table (leaves: `ledger.merkle.event_leaf`)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator

from sqlalchemy import Connection, Engine

from ledger.merkle import SubtreeHashes, event_leaf
from ledger.rows import hashes_between


def leaves(
    engine: Engine | Connection, *, after: int = 0, until: int, batch: int = 20000
) -> Iterator[tuple[int, bytes]]:
    """(position, leaf hash) for positions after..until, from the stored chain hashes.

    Stored hashes are trusted here only to build proofs and checkpoints; `audit verify`
    recomputes every one of them, and a proof built from a forged hash cannot verify
    against a checkpoint signed before the forgery.
    """
    while after < until:
        if isinstance(engine, Connection):
            rows = hashes_between(engine, after, until, batch)
        else:
            with engine.connect() as connection:
                rows = hashes_between(connection, after, until, batch)
        if not rows:
            return
        for position, chain_hash in rows:
            yield position, event_leaf(chain_hash)
        after = rows[-1][0]


def leaf_list(engine: Engine | Connection, size: int) -> list[bytes]:
    """Every leaf of the tree of `size` events; fewer if the ledger is shorter."""
    return [leaf for _position, leaf in leaves(engine, until=size)]


class GrowingTree:
    """The ledger's tree kept in step with its head, one read of the new events at a time.

    It keeps the perfect subtrees of 256 leaves and more (`SubtreeHashes`, about a quarter of
    a byte per event), so once caught up, the root and audit path of any checkpoint's tree
    cost O(log n) hashes and at most two chunks of leaves read from the events table. Roots
    are remembered per tree size: a checkpoint is compared with the ledger once per process.
    Safe to share between threads.
    """

    def __init__(self) -> None:
        self.tree = SubtreeHashes(min_level=8)
        self._lock = threading.Lock()
        self._roots: dict[int, bytes] = {}

    @property
    def size(self) -> int:
        return self.tree.size

    def catch_up(self, source: Engine | Connection, head: int) -> None:
        with self._lock:
            for position, leaf in leaves(source, after=self.tree.size, until=head):
                if position != self.tree.size + 1:
                    raise LookupError(f"position {self.tree.size + 1} is missing from the ledger")
                self.tree.append(leaf)

    def root(self) -> bytes:
        with self._lock:
            return self.tree.root()

    def root_of(self, engine: Engine, size: int) -> bytes:
        """The root of the first `size` events (caught up to `size` first)."""
        if size not in self._roots:
            self.catch_up(engine, size)
            self._roots[size] = self.tree.root_of(size, _source(engine))
        return self._roots[size]

    def path(self, engine: Engine, index: int, size: int) -> list[bytes]:
        """The audit path of leaf `index` (position index + 1) in the tree of `size` events."""
        self.catch_up(engine, size)
        return self.tree.path(index, size, _source(engine))


def _source(engine: Engine) -> Callable[[int, int], list[bytes]]:
    def read(start: int, end: int) -> list[bytes]:
        return [leaf for _position, leaf in leaves(engine, after=start, until=end)]

    return read


_shared: weakref.WeakKeyDictionary[Engine, GrowingTree] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def shared_tree(engine: Engine) -> GrowingTree:
    """The one tree of this process for the ledger behind `engine`: the checkpointer grows it,
    proofs read it, and the ledger is read once per process rather than once per request."""
    with _shared_lock:
        tree = _shared.get(engine)
        if tree is None:
            tree = _shared[engine] = GrowingTree()
        return tree
