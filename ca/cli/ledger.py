"""`ledgerca ledger …`: verify the chain and read the events."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from ca.config import load_config
from ca.home import Home
from ca.runtime import open_runtime
from ledger import IntegrityViolation, RecordedEvent, format_time, verify_chain
from ledger.verify import Progress as ProgressCallback

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """An RFC 3339 time (UTC if no offset), or a duration like `90m`/`1h30m`/`7d` ago."""
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a time (2026-11-27T03:12:00Z) nor a duration (90m, 24h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressCallback | None]:
    """A progress bar on a terminal; nothing when stderr is a pipe or a file."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@click.group(name="ledger")
def ledger_group() -> None:
    """The event ledger itself."""


@ledger_group.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def verify(home: Home, as_json: bool) -> None:
    """Recompute every hash; exit non-zero naming the first bad position."""
    runtime = open_runtime(home, check_schema=False)
    try:
        with progress_bar("verifying") as progress:
            result = verify_chain(runtime.engine, progress=progress)
    except IntegrityViolation as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "position": exc.position, "error": str(exc)}))
        else:
            click.echo(f"ledger verification FAILED at position {exc.position}: {exc}", err=True)
        sys.exit(1)
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps({"ok": True, "events": result.events, "head": result.head_hash}))
    else:
        click.echo(f"ledger verified: {result.events} events, head hash {result.head_hash}")


def _event_json(event: RecordedEvent) -> str:
    return json.dumps(
        {
            "position": event.position,
            "event_id": str(event.event_id),
            "stream": event.stream,
            "version": event.version,
            "type": event.type,
            "schema": event.schema,
            "recorded_at": format_time(event.recorded_at),
            "actor": event.actor,
            "data": event.data,
            "hash": event.hash,
        },
        sort_keys=True,
    )


def _actor_text(actor: object) -> str:
    if not isinstance(actor, dict) or not actor:
        return "-"
    return ",".join(f"{k}={v}" for k, v in sorted(actor.items()) if not isinstance(v, dict))


@ledger_group.command()
@click.option("--stream", help="Only this stream (e.g. x509/1234, authority).")
@click.option("--type", "types", multiple=True, help="Only this event type (repeatable).")
@click.option("--since", help="RFC 3339 time or a duration ago (90m, 24h, 7d).")
@click.option("--after", type=int, default=0, help="Only positions after this one.")
@click.option("--limit", type=int, help="At most this many events.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def log(
    home: Home,
    stream: str | None,
    types: tuple[str, ...],
    since: str | None,
    after: int,
    limit: int | None,
    as_json: bool,
) -> None:
    """List events in ledger order."""
    moment = parse_since(since) if since else None
    runtime = open_runtime(home, check_schema=False)
    try:
        events = runtime.store.read(
            after, limit=limit, stream=stream, types=list(types) or None, since=moment
        )
        for event in events:
            if as_json:
                click.echo(_event_json(event))
            else:
                click.echo(
                    f"{event.position:>8}  {format_time(event.recorded_at)}  {event.type:<24}"
                    f"  {event.stream:<48}  {_actor_text(event.actor)}"
                )
    finally:
        runtime.close()


@ledger_group.command(name="export")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("--since", "after", type=int, default=0, help="Only positions after this one.")
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="File (default stdout)."
)
@click.pass_obj
def export_command(home: Home, fmt: str, after: int, out: Path | None) -> None:
    """Write every event (hashes included) as JSON lines: a backup, or a move to another DB."""
    from ledger.transfer import write_export

    runtime = open_runtime(home, check_schema=False)
    try:
        if out is None:
            write_export(runtime.engine, sys.stdout, after=after)
            return
        with out.open("w") as handle:
            written = write_export(runtime.engine, handle, after=after)
    finally:
        runtime.close()
    click.echo(f"{written} events written to {out}", err=True)


@ledger_group.command(name="import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--db", "database", help="Target database URL (default: the CA's; must be empty).")
@click.pass_obj
def import_command(home: Home, source: Path, database: str | None) -> None:
    """Load an export into an empty database, rebuild every projection, and verify."""
    import migrations
    from ledger import EventStore, create_engine
    from ledger.transfer import import_lines
    from projections.runner import Projections

    url = database or home.database_url(load_config(home).database)
    engine = create_engine(url)
    try:
        migrations.upgrade(engine)
        with source.open() as counting:
            total = sum(1 for line in counting if line.strip())
        with source.open() as handle, progress_bar("importing") as progress:
            count = import_lines(
                engine, handle, progress=(lambda n: progress(n, total)) if progress else None
            )
        projections = Projections()
        store = EventStore(engine, inline=projections.inline_applier())
        for projection in projections.all:
            projections.rebuild(store, projection)
        verified = verify_chain(engine)
    finally:
        engine.dispose()
    click.echo(
        f"imported {count} events; projections rebuilt; ledger verified ({verified.events} events)"
    )
