"""Ledger append throughput: SQLite and PostgreSQL, 1 and 8 writers, single events,
group commit and batches.

    python -m tools.bench.append [--events 2000] [--pg-url URL] [--json OUT]

Without --pg-url a throwaway PostgreSQL cluster is started (as the test suite does). Every
figure is for durable commits (SQLite WAL with synchronous=FULL; PostgreSQL fsync on).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import migrations
from ledger import EventStore, GroupCommitter, NewEvent, create_engine, verify_chain
from projections.runner import Projections

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support.postgres import PostgresServer


def payload(n: int) -> dict[str, Any]:
    """Roughly the size of an x509.issued payload without its PEM."""
    name = f"svc-{n}.example.internal"
    return {
        "serial": str(10**37 + n),
        "subject": f"CN={name}",
        "sans": [{"type": "dns", "value": name}],
        "not_before": "2026-11-27T00:00:00.000000Z",
        "not_after": "2026-11-28T00:00:00.000000Z",
    }


def run_threads(writers: int, total: int, work: Callable[[int, int], None]) -> float:
    per = total // writers
    threads = [threading.Thread(target=work, args=(w, per)) for w in range(writers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return writers * per / (time.perf_counter() - start)


def measure(url: str, total: int) -> list[dict[str, Any]]:
    engine = create_engine(url, pool_size=16, max_overflow=8)
    migrations.upgrade(engine)
    store = EventStore(engine, inline=Projections().inline_applier())
    rows: list[dict[str, Any]] = []

    for writers in (1, 8):

        def single(w: int, count: int, writers: int = writers) -> None:
            for n in range(count):
                store.append([NewEvent(f"bench/s{writers}/{w}/{n}", "bench.event", payload(n))])

        rows.append({"mode": "single event per commit", "writers": writers,
                     "events_per_s": run_threads(writers, total // 4, single)})  # fmt: skip

    committer = GroupCommitter(store)
    for writers in (1, 8, 32):

        def grouped(w: int, count: int, writers: int = writers) -> None:
            for n in range(count):
                committer.append([NewEvent(f"bench/g{writers}/{w}/{n}", "bench.event", payload(n))])

        rows.append({"mode": "single event, group commit", "writers": writers,
                     "events_per_s": run_threads(writers, total, grouped)})  # fmt: skip
    committer.close()

    for writers in (1, 8):

        def batched(w: int, count: int, writers: int = writers) -> None:
            for start in range(0, count, 100):
                store.append([NewEvent(f"bench/b{writers}/{w}/{n}", "bench.event", payload(n))
                              for n in range(start, min(start + 100, count))])  # fmt: skip

        rows.append({"mode": "batches of 100 events", "writers": writers,
                     "events_per_s": run_threads(writers, total * 5, batched)})  # fmt: skip
    verified = verify_chain(engine).events
    engine.dispose()
    for row in rows:
        row["verified_events"] = verified
    return rows


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    server = PostgresServer.start()
    try:
        yield server.create_database("bench_append")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--pg-url")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(f"sqlite:///{tmp}/bench.sqlite", args.events)
    with postgres(args.pg_url) as url:
        results["postgresql"] = measure(url, args.events)
    print(f"{'backend':<11} {'mode':<28} {'writers':>7} {'events/s':>10}")
    for backend, rows in results.items():
        for row in rows:
            print(
                f"{backend:<11} {row['mode']:<28} {row['writers']:>7} {row['events_per_s']:>10.0f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
