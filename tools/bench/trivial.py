"""The ceiling: a trivial Starlette app on Hypercorn with ledgerca's own TLS context.

python tools/bench/trivial.py HOME HOST:PORT WORKERS PASSWORD_FILE
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from hypercorn.asyncio.run import worker_serve
from hypercorn.utils import wrap_app
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from ca.config import load_config
from ca.home import Home
from ca.server.tls import server_context
from ca.server.worker import LedgerCAHypercornConfig


async def ok(_request: object) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def main() -> None:
    home, address, workers, password_file = (
        Home(Path(sys.argv[1])),
        sys.argv[2],
        int(sys.argv[3]),
        Path(sys.argv[4]),
    )
    password = password_file.read_bytes().strip()
    config = load_config(home)

    def make_context():  # type: ignore[no-untyped-def]
        return server_context(
            config.tls,
            cert_file=home.certs_dir / "server_tls.crt",
            key_file=home.secrets_dir / "server_tls_key",
            client_ca_file=home.certs_dir / "client_cas.pem",
            password=password,
        )

    hc = LedgerCAHypercornConfig(make_context)
    hc.bind = [address]
    hc.workers = workers
    hc.accesslog = None
    sockets = hc.create_sockets()
    app = Starlette(routes=[Route("/", ok)])
    if workers == 1:
        asyncio.run(worker_serve(wrap_app(app, hc.wsgi_max_body_size, "asgi"), hc, sockets=sockets))  # type: ignore[arg-type]
        return
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(
            target=lambda: asyncio.run(
                worker_serve(wrap_app(app, hc.wsgi_max_body_size, "asgi"), hc, sockets=sockets)  # type: ignore[arg-type]
            )
        )
        for _ in range(workers)
    ]
    for p in procs:
        p.start()

    def stop(_signum: int, _frame: object) -> None:
        # The benchmark stops this parent with SIGTERM: take the forked workers along, or
        # they outlive the run and keep a port and two cores' worth of processes.
        for p in procs:
            p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    for p in procs:
        p.join()


if __name__ == "__main__":
    main()
