"""`ledgerca serve`: check everything, bind once, then run one or N worker processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from multiprocessing import get_context
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ca.authority.authority import Authority
from ca.home import Home
from ca.keys.files import write_public_file
from ca.passwords import obtain_password
from ca.runtime import Runtime, open_runtime
from ca.server.certificate import ServerCertificate
from ca.server.worker import ServeSettings, hypercorn_config, normalise_address, run_worker
from projections.authority_keys import authority_keys

Say = Callable[[str], None]


def client_ca_bundle(runtime: Runtime) -> bytes:
    """Roots and every intermediate the ledger ever activated, retired ones included:
    their unexpired leaves may still renew over mTLS (into the current intermediate)."""
    with runtime.engine.connect() as connection:
        pems = connection.execute(
            select(authority_keys.c.certificate)
            .where(authority_keys.c.role.in_(("x509_root", "x509_intermediate")))
            .order_by(authority_keys.c.activated_position)
        ).scalars()
        return b"".join(pem.encode() for pem in pems if pem)


def serve(
    home: Home,
    *,
    address: str | None,
    workers: int,
    password_file: Path | None,
    body_limit: int,
    say: Say,
) -> int:
    # A SIGHUP before the workers handle it (a reload) must not end the server.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    runtime = open_runtime(home)
    config = runtime.config
    if password_file is None and config.password_file:
        password_file = home.resolve(config.password_file)
    password, _ = obtain_password(password_file, what="intermediate key", new=False)
    authority = Authority(runtime, password)
    settings = ServeSettings(
        home=home.path,
        address=normalise_address(address or config.address),
        workers=max(1, workers),
        body_limit=body_limit,
        password=password,
        config=config,
        started_at=authority.started_at,
    )
    server_cert = ServerCertificate(
        home,
        authority,
        config.dns_names,
        password,
        authority.server_cert_lifetime,
        clock=authority.clock,
    )
    server_cert.ensure()
    snapshot = authority.snapshot()
    write_public_file(home.certs_dir / "client_cas.pem", client_ca_bundle(runtime))

    sockets = hypercorn_config(settings, config, server_cert).create_sockets()
    bound = sockets.secure_sockets[0].getsockname()
    say(f"X.509 Root Fingerprint: {snapshot.root_fingerprint}")
    say(f"Serving HTTPS on https://{bound[0]}:{bound[1]} with {settings.workers} worker(s)")

    if settings.workers == 1:
        run_worker(settings, sockets, authority=authority)
        return 0
    authority.close()
    return _supervise(settings, sockets)


def _supervise(settings: ServeSettings, sockets: Any) -> int:
    ctx = get_context("spawn")
    shutdown = ctx.Event()
    processes = [
        ctx.Process(
            target=run_worker,
            kwargs={"settings": settings, "sockets": sockets, "shutdown_event": shutdown},
        )
        for _ in range(settings.workers)
    ]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for process in processes:
        process.start()

    def stop(*_: object) -> None:
        shutdown.set()

    def reload(*_: object) -> None:
        for process in processes:  # each worker reloads its own live TLS context
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGHUP)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, reload)
    wait([p.sentinel for p in processes])
    # One worker ended: a clean shutdown ends them all, a crash takes the rest down too.
    shutdown.set()
    for process in processes:
        process.join(timeout=15)
        if process.is_alive():
            process.terminate()
    for sock in sockets.secure_sockets:
        sock.close()
    return max((p.exitcode or 0) for p in processes)
