"""`ledgerca db …`: schema migrations."""

from __future__ import annotations

import click

import migrations
from ca.config import load_config
from ca.home import Home
from ledger import create_engine


@click.group()
def db() -> None:
    """The database schema."""


def _url(home: Home, database: str | None) -> str:
    return database or home.database_url(load_config(home).database)


@db.command()
@click.option("--db", "database", help="Database URL (default: the one in the CA's config).")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@click.pass_obj
def upgrade(home: Home, database: str | None, sql: bool) -> None:
    """Bring the schema to the version this ledgerca needs."""
    url = _url(home, database)
    if sql:
        migrations.upgrade_sql(url)
        return
    engine = create_engine(url)
    try:
        before = migrations.current_revision(engine)
        migrations.upgrade(engine)
        after = migrations.current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"schema already at {after}")
    else:
        click.echo(f"schema upgraded from {before or 'empty'} to {after}")


@db.command()
@click.option("--db", "database", help="Database URL (default: the one in the CA's config).")
@click.pass_obj
def status(home: Home, database: str | None) -> None:
    """Show the schema revision and whether it is current."""
    engine = create_engine(_url(home, database))
    try:
        current = migrations.current_revision(engine)
    finally:
        engine.dispose()
    head = migrations.head_revision()
    state = "current" if current == head else "needs `ledgerca db upgrade`"
    click.echo(f"schema {current or 'empty'} (this ledgerca: {head}): {state}")
