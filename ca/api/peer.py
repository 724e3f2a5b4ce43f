"""The TLS peer certificate, bridged from Hypercorn into the ASGI scope.

Hypercorn 0.18 does not implement the ASGI `tls` extension (hypercorn issue #62), so the
app cannot see a client certificate. The bridge has two halves:

* `remember(ssl_object)` runs once per connection, in the connection's own task (called
  by the patched `TCPServer.run`, see `ca.server.hypercorn_patches`). It stores what the
  handshake proved in a `ContextVar`. Every request task of that connection, HTTP/1.1 or
  HTTP/2, is created from that task and so inherits a copy of its context; connections
  never see each other's value.
* `PeerCertificateMiddleware` copies it into `scope["extensions"]["tls"]` in the shape the
  ASGI TLS extension defines (`client_cert_chain`: PEM strings, leaf first).

Python 3.11 exposes only the leaf (`getpeercert(binary_form=True)`); the chain needs 3.13.
The handshake already verified that leaf against `certs/client_cas.pem` (expiry included)
with `CERT_OPTIONAL`; the TLS layer knows nothing of revocation, so endpoints must check.
"""

from __future__ import annotations

import ssl
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "PeerCertificateMiddleware",
    "PeerTLS",
    "client_certificate",
    "current",
    "describe",
    "remember",
]

# ASGI's `tls_version` is the TLS record-layer number.
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


@dataclass(frozen=True)
class PeerTLS:
    """What one TLS connection's handshake established about the client."""

    certificate_pem: str | None
    certificate_name: str | None
    tls_version: int | None

    def extension(self) -> dict[str, Any]:
        """The ASGI `tls` scope extension for requests on this connection."""
        return {
            "server_cert": None,
            "client_cert_chain": [self.certificate_pem] if self.certificate_pem else [],
            "client_cert_name": self.certificate_name,
            "client_cert_error": None,
            "tls_version": self.tls_version,
            "cipher_suite": None,
        }


_peer: ContextVar[PeerTLS | None] = ContextVar("ledgerca_tls_peer", default=None)


def describe(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> PeerTLS:
    """Read the peer's leaf certificate (if it sent one) from a finished handshake."""
    der = ssl_object.getpeercert(binary_form=True)
    pem = name = None
    if der:
        certificate = x509.load_der_x509_certificate(der)
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        name = certificate.subject.rfc4514_string()
    return PeerTLS(pem, name, _TLS_VERSIONS.get(ssl_object.version() or ""))


def remember(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> None:
    """Record the current connection's peer; call once per connection, in its task."""
    _peer.set(describe(ssl_object) if ssl_object is not None else None)


def current() -> PeerTLS | None:
    """The peer of the connection whose task (or request task) is running, if TLS."""
    return _peer.get()


class PeerCertificateMiddleware:
    """Puts the client's certificate (if any) into `scope["extensions"]["tls"]`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = _peer.get()
        if peer is not None and scope["type"] in ("http", "websocket"):
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = peer.extension()
            scope = {**scope, "extensions": extensions}
        await self.app(scope, receive, send)


def client_certificate(scope: Scope) -> x509.Certificate | None:
    """The client's leaf certificate from the ASGI `tls` extension, or None."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    return x509.load_pem_x509_certificate(str(chain[0]).encode("ascii"))
