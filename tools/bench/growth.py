"""Does issuance slow down as history grows? The rate on a fresh ledger vs. the same CA
after N more events (issuance-shaped, so the `certificates` projection holds N rows).

    python -m tools.bench.growth [--events 1000000] [--db URL] [--connections 32]
                                 [--duration 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ledger import EventStore, create_engine
from projections.runner import Projections
from tools.bench.common import HERE, make_ca, run_wrk, start_server, wait_idle
from tools.bench.history import generate
from tools.bench.issue import provisioner, write_bodies


def issue_rate(
    ca: Any, key: Any, kid: str, connections: int, duration: int, tag: str
) -> dict[str, Any]:
    server = start_server(ca, 2, ca.base / f"serve-{tag}.log")
    try:
        # Steady state, not start-up: each worker first catches its checkpoint tree up with
        # the whole ledger (O(events), once per process), which is reported separately.
        warmup = wait_idle(server.process.pid)
        bodies = ca.base / f"bodies-{tag}.jsonl"
        write_bodies(bodies, 1500 * duration, key, kid, f"{server.url}/1.0/sign")
        result = run_wrk(f"{server.url}/1.0/sign", connections=connections, duration=duration,
                         script=HERE / "sequence.lua", bodies=bodies)  # fmt: skip
        result["warmup_s"] = round(warmup, 1)
        return result
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", help="database URL (default: SQLite in the CA's home)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    ca = make_ca(args.db)
    key, kid = provisioner(ca)
    empty = issue_rate(ca, key, kid, args.connections, args.duration, "empty")
    engine = create_engine(args.db or f"sqlite:///{ca.home / 'db' / 'ledger.sqlite'}")
    try:
        store = EventStore(engine, inline=Projections().inline_applier())
        generated = generate(store, args.events)
        head = store.count()
    finally:
        engine.dispose()
    grown = issue_rate(ca, key, kid, args.connections, args.duration, "grown")
    change = grown["rate"] / empty["rate"] - 1 if empty["rate"] else 0.0
    print(f"ledgerca growth benchmark: db={args.db or 'sqlite (embedded)'}, 2 workers,"
          f" c={args.connections}, {args.duration}s;"
          f" history written at {generated:,.0f} events/s")  # fmt: skip
    print(f"{'ledger':>18} {'start-up s':>10} {'certs/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
          f" {'errors':>7}")  # fmt: skip
    for label, row in (("empty", empty), (f"{head:,} events", grown)):
        p50, p99 = row["p50_us"] / 1000, row["p99_us"] / 1000
        print(f"{label:>18} {row['warmup_s']:>10.1f} {row['rate']:>9.0f}"
              f" {p50:>8.1f} {p99:>8.1f} {row['errors']:>7}")  # fmt: skip
    print(f"change: {change:+.1%} (target: within 10 %)")
    print(ca.cli("ledger", "verify").strip())
    if args.json:
        args.json.write_text(json.dumps({"empty": empty, "grown": grown, "events": head,
                                         "change": change}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
