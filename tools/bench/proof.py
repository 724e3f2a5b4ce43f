"""Inclusion proofs over a long ledger: the whole-leaf-list proof (what every request cost
before the shared tree) against proofs from the shared tree of perfect subtrees.

    python -m tools.bench.proof [--events 100000] [--proofs 200] [--db URL]

Prints the old per-request cost, the first proof of a process (it catches the shared tree
up), then the median and p95 of proofs at random positions, and the bytes per event of the
subtree hashes the tree keeps.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import migrations
from ca.audit.checkpoints import Checkpoint
from ca.audit.proofs import build as build_proof
from ca.audit.tree import leaf_list, shared_tree
from ledger import EventStore, create_engine
from ledger.merkle import inclusion_proof, root
from projections.runner import Projections
from tools.bench.history import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--proofs", type=int, default=200)
    parser.add_argument("--db", help="database URL (default: a temp SQLite file)")
    args = parser.parse_args()
    url = args.db or f"sqlite:///{Path(tempfile.mkdtemp(prefix='ledgerca-proof-')) / 'l.sqlite'}"
    engine = create_engine(url)
    migrations.upgrade(engine)
    store = EventStore(engine, inline=Projections().inline_applier())
    if store.head().position == 0:
        generate(store, args.events)
    head = store.head().position
    leaves = leaf_list(engine, head)
    checkpoint = Checkpoint(head, root(leaves).hex(), "", "0" * 64, "")
    del leaves
    rng = random.Random(7)

    old = []
    for _ in range(3):
        start = time.perf_counter()
        full = leaf_list(engine, head)
        inclusion_proof(full, rng.randrange(head))
        root(full)
        old.append(time.perf_counter() - start)

    start = time.perf_counter()
    build_proof(engine, 1, checkpoint, with_event=False)
    first = time.perf_counter() - start
    tree_bytes = sum(len(level) * 33 + 56 for level in shared_tree(engine).tree._levels)

    new = []
    for _ in range(args.proofs):
        start = time.perf_counter()
        build_proof(engine, rng.randint(1, head), checkpoint, with_event=False)
        new.append(time.perf_counter() - start)
    new.sort()
    print(f"ledger of {head} events ({url.split('://')[0]})")
    print(f"  whole-leaf-list proof (before)   median {statistics.median(old) * 1e3:10.1f} ms")
    print(f"  first shared-tree proof          {first * 1e3:17.1f} ms")
    print(f"  shared-tree proof (after)        median {statistics.median(new) * 1e3:10.2f} ms")
    print(f"  shared-tree proof (after)        p95    {new[int(len(new) * 0.95)] * 1e3:10.2f} ms")
    print(f"  subtree hashes                    {tree_bytes / head:9.2f} B/event")
    engine.dispose()


if __name__ == "__main__":
    main()
