"""The peer-certificate bridge: Hypercorn's TLS peer, seen by the app in the ASGI scope.

The middleware is tested on its own, then the whole bridge through a real Hypercorn (the
pinned version, with `ca.server.hypercorn_patches` installed) over real TLS: HTTP/1.1 and
HTTP/2, with and without a client certificate, and with two clients at once, each of which
must see its own certificate and never the other's.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypercorn.asyncio import serve
from starlette.types import Message, Receive, Scope, Send

from ca.api import peer
from ca.api.peer import PeerCertificateMiddleware, PeerTLS, client_certificate
from ca.server import hypercorn_patches
from ca.server.worker import LedgerCAHypercornConfig

NOW = datetime.now(UTC)


# -- a tiny PKI --------------------------------------------------------------------------


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    san: str | None = None,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(minutes=5))
        .not_valid_after(NOW + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pair(
    directory: Path, stem: str, certificate: x509.Certificate, key: Any
) -> tuple[Path, Path]:
    crt, key_file = directory / f"{stem}.crt", directory / f"{stem}.key"
    crt.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, key_file


@dataclass
class PKI:
    root: Path
    server: tuple[Path, Path]
    alice: tuple[Path, Path]
    bob: tuple[Path, Path]
    alice_cert: x509.Certificate
    bob_cert: x509.Certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    directory = tmp_path_factory.mktemp("pki")
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _certificate("Peer Test Root", root_key, None, ca=True)
    issuer = (root.subject, root_key)
    root_file = directory / "root.crt"
    root_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    pairs = {}
    certificates = {}
    for stem, san in (("server", "localhost"), ("alice", None), ("bob", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _certificate(stem, key, issuer, san=san)
        certificates[stem] = certificate
        pairs[stem] = _write_pair(directory, stem, certificate, key)
    return PKI(
        root_file, pairs["server"], pairs["alice"], pairs["bob"],
        certificates["alice"], certificates["bob"],
    )  # fmt: skip


# -- a real Hypercorn with the bridge ----------------------------------------------------


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what the scope says about TLS (after a short pause, so concurrent
    requests overlap)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await asyncio.sleep(0.05)
    tls = scope.get("extensions", {}).get("tls")
    body = json.dumps({"tls": tls, "http_version": scope["http_version"]}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json")],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


@dataclass
class Server:
    url: str
    root: Path


@pytest.fixture(scope="module")
def server(pki: PKI) -> Iterator[Server]:
    hypercorn_patches.install()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def make_context() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*pki.server)
        context.load_verify_locations(cafile=str(pki.root))
        context.verify_mode = ssl.CERT_OPTIONAL
        context.set_alpn_protocols(["h2", "http/1.1"])
        return context

    config = LedgerCAHypercornConfig(make_context)
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()
    ready = threading.Event()

    async def main() -> None:
        ready.set()
        await serve(PeerCertificateMiddleware(echo), config, shutdown_trigger=stopping.wait)  # type: ignore[arg-type]

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    ready.wait(10)
    url = f"https://localhost:{port}"
    for _ in range(100):
        try:
            with httpx.Client(verify=ssl.create_default_context(cafile=str(pki.root))) as http:
                http.get(url)
            break
        except httpx.HTTPError:
            threading.Event().wait(0.05)
    try:
        yield Server(url, pki.root)
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(15)
        loop.close()


def fetch(server: Server, cert: tuple[Path, Path] | None, *, http2: bool) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(server.root))
    if cert is not None:
        context.load_cert_chain(*cert)
    with httpx.Client(verify=context, http2=http2, http1=not http2) as http:
        response = http.get(server.url + "/")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body


# -- tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_client_certificate_reaches_the_asgi_tls_extension(
    server: Server, pki: PKI, http2: bool
) -> None:
    body = fetch(server, pki.alice, http2=http2)
    assert body["http_version"] == ("2" if http2 else "1.1")
    tls = body["tls"]
    assert set(tls) >= {"client_cert_chain", "client_cert_name", "tls_version"}
    (pem,) = tls["client_cert_chain"]
    assert x509.load_pem_x509_certificate(pem.encode()) == pki.alice_cert
    assert tls["client_cert_name"] == "CN=alice"
    assert tls["tls_version"] in (0x0303, 0x0304)


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_without_a_client_certificate_the_chain_is_empty(server: Server, http2: bool) -> None:
    tls = fetch(server, None, http2=http2)["tls"]
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_concurrent_connections_each_see_their_own_certificate(
    server: Server, pki: PKI, http2: bool
) -> None:
    clients = [pki.alice, pki.bob, None] * 8
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        bodies = list(pool.map(lambda c: fetch(server, c, http2=http2), clients))
    for cert, body in zip(clients, bodies, strict=True):
        expected = {pki.alice: ["CN=alice"], pki.bob: ["CN=bob"], None: []}[cert]
        chain = body["tls"]["client_cert_chain"]
        names = [x509.load_pem_x509_certificate(p.encode()).subject.rfc4514_string() for p in chain]
        assert names == expected


def test_many_requests_on_one_http2_connection_keep_the_certificate(
    server: Server, pki: PKI
) -> None:
    context = ssl.create_default_context(cafile=str(server.root))
    context.load_cert_chain(*pki.bob)
    with httpx.Client(verify=context, http2=True, http1=False) as http:
        for _ in range(5):
            body = http.get(server.url + "/").json()
            assert body["http_version"] == "2"
            assert body["tls"]["client_cert_name"] == "CN=bob"


def test_untrusted_client_certificate_aborts_the_handshake(server: Server, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    stranger = _write_pair(tmp_path, "stranger", _certificate("stranger", key, None), key)
    with pytest.raises(httpx.HTTPError):
        fetch(server, stranger, http2=False)


# -- the middleware alone ----------------------------------------------------------------


async def _scope_seen(scope: Scope) -> Scope:
    seen: dict[str, Scope] = {}

    async def app(inner: Scope, receive: Receive, send: Send) -> None:
        seen["scope"] = inner

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        return None

    await PeerCertificateMiddleware(app)(scope, receive, send)
    return seen["scope"]


def test_middleware_leaves_the_scope_alone_outside_tls() -> None:
    scope: Scope = {"type": "http", "extensions": {"other": {}}}
    seen = contextvars.Context().run(asyncio.run, _scope_seen(scope))
    assert seen == {"type": "http", "extensions": {"other": {}}}
    assert client_certificate(seen) is None


def test_middleware_adds_the_peer_without_mutating_the_callers_scope(pki: PKI) -> None:
    pem = pki.alice_cert.public_bytes(serialization.Encoding.PEM).decode()
    scope: Scope = {"type": "http", "extensions": {"other": {"x": 1}}}

    def run() -> Scope:
        peer._peer.set(PeerTLS(pem, "CN=alice", 0x0304))
        return asyncio.run(_scope_seen(scope))

    seen = contextvars.Context().run(run)
    assert scope == {"type": "http", "extensions": {"other": {"x": 1}}}
    assert seen["extensions"]["other"] == {"x": 1}
    assert seen["extensions"]["tls"]["client_cert_chain"] == [pem]
    assert client_certificate(seen) == pki.alice_cert
    assert peer.current() is None  # the value stayed in the context that set it


def test_the_patch_refuses_another_hypercorn_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hypercorn_patches, "_installed", False)
    monkeypatch.setattr(hypercorn_patches, "version", lambda name: "0.19.0")
    with pytest.raises(RuntimeError, match=r"patches Hypercorn 0\.18\.0 internals"):
        hypercorn_patches.install()
