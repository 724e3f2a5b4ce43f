"""Issuance throughput with 1, 2 and 3 `ledgerca serve` instances on one PostgreSQL.

    python -m tools.bench.scale [--instances 1,2,3] [--connections 32] [--duration 10]
                                [--json OUT]

Each instance runs one worker on its own port; one wrk per instance drives it with its own
share of the pre-minted tokens (every token used once), all at the same time, with the
connections split between them. A throwaway PostgreSQL server (fsync on) holds one fresh
database per row.
The rate is the sum over instances; p99 is the worst instance's.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from tools.bench.common import HERE, free_port, make_ca, run_wrk, start_server
from tools.bench.issue import provisioner, write_bodies

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support.postgres import PostgresServer


def measure(url: str, instances: int, connections: int, duration: int, rate: int) -> dict[str, Any]:
    ca = make_ca(url)
    key, kid = provisioner(ca)
    servers = []
    try:
        for index in range(instances):
            port = ca.port if index == 0 else free_port()
            servers.append(start_server(ca, 1, ca.base / f"serve-{index}.log", port=port))
        per_instance = max(1, connections // instances)
        results: list[dict[str, Any]] = [{} for _ in servers]
        bodies = []
        for index, server in enumerate(servers):
            path = ca.base / f"bodies-{index}.jsonl"
            write_bodies(path, rate * duration // instances + 1000, key, kid,
                         f"{server.url}/1.0/sign")  # fmt: skip
            bodies.append(path)

        def drive(index: int) -> None:
            results[index] = run_wrk(
                f"{servers[index].url}/1.0/sign",
                connections=per_instance,
                duration=duration,
                script=HERE / "sequence.lua",
                bodies=bodies[index],
            )

        threads = [threading.Thread(target=drive, args=(i,)) for i in range(instances)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for server in servers:
            server.stop()
    verify = ca.cli("ledger", "verify").strip()
    return {
        "instances": instances,
        "connections": per_instance * instances,
        "rate": sum(r["rate"] for r in results),
        "p99_us": max(r["p99_us"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "per_instance": [round(r["rate"]) for r in results],
        "verify": verify,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", default="1,2,3")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--max-rate", type=int, default=1500, help="tokens minted per second")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    server = PostgresServer.start()
    rows = []
    try:
        for number, count in enumerate(int(x) for x in args.instances.split(",")):
            url = server.create_database(f"bench_scale_{number}")
            rows.append(measure(url, count, args.connections, args.duration, args.max_rate))
    finally:
        server.stop()
    print(f"ledgerca scale benchmark: PostgreSQL, 1 worker per instance, {args.duration}s")
    print(f"{'instances':>9} {'certs/s':>9} {'p99 ms':>8} {'errors':>7}  per instance")
    for row in rows:
        print(f"{row['instances']:>9} {row['rate']:>9.0f} {row['p99_us'] / 1000:>8.1f}"
              f" {row['errors']:>7}  {row['per_instance']}  ({row['verify']})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
