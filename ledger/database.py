"""Engines for the two supported backends, with the settings the ledger relies on.

SQLite: WAL, `synchronous=FULL` (a committed event survives power loss), a busy timeout,
and pysqlite's own transaction handling switched off so that SQLAlchemy's `begin` emits
`BEGIN IMMEDIATE` for writers — a plain `BEGIN` lets two processes both read the head and
then fail with "database is locked" at the first write. A new SQLite file is created 0600
before SQLite opens it, wherever it is: SQLite gives its `-wal` and `-shm` files the mode of
the database file, and the ledger holds encrypted keys and every admin's subject.

Both backends: `hide_parameters`, so an error's text (and any log line or traceback that
quotes it) names the statement but never the values bound to it, which include encrypted
provisioner keys and event payloads. PostgreSQL quotes row values itself, in an error's
DETAIL ("Key (kid)=(…) already exists", "Failing row contains (…)"): its error texts keep
the primary message only; the detail stays readable in the driver error's `diag`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ledger.errors import UnsupportedDatabase

WRITE = {"ledger_write": True}
"""Execution options for a connection that will append (SQLite: `BEGIN IMMEDIATE`)."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class _FileLock:
    """An exclusive lock shared by threads and processes: a thread lock, then flock(2)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *_: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


_write_locks: dict[str, _FileLock] = {}
_write_locks_guard = threading.Lock()


CONNECT_TIMEOUT = 5
"""Seconds to wait for a PostgreSQL connection (connect, or a free pooled one)."""


def write_lock(engine: Engine) -> contextlib.AbstractContextManager[None]:
    """Serialise SQLite writers before `BEGIN IMMEDIATE`.

    SQLite's own busy handler makes a blocked writer sleep and retry (1, 2, 5, 10… ms);
    with several processes appending, those sleeps dominate. A blocking flock wakes the next
    writer the moment the lock is released. PostgreSQL needs nothing: its row lock queues.
    """
    database = engine.url.database
    if not is_sqlite(engine) or not database or database == ":memory:":
        return contextlib.nullcontext()
    path = os.path.abspath(database) + "-writelock"
    with _write_locks_guard:
        lock = _write_locks.get(path)
        if lock is None:
            lock = _write_locks[path] = _FileLock(path)
    return lock


def create_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for `url` (`sqlite:///path` or `postgresql+psycopg://...`)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UnsupportedDatabase(f"not a database URL: {url!r}") from exc
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        _create_private_file(parsed.database, uri=parsed.query.get("uri") == "true")
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", 60)
        # Keep connections open: each new one costs a connect and four PRAGMAs, and a
        # server runs dozens of request threads.
        kwargs.setdefault("pool_size", 64)
        kwargs.setdefault("max_overflow", 64)
        engine = sa_create_engine(url, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # Fail fast when the server is unreachable: a request should get a 503 in seconds,
        # not hang for TCP's minutes; stale pooled connections are replaced on checkout.
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT)
        kwargs["connect_args"] = connect_args
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_timeout", CONNECT_TIMEOUT)
        kwargs.setdefault("pool_size", 16)
        kwargs.setdefault("max_overflow", 32)
        engine = sa_create_engine(url, **kwargs)
        _configure_postgresql(engine)
        return engine
    raise UnsupportedDatabase(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite:///PATH or"
        " postgresql+psycopg://USER@HOST/DB"
    )


def _create_private_file(database: str | None, *, uri: bool) -> None:
    """Create a missing SQLite database file empty and 0600 (SQLite reads an empty file as a
    new database). os.open's mode is filtered by the umask, which can only narrow it."""
    if not database or database == ":memory:" or uri or database.startswith("file:"):
        return
    try:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # e.g. a missing directory: SQLite reports it when it opens the file
    os.close(fd)


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be reached (down, restarting, pool exhausted),
    as opposed to a refused statement: the caller may retry later and nothing was written."""
    if isinstance(exc, (PoolTimeout, PendingRollbackError)):
        # PendingRollbackError: the connection died inside a transaction; its pool
        # replaces it once the transaction is rolled back.
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # SQLite reports a busy or locked file as OperationalError too: also transient.
    return isinstance(exc, (OperationalError, InterfaceError))


def is_unique_violation(exc: IntegrityError) -> bool:
    """True for a UNIQUE/PRIMARY KEY violation; False for other refusals (e.g. a trigger)."""
    original = exc.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == "23505")
    name = getattr(original, "sqlite_errorname", "")
    return name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "handle_error")
    def _without_detail(context: ExceptionContext) -> None:
        original = context.original_exception
        primary = getattr(getattr(original, "diag", None), "message_primary", None)
        if not primary:
            return
        original.args = (primary,)
        wrapped = context.sqlalchemy_exception
        if wrapped is not None:  # its text was made from the driver's before this hook
            wrapped.args = (f"({type(original).__module__}.{type(original).__name__}) {primary}",)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("ledger_write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
