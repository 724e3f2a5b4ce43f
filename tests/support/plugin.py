"""The test harness as a pytest plugin (`pytest_plugins` in tests/conftest.py).

Databases: ``db_url`` runs a test once against SQLite and once against PostgreSQL (marked
``postgres``). The PostgreSQL server is a throwaway cluster started once per session (per
xdist worker), only when a test asks for it (see ``support.postgres``); each test gets a
database of its own. ``engine`` and ``store`` are that database, migrated.

CAs: ``ca_database`` (and ``module_ca_database``) is what ``support.ca_server.init_ca``
takes as ``database=`` for each backend; the pristine CA homes that ``init_ca`` copies
(``support.pristine``) are removed when the session ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

import migrations
from ledger import EventStore, create_engine
from projections.runner import Projections
from support import pristine
from support.postgres import PostgresServer, find_pg_bin
from support.softhsm import SoftHSMToken, softhsm_token

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""Parameters of a fixture that runs once per backend."""


def pytest_sessionfinish(session: pytest.Session) -> None:
    pristine.discard()


# -- databases -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session."""
    if find_pg_bin() is None:
        pytest.skip(
            "PostgreSQL server binaries not installed (apt-get install postgresql); "
            ".ci/run installs them"
        )
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def module_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """`postgres_url` for module-scoped fixtures."""
    name = f"m_{uuid.uuid4().hex[:12]}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a SQLite database file in the test's temp dir (not yet created)."""
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """SQLAlchemy URL of a fresh database, once per backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on `db_url`, migrated to the current schema."""
    engine = create_engine(db_url)
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> EventStore:
    """The event store on `engine`, projections applied inline."""
    return EventStore(engine, inline=Projections().inline_applier())


# -- CAs -----------------------------------------------------------------------------------


def _ca_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None  # the CA's embedded default
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"ca_{uuid.uuid4().hex[:12]}"
    yield server.create_database(name)
    server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def ca_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """`init_ca(database=…)` for each backend: None (embedded SQLite) or a fresh PostgreSQL."""
    yield from _ca_database(request)


@pytest.fixture(params=BACKENDS, scope="module")
def module_ca_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """`ca_database` for module-scoped fixtures."""
    yield from _ca_database(request)


# -- tokens ----------------------------------------------------------------------------------


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHSMToken]:
    """A fresh SoftHSM2 token in the test's temp dir (SOFTHSM2_CONF points at it)."""
    yield from softhsm_token(tmp_path, monkeypatch)
