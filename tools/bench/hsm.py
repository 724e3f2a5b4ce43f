"""Signing with a key in a SoftHSM2 token versus the same kind of key in memory.

    python -m tools.bench.hsm [--seconds 3] [--threads 4] [--json OUT]

Creates a throwaway token in a temp dir (SOFTHSM2_CONF points at it), makes EC P-256,
Ed25519 and RSA-2048 keys in it through `ca.keys.pkcs11.create_key`, and measures, per key:
raw signatures per second (one thread, then --threads threads sharing the key: calls into
the module are serialised), and leaf certificates per second (`CertificateBuilder.sign`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

from ca.keys.files import PrivateKey, generate_private_key
from ca.keys.pkcs11 import PKCS11Settings, close_all, create_key

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "bench-pin"


def raw_sign(key: PrivateKey) -> Callable[[], Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return lambda: key.sign(b"x" * 200, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda: key.sign(b"x" * 200, padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return lambda: key.sign(b"x" * 200)


def leaf_sign(key: PrivateKey) -> Callable[[], Any]:
    subject = ec.generate_private_key(ec.SECP256R1()).public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.example")])
    now = datetime.now(UTC)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()

    def sign() -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(subject)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(hours=24))
            .sign(key, algorithm)
        )

    return sign


def rate(action: Callable[[], Any], seconds: float, threads: int = 1) -> float:
    def loop() -> int:
        count, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            action()
            count += 1
        return count

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        total = sum(pool.map(lambda _: loop(), range(threads)))
    return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    util = shutil.which("softhsm2-util")
    if util is None or not Path(MODULE).exists():
        sys.exit("softhsm2 is not installed (apt-get install softhsm2)")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "tokens").mkdir()
        conf = base / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {base / 'tokens'}\nlog.level = ERROR\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        subprocess.run(
            [util, "--init-token", "--free", "--label", "bench", "--so-pin", "0000",
             "--pin", PIN], check=True, capture_output=True,
        )  # fmt: skip
        pin_file = base / "pin"
        pin_file.write_text(PIN)
        pin_file.chmod(0o600)
        settings = PKCS11Settings(module=MODULE, pin_file=str(pin_file))
        for kty, label in (("EC", "EC P-256"), ("OKP", "Ed25519"), ("RSA", "RSA-2048")):
            in_token = create_key(
                f"pkcs11:token=bench;object={kty}", settings, base, kty=kty, rsa_bits=2048
            ).key
            in_memory = generate_private_key(kty, rsa_bits=2048)
            for where, key in (("SoftHSM2", in_token), ("memory", in_memory)):
                row = {
                    "key": label,
                    "where": where,
                    "raw_per_s": round(rate(raw_sign(key), args.seconds)),
                    f"raw_per_s_{args.threads}_threads": round(
                        rate(raw_sign(key), args.seconds, args.threads)
                    ),
                    "leaf_per_s": round(rate(leaf_sign(key), args.seconds)),
                }
                results.append(row)
                print(json.dumps(row), flush=True)
        close_all()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
