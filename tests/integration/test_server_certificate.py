"""The CA's own TLS certificate is renewed in-process, without dropping connections."""

from __future__ import annotations

import re
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from support.ca_server import CAHome, init_ca, start_ca
from support.cli import ledger_events
from support.waiting import wait_until


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
    """When renewal is due is decided on an injected clock in tests/ca/server; here real
    processes renew. With the minute of backdating, a 24 s certificate has less than a third
    of its lifetime left from the start: the first renewal check, a second after a worker
    starts, renews it."""
    ca = init_ca(tmp_path)
    _set_lifetime(ca, "24s")
    running = start_ca(ca, workers=workers)
    try:
        first = _served_serial(running.port, ca.root)
        context = ssl.create_default_context(cafile=str(ca.root))
        context.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection(("127.0.0.1", running.port), timeout=10)
        kept = context.wrap_socket(raw, server_hostname="localhost")
        assert b'{"status":"ok"}' in _get_health(kept)
        served = [first]

        def renewed() -> bool:
            # Keep the old connection busy so keep-alive does not close it.
            assert b'{"status":"ok"}' in _get_health(kept)
            served.append(_served_serial(running.port, ca.root))
            return served[-1] != first

        wait_until(renewed, 45, "the server serves a renewed certificate")
        # The connection opened under the old certificate still answers.
        assert b'{"status":"ok"}' in _get_health(kept)
        kept.close()
    finally:
        running.stop()

    serials = {
        int(event.data["serial"])
        for event in ledger_events(ca.home)
        if event.type == "x509.issued" and event.data["provisioner"] is None
    }
    # Both certificates were recorded; with two workers still exactly one renewal per cycle.
    assert {first, served[-1]} <= serials
