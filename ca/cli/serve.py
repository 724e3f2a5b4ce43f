"""`ledgerca serve`."""

from __future__ import annotations

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


@click.command()
@click.option("--address", help="Listen on HOST:PORT instead of the configured address.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
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
