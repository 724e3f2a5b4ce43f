"""Engines the ledger creates: no bound values in error texts, private SQLite files."""

from __future__ import annotations

import logging
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from ledger import create_engine


@pytest.mark.parametrize("refusal", ["unique", "not null"])
def test_a_logged_database_error_carries_no_bound_values(
    engine: Engine, caplog: pytest.LogCaptureFixture, refusal: str
) -> None:
    """Neither SQLAlchemy's parameter list nor PostgreSQL's DETAIL ("Key (k)=(…) already
    exists", "Failing row contains (…)") reaches the error's text or its log line."""
    secret = f"encrypted-key-{uuid.uuid4().hex}"
    insert = text("INSERT INTO secret_test (k, v) VALUES (:k, :v)")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE secret_test (k TEXT PRIMARY KEY, v TEXT NOT NULL)"))
        connection.execute(insert, {"k": secret, "v": secret})
    # The same key again, or a new row (the secret its key) without its NOT NULL value.
    again = {"k": secret, "v": "v"} if refusal == "unique" else {"k": f"{secret}-2", "v": None}
    with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
        connection.execute(insert, again)
    logging.getLogger("ledgerca.test").error("append failed", exc_info=caught.value)
    logged = caplog.text
    assert "INSERT INTO secret_test" in logged  # the statement is still named
    assert secret not in logged
    assert secret not in str(caught.value)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_a_new_sqlite_database_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "anywhere" / "ledger.sqlite"
    path.parent.mkdir()
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (a TEXT)"))
        with engine.connect():
            for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
                assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
    finally:
        engine.dispose()


@pytest.mark.usefixtures("open_umask")
def test_an_existing_sqlite_database_keeps_its_mode(tmp_path: Path) -> None:
    """The operator's choice for a file that exists (a backup group's read, say) stands."""
    path = tmp_path / "ledger.sqlite"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
