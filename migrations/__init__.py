"""Alembic migrations — the only place DDL lives — and the calls the CLI makes on them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from ledger import SchemaError

HERE = Path(__file__).resolve().parent


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest this code knows)."""
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def upgrade_sql(url: str, revision: str = "head") -> None:
    """Print the SQL of an upgrade instead of running it (for a DBA to review)."""
    config = _config()
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, revision, sql=True)


def require_current(engine: Engine) -> None:
    """Refuse to run on a database whose schema is not the one this code was built for."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise SchemaError(
            "the database has no ledgerca schema: run `ledgerca init` for a new CA or"
            " `ledgerca db upgrade` for an existing database"
        )
    raise SchemaError(
        f"the database schema is at revision {current} but this ledgerca needs {head}:"
        " run `ledgerca db upgrade`"
    )
