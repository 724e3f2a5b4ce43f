"""`ledgerca serve`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ca.config import DEFAULT_BODY_LIMIT
from ca.home import Home


def start(
    home: Home, *, address: str | None, workers: int, password_file: Path | None, body_limit: int
) -> None:
    from ca.server.supervisor import serve as run_server  # the server stack, only when serving

    code = run_server(
        home,
        address=address,
        workers=workers,
        password_file=password_file,
        body_limit=body_limit,
        say=lambda line: click.echo(line, err=True),
    )
    sys.exit(code)


def default_workers() -> int:
    """One worker per CPU this process may run on (1 to 64): issuance is CPU-bound, and a
    single worker leaves the other cores idle."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    return max(1, min(64, count))


@click.command()
@click.option("--address", help="Listen on HOST:PORT instead of the configured address.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=default_workers,
    show_default="one per CPU",
    help="Worker processes sharing the listening socket.",
)
@click.option(
    "--password-file",
    type=click.Path(path_type=Path),
    help="File holding the intermediate key's password (default: the config's).",
)
@click.option(
    "--max-body",
    type=click.IntRange(1024),
    default=DEFAULT_BODY_LIMIT,
    show_default=True,
    help="Largest request body accepted, in bytes.",
)
@click.pass_obj
def serve(
    home: Home, address: str | None, workers: int, password_file: Path | None, max_body: int
) -> None:
    """Serve the CA's HTTPS API."""
    start(home, address=address, workers=workers, password_file=password_file, body_limit=max_body)
