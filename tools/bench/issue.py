"""End-to-end HTTPS issuance throughput against a running `ledgerca serve`.

    python -m tools.bench.issue [--db URL] [--workers 2] [--duration 10] [--levels 1,8,32]
                                [--json OUT]

Every request POSTs /1.0/sign with a fresh pre-minted JWK token (tokens are single use) and a
CSR, over keep-alive HTTPS, driven by wrk. The same run measures a trivial Starlette app on
Hypercorn with the same TLS settings as the ceiling, and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey

from ca.provisioners.jwk_keys import decrypt_provisioner_key
from tools.bench.common import (
    HERE,
    PROVISIONER_PASSWORD,
    BenchCA,
    RSSSampler,
    make_ca,
    run_wrk,
    start_server,
    start_trivial,
)


def provisioner(ca: BenchCA) -> tuple[ECKey, str]:
    for line in ca.cli("ledger", "log", "--json", "--type", "provisioner.added").splitlines():
        data = json.loads(line)["data"]
        key = decrypt_provisioner_key(data["encrypted_key"], PROVISIONER_PASSWORD)
        assert isinstance(key, ECKey)
        return key, data["key"]["kid"]
    raise SystemExit("no provisioner")


def csr_pem(subject: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def write_bodies(path: Path, count: int, key: ECKey, kid: str, audience: str) -> None:
    subject = "bench.example.internal"
    csr = csr_pem(subject)
    now = int(time.time())
    header = {"alg": "ES256", "kid": kid, "typ": "JWT"}
    with path.open("w") as out:
        for _ in range(count):
            claims = {
                "iss": "admin", "sub": subject, "aud": audience, "sans": [subject],
                "jti": secrets.token_hex(32), "iat": now, "nbf": now, "exp": now + 300,
            }  # fmt: skip
            token = jws.serialize_compact(header, json.dumps(claims).encode(), key)
            out.write(json.dumps({"csr": csr, "ott": token}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="database URL (default: SQLite in the CA's home)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--levels", default="1,8,32")
    parser.add_argument(
        "--max-rate", type=int, default=2500, help="tokens minted per second of run"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    ca = make_ca(args.db)
    log = ca.base / "serve.log"
    key, kid = provisioner(ca)
    results: list[dict[str, Any]] = []
    trivial_results: dict[int, dict[str, Any]] = {}
    server = start_server(ca, args.workers, log)
    try:
        for level in (int(x) for x in args.levels.split(",")):
            bodies = ca.base / f"bodies-{level}.jsonl"
            write_bodies(bodies, args.max_rate * args.duration, key, kid, f"{server.url}/1.0/sign")
            with RSSSampler(server.process.pid) as rss:
                result = run_wrk(
                    f"{server.url}/1.0/sign",
                    connections=level,
                    duration=args.duration,
                    script=HERE / "sequence.lua",
                    bodies=bodies,
                )
            result.update(concurrency=level, rss_mb=round(rss.peak, 1))
            results.append(result)
            os.unlink(bodies)
    finally:
        server.stop()
    issued = sum(1 for _ in ca.cli("ledger", "log", "--json", "--type", "x509.issued").splitlines())
    verify = ca.cli("ledger", "verify")
    trivial = start_trivial(ca, args.workers, ca.base / "trivial.log")
    try:
        for result in results:
            level = result["concurrency"]
            trivial_results[level] = run_wrk(
                trivial.url + "/",
                connections=level,
                duration=args.duration,
                script=HERE / "plain.lua",
            )
    finally:
        trivial.stop()

    print(
        f"ledgerca issue benchmark: workers={args.workers} db={args.db or 'sqlite (embedded)'}"
        f" duration={args.duration}s"
    )
    print(
        f"{'conc':>5} {'certs/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'max RSS MB':>11}"
        f" {'trivial req/s':>14} {'ratio':>6}"
    )
    for result in results:
        level = result["concurrency"]
        ceiling = trivial_results[level]["rate"]
        result["trivial_rate"] = ceiling
        result["ratio"] = result["rate"] / ceiling if ceiling else 0.0
        print(
            f"{level:>5} {result['rate']:>9.0f} {result['p50_us'] / 1000:>8.1f}"
            f" {result['p99_us'] / 1000:>8.1f} {result['errors']:>7} {result['rss_mb']:>11.1f}"
            f" {ceiling:>14.0f} {result['ratio']:>6.2f}"
        )
    print(f"certificates recorded in the ledger: {issued}; {verify.strip()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "workers": args.workers,
                    "db": args.db or "sqlite",
                    "duration": args.duration,
                    "results": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
