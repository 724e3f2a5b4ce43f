"""The throwaway PostgreSQL fixtures work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from support.postgres import PostgresServer, PostgresServerError, find_pg_bin

needs_pg_binaries = pytest.mark.skipif(
    find_pg_bin() is None,
    reason="PostgreSQL server binaries not installed (apt-get install postgresql); "
    ".ci/run installs them",
)


@pytest.mark.postgres
def test_fresh_database_accepts_sqlalchemy_connection(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_two_postgres_urls_are_separate_databases(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    other_url = postgres_server.create_database("t_other_for_isolation")
    assert other_url != postgres_url
    first, second = create_engine(postgres_url), create_engine(other_url)
    try:
        with first.begin() as conn:
            conn.execute(text("create table only_here (id integer primary key)"))
        assert inspect(first).has_table("only_here")
        assert not inspect(second).has_table("only_here")
    finally:
        first.dispose()
        second.dispose()
        postgres_server.drop_database("t_other_for_isolation")


@pytest.mark.postgres
def test_server_is_real_postgresql(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("select version()")).scalar_one()
            fsync = conn.execute(text("show fsync")).scalar_one()
            listen = conn.execute(text("show listen_addresses")).scalar_one()
    finally:
        engine.dispose()
    assert "PostgreSQL" in version
    assert fsync == "on"
    assert listen == "127.0.0.1"


def test_db_url_fixture_gives_a_working_database(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
@needs_pg_binaries
def test_stop_is_idempotent_and_removes_base_dir() -> None:
    server = PostgresServer.start()
    base = server.base_dir
    assert (base / "data" / "postmaster.pid").exists()
    server.stop()
    server.stop()
    assert not base.exists()


@pytest.mark.postgres
@needs_pg_binaries
def test_base_dir_below_a_private_dir_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root hands the data directory to the postgres user")
    tmp_path.chmod(0o700)
    with pytest.raises(PostgresServerError, match="not traversable"):
        PostgresServer.start(tmp_path / "pg")
    assert not (tmp_path / "pg").exists()
