"""CRL generation with many revoked certificates: query, build + sign, and record.

    python -m tools.bench.crl [--entries 100000] [--key-type EC] [--repeat 3]
                              [--postgres | --pg-url URL] [--json OUT]

The revoked certificates are written straight into the `certificates` projection of a temp
SQLite ledger (and, with --postgres, of a throwaway PostgreSQL cluster): what is measured is
the publisher's own work on them, the steps `ca.crl.publisher` runs —

* query:  `revocation_state` (the issuer's revoked rows, parsed into entries);
* build+sign: `build_crl` (entries, extensions, one signature over the whole list);
* record: appending `crl.published` (base64 DER in canonical JSON, hashed, projected);
* probe:  `newest_revocation`, the check every worker runs each poll interval.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives import serialization

import migrations
from ca.crl.builder import EXPIRED_GRACE, build_crl
from ca.crl.records import newest_revocation, revocation_state
from ca.keys.files import generate_private_key
from ca.keys.ids import key_id
from ca.pki.profiles import build_intermediate_csr, build_root, sign_intermediate_csr
from ledger import EventStore, NewEvent, create_engine, format_time
from projections import events as ev
from projections.certificates import certificates
from projections.runner import Projections

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support.postgres import PostgresServer

T = TypeVar("T")
REASONS = (0, 1, 1, 4, 5)


def timed(work: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def fill(engine: Any, issuer_key_id: str, entries: int, now: datetime) -> None:
    """`entries` revoked certificates of the issuer, plus one valid one for every ten."""
    rng = random.Random(entries)
    not_after = format_time(now + timedelta(hours=24))
    not_before = format_time(now - timedelta(minutes=1))
    total = entries + entries // 10
    with engine.begin() as connection:
        for start in range(0, total, 10_000):
            rows = []
            for n in range(start, min(start + 10_000, total)):
                revoked = n < entries
                rows.append(
                    {
                        "serial": str(rng.getrandbits(128) | 1 << 127),
                        "subject": f"CN=svc-{n}.example.internal",
                        "sans": "[]",
                        "not_before": not_before,
                        "not_after": not_after,
                        "status": "revoked" if revoked else "valid",
                        "issuer_key_id": issuer_key_id,
                        "certificate": "-",
                        "issued_position": n + 1,
                        "revoked_at": format_time(now - timedelta(seconds=n)) if revoked else None,
                        "revocation_reason_code": rng.choice(REASONS) if revoked else None,
                        "revocation_reason": "" if revoked else None,
                        "revoked_position": total + n + 1 if revoked else None,
                    }
                )
            connection.execute(certificates.insert(), rows)


def measure(url: str, entries: int, kty: str, repeat: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    root_key = generate_private_key(kty)
    root = build_root(root_key, name="Bench", now=now)
    issuer_key = generate_private_key(kty)
    issuer = sign_intermediate_csr(
        build_intermediate_csr(issuer_key, name="Bench"), root_cert=root, root_key=root_key, now=now
    )
    issuer_id = key_id(issuer.public_key())  # type: ignore[arg-type]
    engine = create_engine(url)
    migrations.upgrade(engine)
    fill(engine, issuer_id, entries, now)
    store = EventStore(engine, inline=Projections().inline_applier())
    runs: dict[str, list[float]] = {"query": [], "build_sign": [], "record": [], "probe": []}
    der = b""
    for number in range(1, repeat + 1):
        with engine.connect() as connection:
            _, probe = timed(lambda c=connection: newest_revocation(c, issuer_id))
        with engine.connect() as connection, connection.begin():
            state, query = timed(
                lambda c=connection: revocation_state(
                    c, issuer_id, expired_before=now - EXPIRED_GRACE
                )
            )
        crl, build = timed(
            lambda s=state, n=number: build_crl(
                issuer=issuer,
                issuer_key=issuer_key,
                entries=s.entries,
                number=n,
                now=datetime.now(UTC),
                lifetime=timedelta(hours=24),
                idp_url="https://ca.example.internal/1.0/crl",
            )
        )
        der = crl.public_bytes(serialization.Encoding.DER)
        assert len(crl) == entries
        event = NewEvent(
            ev.crl_stream(issuer_id),
            ev.CRLPublished.TYPE,
            {
                "issuer_key_id": issuer_id,
                "number": number,
                "this_update": format_time(crl.last_update_utc),
                "next_update": format_time(crl.next_update_utc or crl.last_update_utc),
                "revoked_through": state.through,
                "entries": len(crl),
                "der": base64.b64encode(der).decode(),
            },
        )
        _, record = timed(lambda e=event, n=number: store.append([e], expected={e.stream: n - 1}))
        for name, value in (("query", query), ("build_sign", build), ("record", record),
                            ("probe", probe)):  # fmt: skip
            runs[name].append(value)
    engine.dispose()
    medians = {name: statistics.median(values) for name, values in runs.items()}
    return {
        "entries": entries,
        "key_type": kty,
        "query_s": medians["query"],
        "build_sign_s": medians["build_sign"],
        "record_s": medians["record"],
        "total_s": medians["query"] + medians["build_sign"] + medians["record"],
        "probe_ms": medians["probe"] * 1000,
        "der_bytes": len(der),
        "repeat": repeat,
    }


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    server = PostgresServer.start()
    try:
        yield server.create_database("bench_crl")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--key-type", default="EC", choices=["EC", "OKP", "RSA"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per backend (median shown)")
    parser.add_argument("--postgres", action="store_true", help="also a throwaway PostgreSQL")
    parser.add_argument("--pg-url", help="also this PostgreSQL database (must be empty)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(
            f"sqlite:///{tmp}/bench.sqlite", args.entries, args.key_type, args.repeat
        )
    if args.postgres or args.pg_url:
        with postgres(args.pg_url) as url:
            results["postgresql"] = measure(url, args.entries, args.key_type, args.repeat)
    print(
        f"{'backend':<11} {'key':<4} {'entries':>8} {'query s':>8} {'build+sign s':>13}"
        f" {'record s':>9} {'total s':>8} {'probe ms':>9} {'DER MB':>7}"
    )
    for backend, row in results.items():
        print(
            f"{backend:<11} {row['key_type']:<4} {row['entries']:>8} {row['query_s']:>8.2f}"
            f" {row['build_sign_s']:>13.2f} {row['record_s']:>9.2f} {row['total_s']:>8.2f}"
            f" {row['probe_ms']:>9.2f} {row['der_bytes'] / 1e6:>7.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
