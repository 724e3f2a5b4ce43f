"""`ledgerca projections …`: rebuild read models from the ledger, and show their lag."""

from __future__ import annotations

import click

from ca.cli.ledger import progress_bar
from ca.home import Home
from ca.runtime import open_runtime


@click.group(name="projections")
def projections_group() -> None:
    """Read models derived from the ledger."""


@projections_group.command()
@click.argument("name", required=False)
@click.pass_obj
def rebuild(home: Home, name: str | None) -> None:
    """Replay the ledger from zero into fresh tables and swap them in (all, or NAME)."""
    runtime = open_runtime(home)
    try:
        targets = [runtime.projections.get(name)] if name else list(runtime.projections.all)
        for projection in targets:
            with progress_bar(f"rebuilding {projection.name}") as progress:
                replayed = runtime.projections.rebuild(runtime.store, projection, progress=progress)
            click.echo(f"{projection.name}: rebuilt from {replayed} events")
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0])) from None
    finally:
        runtime.close()


@projections_group.command()
@click.pass_obj
def status(home: Home) -> None:
    """Each projection's position against the ledger head."""
    runtime = open_runtime(home)
    try:
        rows = runtime.projections.status(runtime.store)
    finally:
        runtime.close()
    click.echo(f"{'projection':<16} {'mode':<9} {'position':>10} {'head':>10} {'lag':>6}")
    for row in rows:
        click.echo(
            f"{row.name:<16} {row.mode.value:<9} {row.position:>10} {row.head:>10} {row.lag:>6}"
        )
