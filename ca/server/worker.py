"""One serving process: an Authority, the Starlette app, Hypercorn on the shared sockets."""

from __future__ import annotations

import asyncio
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import structlog
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import check_multiprocess_shutdown_event, wrap_app

from ca.api.app import create_app
from ca.authority.authority import Authority
from ca.config import CAConfig
from ca.home import Home
from ca.logs import configure_logging
from ca.runtime import open_runtime
from ca.server import hypercorn_patches
from ca.server.certificate import ServerCertificate
from ca.server.tls import server_context

log = structlog.get_logger("ledgerca.server")


@dataclass(frozen=True)
class ServeSettings:
    """Everything a worker process needs; handed over by the supervisor, never via env/argv."""

    home: Path
    address: str
    workers: int = 1
    body_limit: int = 64 * 1024
    password: bytes = field(default=b"", repr=False)


class LedgerCAHypercornConfig(Config):
    """Hypercorn config whose SSLContext is ours (version pinning, ciphers, client certs)."""

    def __init__(self, make_context: Callable[[], ssl.SSLContext]) -> None:
        super().__init__()
        self._make_context = make_context
        self.live_context: ssl.SSLContext | None = None

    @property
    def ssl_enabled(self) -> bool:
        return True

    def create_ssl_context(self) -> ssl.SSLContext:
        self.live_context = self._make_context()
        return self.live_context


def hypercorn_config(
    settings: ServeSettings, config: CAConfig, server_cert: ServerCertificate
) -> LedgerCAHypercornConfig:
    home = Home(settings.home)
    client_cas = home.certs_dir / "client_cas.pem"

    def make_context() -> ssl.SSLContext:
        return server_context(
            config.tls,
            cert_file=server_cert.cert_file,
            key_file=server_cert.key_file,
            client_ca_file=client_cas,
            password=settings.password,
        )

    hc = LedgerCAHypercornConfig(make_context)
    hc.bind = [settings.address]
    hc.workers = settings.workers
    hc.accesslog = None
    hc.errorlog = None
    # Limits against slow or oversized clients.
    hc.h11_max_incomplete_size = 16 * 1024
    hc.h2_max_header_list_size = 16 * 1024
    hc.read_timeout = 30
    hc.keep_alive_timeout = 30
    hc.ssl_handshake_timeout = 10
    hc.graceful_timeout = 10
    return hc


async def _renew_loop(server_cert: ServerCertificate, hc: LedgerCAHypercornConfig) -> None:
    """Renew (or pick up a sibling's renewal of) the server certificate, forever."""
    loaded = server_cert.current()
    while True:
        now = datetime.now(UTC)
        current = server_cert.current()
        wait = 30.0
        if current is not None:
            wait = max(1.0, min(60.0, (server_cert.renew_at(current) - now).total_seconds()))
        await asyncio.sleep(wait)
        try:
            await asyncio.to_thread(server_cert.ensure)
            current = server_cert.current()
            if current is not None and current != loaded and hc.live_context is not None:
                server_cert.load_into(hc.live_context)
                loaded = current
                log.info("server certificate loaded", serial=str(current.serial_number))
        except Exception as exc:  # keep serving on the old certificate and try again
            log.error("server certificate renewal failed", error=str(exc))


def run_worker(
    settings: ServeSettings,
    sockets: Sockets,
    shutdown_event: EventType | None = None,
    authority: Authority | None = None,
) -> None:
    """Entry point of a worker (a spawned process, or the supervisor itself with one worker)."""
    configure_logging(sys.stdout)
    hypercorn_patches.install()
    if authority is None:
        authority = Authority(open_runtime(Home(settings.home)), settings.password)
    config = authority.runtime.config
    server_cert = ServerCertificate(
        Home(settings.home),
        authority,
        config.dns_names,
        settings.password,
        authority.server_cert_lifetime,
    )
    hc = hypercorn_config(settings, config, server_cert)

    def on_startup() -> None:
        asyncio.get_running_loop().create_task(_renew_loop(server_cert, hc))

    app = create_app(authority, body_limit=settings.body_limit, on_startup=[on_startup])
    trigger: Callable[..., Awaitable[Any]] | None = None
    if shutdown_event is not None:
        trigger = partial(check_multiprocess_shutdown_event, shutdown_event, asyncio.sleep)
    try:
        asyncio.run(
            worker_serve(
                wrap_app(app, hc.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
                hc,
                sockets=sockets,
                shutdown_trigger=trigger,
            )
        )
    finally:
        authority.close()
