"""Statements of the hot paths, compiled once and run on the driver's cursor.

SQLAlchemy's `Connection.execute` costs tens of microseconds of Python per call (cache key,
execution context, events, result object) — more than SQLite takes to run a small insert,
and an issuance runs several statements. A `Prepared` statement is compiled once per dialect
and executed directly on the DBAPI connection underneath the same SQLAlchemy `Connection`,
inside its transaction. Driver errors are raised as SQLAlchemy's own exception classes (so
`IntegrityError`, `is_unique_violation` and `is_unavailable` work unchanged), and a lost
connection is invalidated as SQLAlchemy would.

Only for statements whose parameters the driver takes as they are (text and integers): no
type processing happens here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class Prepared:
    """A Core statement (or literal SQL) ready to run without SQLAlchemy's execution path."""

    def __init__(self, statement: ClauseElement | str) -> None:
        self.statement = statement
        self._compiled: dict[tuple[type[Dialect], str], _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        key = (type(dialect), dialect.paramstyle)
        compiled = self._compiled.get(key)
        if compiled is None:
            if isinstance(self.statement, str):
                compiled = _Compiled(self.statement, None, {})
            else:
                if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
                    # sqlite3 takes `:name` parameters from a mapping itself: no tuple to
                    # build per row.
                    dialect = type(dialect)(paramstyle="named")  # type: ignore[call-arg]
                result = cast(SQLCompiler, self.statement.compile(dialect=dialect))
                compiled = _Compiled(
                    result.string,
                    tuple(result.positiontup or ()) if result.positional else None,
                    # Values bound inside the statement (`where id == 1`, SQLite's OFFSET 0).
                    {k: v for k, v in result.params.items() if v is not None},
                )
            self._compiled[key] = compiled
        return compiled

    def execute(self, connection: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """Run once; returns the DBAPI cursor (fetchone/fetchall/rowcount)."""
        compiled = self._for(connection.dialect)
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            if params is None and not compiled.defaults:
                cursor.execute(compiled.sql)
            else:
                cursor.execute(compiled.sql, compiled.parameters(params or {}))
        except connection.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(connection, compiled.sql, exc, cursor) from exc
        return cursor

    def executemany(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row, in one driver call."""
        if len(rows) == 1:
            self.execute(connection, rows[0])
            return
        compiled = self._for(connection.dialect)
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        try:
            cursor.executemany(compiled.sql, [compiled.parameters(row) for row in rows])
        except connection.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(connection, compiled.sql, exc, cursor) from exc


class _Compiled(NamedTuple):
    sql: str
    names: tuple[str, ...] | None
    """Parameter order for positional paramstyles; None when the driver takes a mapping."""
    defaults: dict[str, Any]

    def parameters(self, params: Mapping[str, Any]) -> Any:
        merged = {**self.defaults, **params} if self.defaults else params
        if self.names is None:
            return merged
        return tuple(merged[name] for name in self.names)


def _wrapped(connection: Connection, sql: str, exc: Exception, cursor: Any) -> BaseException:
    dialect = connection.dialect
    raw = connection.connection.dbapi_connection
    lost = bool(dialect.is_disconnect(cast(Any, exc), raw, cursor))
    if lost:
        connection.invalidate(exc)
    return DBAPIError.instance(
        sql,
        None,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
