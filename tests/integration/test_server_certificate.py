"""The CA's own TLS certificate is renewed in-process, without dropping connections."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509
from support.ca_server import CAHome, init_ca, ledgerca, start_ca


def _set_lifetime(ca: CAHome, lifetime: str) -> None:
    config = ca.home / "config" / "ca.toml"
    text, count = re.subn(
        r'^tls_cert_lifetime = ".*"$',
        f'tls_cert_lifetime = "{lifetime}"',
        config.read_text(),
        flags=re.MULTILINE,
    )
    assert count == 1
    config.write_text(text)


def _served_serial(port: int, root: Path) -> int:
    context = ssl.create_default_context(cafile=str(root))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _get_health(tls: ssl.SSLSocket) -> bytes:
    tls.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}\n"):
        chunk = tls.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_server_certificate_is_renewed_in_process_and_open_connections_survive(
    tmp_path: Path, workers: int
) -> None:
    ca = init_ca(tmp_path)
    _set_lifetime(ca, "24s")  # renewed when 8 s are left, i.e. ~16 s after issuance
    running = start_ca(ca, workers=workers)
    try:
        first = _served_serial(running.port, ca.root)
        context = ssl.create_default_context(cafile=str(ca.root))
        context.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection(("127.0.0.1", running.port), timeout=10)
        kept = context.wrap_socket(raw, server_hostname="localhost")
        assert b'{"status":"ok"}' in _get_health(kept)

        deadline = time.monotonic() + 45
        renewed = first
        while renewed == first and time.monotonic() < deadline:
            time.sleep(2)
            # Keep the old connection busy so keep-alive does not close it.
            assert b'{"status":"ok"}' in _get_health(kept)
            renewed = _served_serial(running.port, ca.root)
        assert renewed != first, "the server kept serving its first certificate"
        # The connection opened under the old certificate still answers.
        assert b'{"status":"ok"}' in _get_health(kept)
        kept.close()
    finally:
        running.stop()

    issued = [
        json.loads(line)["data"]
        for line in ledgerca(
            "ledger", "log", "--json", "--type", "x509.issued", home=ca.home
        ).stdout.splitlines()
    ]
    serials = {int(e["serial"]) for e in issued if e["provisioner"] is None}
    # Both certificates were recorded; with two workers still exactly one renewal per cycle.
    assert {first, renewed} <= serials
