"""The migrations build exactly the tables the code queries, and refuse a stale schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, select

import migrations
import projections.runner  # noqa: F401  (registers every projection table on the metadata)
from ledger import GENESIS_HASH, SchemaError, create_engine
from ledger.schema import ledger_head
from ledger.schema import metadata as ledger_metadata
from projections.base import metadata as projections_metadata


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def combined_metadata() -> MetaData:
    combined = MetaData()
    for source in (ledger_metadata, projections_metadata):
        for table in source.tables.values():
            table.to_metadata(combined)
    return combined


def test_migrations_build_exactly_the_tables_the_code_defines(engine: Engine) -> None:
    migrations.upgrade(engine)
    metadata = combined_metadata()
    assert {"events", "ledger_head", "certificates", "activity"} <= set(metadata.tables)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences: list[Any] = compare_metadata(context, metadata)
    assert differences == []


def test_an_empty_database_is_refused_with_the_command_that_creates_a_ca(engine: Engine) -> None:
    with pytest.raises(SchemaError, match="ledgerca init"):
        migrations.require_current(engine)


def test_an_old_schema_is_refused_with_the_upgrade_command_and_both_revisions(
    engine: Engine,
) -> None:
    migrations.upgrade(engine, "0001")
    assert migrations.current_revision(engine) == "0001"
    with pytest.raises(SchemaError) as refused:
        migrations.require_current(engine)
    message = str(refused.value)
    assert "ledgerca db upgrade" in message
    assert "0001" in message and migrations.head_revision() in message


def test_upgrade_reaches_the_head_revision_and_a_second_upgrade_changes_nothing(
    engine: Engine,
) -> None:
    migrations.upgrade(engine)
    migrations.require_current(engine)
    assert migrations.current_revision(engine) == migrations.head_revision()

    migrations.upgrade(engine)

    migrations.require_current(engine)
    assert migrations.current_revision(engine) == migrations.head_revision()
    with engine.connect() as connection:
        assert len(connection.execute(select(ledger_head)).all()) == 1


def test_a_new_ledger_has_its_head_at_position_zero_and_the_genesis_hash(
    engine: Engine,
) -> None:
    migrations.upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(ledger_head)).all()
    assert [(row.id, row.position, row.hash, row.recorded_at) for row in rows] == [
        (1, 0, GENESIS_HASH, None)
    ]


@pytest.mark.parametrize(
    ("url", "triggers"),
    [
        (
            "sqlite:///x.sqlite",
            ["CREATE TRIGGER events_reject_update", "CREATE TRIGGER events_reject_delete"],
        ),
        (
            "postgresql+psycopg://u@localhost/db",
            [
                "CREATE FUNCTION ledgerca_events_append_only()",
                "CREATE TRIGGER events_reject_update_delete",
                "CREATE TRIGGER events_reject_truncate",
            ],
        ),
    ],
    ids=["sqlite", "postgres"],
)
def test_upgrade_sql_prints_the_schema_and_its_append_only_triggers_without_a_server(
    url: str, triggers: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    migrations.upgrade_sql(url)
    sql = capsys.readouterr().out
    assert "CREATE TABLE events" in sql
    assert "CREATE TABLE certificates" in sql
    for trigger in triggers:
        assert trigger in sql
    assert GENESIS_HASH in sql, "the head row's insert is part of the script"
