"""One serving process: an Authority, the Starlette app, Hypercorn on the shared sockets,
and its background jobs (`ca.server.wiring`)."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import structlog
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app
from starlette.types import ASGIApp, Receive, Scope, Send

from ca.api import crl as crl_api
from ca.api.app import create_app
from ca.api.errors import error_response
from ca.authority.authority import Authority
from ca.config import CAConfig, load_config, log_level
from ca.errors import CAError, ConfigError
from ca.home import Home
from ca.logs import configure_logging
from ca.runtime import open_runtime
from ca.server import hypercorn_patches
from ca.server.background import periodic
from ca.server.certificate import ServerCertificate
from ca.server.tls import apply_protocol_settings, server_context
from ca.server.wiring import background_jobs
from ledger.listener import HeadListener

log = structlog.get_logger("ledgerca.server")


@dataclass(frozen=True)
class ServeSettings:
    """Everything a worker process needs; handed over by the supervisor, never via env/argv."""

    home: Path
    address: str
    workers: int = 1
    body_limit: int = 64 * 1024
    password: bytes = field(default=b"", repr=False)
    started_at: datetime | None = None
    """When `serve` started: tokens issued before it are refused, by every worker alike."""
    config: CAConfig | None = None
    """The config the supervisor checked at start: workers never re-read a file that may
    have been edited since (only a SIGHUP reload does, and refuses a broken one)."""


def normalise_address(address: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise ConfigError(f"listen address {address!r} is not HOST:PORT")
    return f"{host or '0.0.0.0'}:{port}"  # noqa: S104 - ":9443" means every interface, as in step-ca


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
    if config.crl.enabled and config.crl.insecure_address:
        hc.insecure_bind = [normalise_address(config.crl.insecure_address)]
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


def reload_local_config(
    settings: ServeSettings, hc: LedgerCAHypercornConfig, server_cert: ServerCertificate
) -> None:
    """SIGHUP: re-read `config/ca.toml` and apply what can change under a running listener —
    TLS versions and suites, the server certificate files, the client CA bundle, the log
    level — to the live context, so in-flight requests and open connections are untouched
    and the next handshake sees the new settings. A bad file changes nothing."""
    home = Home(settings.home)
    try:
        fresh = load_config(home)
        level = log_level(fresh.log_level)
        if hc.live_context is not None:
            apply_protocol_settings(hc.live_context, fresh.tls)
            server_cert.load_into(hc.live_context)
            hc.live_context.load_verify_locations(cafile=str(home.certs_dir / "client_cas.pem"))
        configure_logging(sys.stdout, level=level)
    except (CAError, OSError, ssl.SSLError) as exc:
        log.error("reload refused: the running configuration stays", error=str(exc))
        return
    if normalise_address(fresh.address) != settings.address:
        log.warning("the listen address changes only on restart", configured=fresh.address)
    log.warning("configuration reloaded", log_level=fresh.log_level,
                tls_min=fresh.tls.min_version, tls_max=fresh.tls.max_version)  # fmt: skip


class PlainHTTPOnlyCRL:
    """On the plain-HTTP listener (`crl.insecure_address`) only the CRL is served: CRL
    fetchers often cannot do TLS, and nothing else may ever go over plain HTTP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("scheme") == "http"
            and (scope["path"] not in crl_api.PATHS or scope["method"] not in ("GET", "HEAD"))
        ):
            await error_response(404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _until_shutdown(shutdown_event: EventType, supervisor: int) -> None:
    """Return when the supervisor asks for a shutdown, or when it is gone (killed with
    SIGKILL, say): a worker must never go on serving for an instance that no longer exists."""
    while not shutdown_event.is_set():
        if os.getppid() != supervisor:
            log.warning("the supervisor is gone: shutting down")
            return
        await asyncio.sleep(0.2)


def run_worker(
    settings: ServeSettings,
    sockets: Sockets,
    shutdown_event: EventType | None = None,
    authority: Authority | None = None,
) -> None:
    """Entry point of a worker (a spawned process, or the supervisor itself with one worker)."""
    # Until the event loop handles SIGHUP (a reload), it must not end the process.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    configure_logging(sys.stdout)
    hypercorn_patches.install()
    if authority is None:
        runtime = open_runtime(Home(settings.home), config=settings.config)
        authority = Authority(runtime, settings.password, started_at=settings.started_at)
    config = authority.runtime.config
    configure_logging(sys.stdout, level=log_level(config.log_level))
    server_cert = ServerCertificate(
        Home(settings.home),
        authority,
        config.dns_names,
        settings.password,
        authority.server_cert_lifetime,
        clock=authority.clock,
    )
    hc = hypercorn_config(settings, config, server_cert)
    # PostgreSQL: wake the jobs that follow the ledger as soon as any instance appends
    # (LISTEN/NOTIFY).
    listener = HeadListener(authority.runtime.engine)
    # The loop keeps only weak references to tasks: hold them here for the worker's life.
    tasks: set[asyncio.Task[None]] = set()

    def on_startup() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, reload_local_config, settings, hc, server_cert)
        log.info("worker ready", pid=os.getpid())

        def head_moved() -> asyncio.Event:
            event = asyncio.Event()

            def wake(_position: int) -> None:
                loop.call_soon_threadsafe(event.set)

            listener.subscribe(wake)
            return event

        jobs = background_jobs(
            authority, server_cert, lambda: hc.live_context, head_moved=head_moved
        )
        tasks.update(loop.create_task(periodic(job)) for job in jobs)
        listener.start()
        if config.crl.enabled and hc.insecure_bind:
            log.info("serving the CRL over plain HTTP", address=hc.insecure_bind[0])

    app = PlainHTTPOnlyCRL(
        create_app(authority, body_limit=settings.body_limit, on_startup=[on_startup])
    )
    trigger: Callable[..., Awaitable[Any]] | None = None
    if shutdown_event is not None:
        trigger = partial(_until_shutdown, shutdown_event, os.getppid())
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
        listener.close()
        authority.close()
