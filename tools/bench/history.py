"""A ledger with a long history: generate it, then time verify, audit verify, an inclusion
proof, export and rebuild over it.

    python -m tools.bench.history [--events 1000000] [--db URL] [--keep DIR] [--json OUT]

The generated events are shaped like issuance (`x509.issued` with a small stand-in for the
PEM, one revocation in 20), so rebuilding the `certificates` projection does real work.
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import migrations
from ca.audit.checkpoints import Checkpoint
from ca.audit.proofs import build as build_proof
from ca.audit.tree import leaf_list
from ca.audit.verify import audit
from ledger import EventStore, NewEvent, create_engine, verify_chain
from ledger.merkle import root
from ledger.transfer import export_lines
from projections import events as ev
from projections.runner import Projections


def issued(serial: str, n: int) -> NewEvent:
    return NewEvent(
        ev.x509_stream(serial),
        ev.X509Issued.TYPE,
        {
            "serial": serial,
            "certificate": f"stand-in for certificate {n}",
            "subject": f"CN=svc-{n % 5000}.example.internal",
            "sans": [{"type": "dns", "value": f"svc-{n % 5000}.example.internal"}],
            "not_before": "2026-11-27T00:00:00.000000Z",
            "not_after": "2026-11-28T00:00:00.000000Z",
            "provisioner": {"id": "bench", "name": "bench", "type": "JWK"},
            "issuer_key_id": "0" * 64,
            "token_id": secrets.token_hex(32),
            "renewed_from": None,
            "rekeyed_from": None,
        },
    )


def generate(store: EventStore, total: int, batch: int = 2000) -> float:
    start = time.perf_counter()
    written = 0
    while written < total:
        events: list[NewEvent] = []
        while len(events) < min(batch, total - written):
            n = written + len(events)
            serial = str(secrets.randbits(127) | (1 << 126))
            events.append(issued(serial, n))
            if n % 20 == 19 and len(events) < min(batch, total - written):
                events.append(
                    NewEvent(
                        ev.x509_stream(serial),
                        ev.X509Revoked.TYPE,
                        {
                            "serial": serial,
                            "reason_code": 1,
                            "reason": "bench",
                            "revoked_at": "2026-11-27T12:00:00.000000Z",
                        },
                    )
                )
        store.append(events, actor={"bench": "history"})
        written += len(events)
    return written / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", help="database URL (default: a temp SQLite file)")
    parser.add_argument("--keep", type=Path, help="directory to keep the SQLite ledger in")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    directory = args.keep or Path(tempfile.mkdtemp(prefix="ledgerca-history-"))
    url = args.db or f"sqlite:///{directory / 'ledger.sqlite'}"
    engine = create_engine(url)
    migrations.upgrade(engine)
    projections = Projections()
    store = EventStore(engine, inline=projections.inline_applier())
    results: dict[str, Any] = {"events": args.events, "db": url.split("://")[0]}
    if store.head().position == 0:
        results["append_events_per_s"] = generate(store, args.events)
    head = store.head().position
    start = time.perf_counter()
    verified = verify_chain(engine).events
    results["verify_events_per_s"] = verified / (time.perf_counter() - start)
    start = time.perf_counter()
    # Chain, Merkle tree, checkpoints and a replay of every projection compared with the live
    # tables: everything `ledgerca audit verify` does.
    report = audit(store)
    results["audit_verify_events_per_s"] = report.events / (time.perf_counter() - start)
    results["audit_verify_s"] = time.perf_counter() - start
    # A proof of the middle event against an (unsigned) checkpoint of the whole ledger.
    start = time.perf_counter()
    stand_in = Checkpoint(head, root(leaf_list(engine, head)).hex(), "", "0" * 64, "")
    build_proof(engine, max(1, head // 2), stand_in)
    results["proof_s"] = time.perf_counter() - start
    start = time.perf_counter()
    exported = sum(1 for _ in export_lines(engine))
    results["export_events_per_s"] = exported / (time.perf_counter() - start)
    for name in ("certificates", "used_tokens"):
        start = time.perf_counter()
        replayed = projections.rebuild(store, projections.get(name))
        results[f"rebuild_{name}_events_per_s"] = replayed / (time.perf_counter() - start)
    print(f"ledger of {head} events ({results['db']})")
    for key, value in results.items():
        if key.endswith("_per_s"):
            print(f"  {key:<36} {value:>12,.0f}")
        elif key.endswith("_s"):
            print(f"  {key:<36} {value:>12,.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    engine.dispose()


if __name__ == "__main__":
    main()
