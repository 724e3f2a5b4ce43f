"""Pristine CA homes: one real `ledgerca init` per CA name and backend, copied for every use.

Initialising a CA costs a process start, key generation and a 600,000-iteration PBES2
encryption of the provisioner key; most tests need *a* freshly initialised CA, not one with
keys no other test has. `clone` copies a pristine home (file modes kept) and gives it its
own listen address; on PostgreSQL the ledger is copied with `CREATE DATABASE … TEMPLATE`.
Each copy is a CA of its own from then on: nothing a test does reaches the pristine one or
another test's copy. Two copies of one pristine home do share their keys, so a test that
needs two unrelated CAs gives them different names (each name has its own pristine home),
and a test about keys being generated runs `ledgerca init` itself.

Pristine homes live in a temporary directory of this process (an xdist worker has its own),
removed by `discard` at the end of the session; pristine PostgreSQL databases go with their
server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

_root: Path | None = None
_homes: dict[tuple[str, str], Path] = {}
"""(kind, backend) → pristine home; the backend is `sqlite` or a PostgreSQL HOST:PORT."""
_databases: dict[tuple[str, str], str] = {}


def _pristine_root() -> Path:
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix="ledgerca-pristine-"))
    return _root


def discard() -> None:
    """Remove every pristine home of this process."""
    global _root
    if _root is not None:
        shutil.rmtree(_root, ignore_errors=True)
    _root = None
    _homes.clear()
    _databases.clear()


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )


def _server_of(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host}:{parsed.port}"


def _database_exists(url: str, name: str) -> bool:
    with _admin(url) as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        return found.fetchone() is not None


def _init(home: Path, init_args: Sequence[str], env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ca", "--home", str(home), *init_args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"ledgerca init failed:\n{result.stdout}\n{result.stderr}")


def _pristine(
    kind: str, database: str | None, init_args: Sequence[str], env: dict[str, str]
) -> tuple[Path, str | None]:
    """The pristine home of `kind` on the backend of `database` (and its template db)."""
    backend = "sqlite" if database is None else _server_of(database)
    key = (kind, backend)
    template = _databases.get(key)
    if key in _homes and (template is None or _database_exists(database or "", template)):
        return _homes[key], template
    home = _pristine_root() / f"{len(_homes)}-{uuid.uuid4().hex[:8]}" / "home"
    args = list(init_args)
    if database is not None:
        # A server started again on a port seen before has none of our templates.
        template = f"pristine_{uuid.uuid4().hex[:12]}"
        with _admin(database) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(template)))
        args += ["--db", make_url(database).set(database=template).render_as_string(False)]
    _init(home, args, env)
    _homes[key] = home
    if template is not None:
        _databases[key] = template
    return home, template


def clone(
    target: Path,
    *,
    kind: str,
    address: str,
    database: str | None,
    init_args: Sequence[str],
    env: dict[str, str],
) -> None:
    """Make `target` a copy of the pristine CA `kind` listening on `address`.

    `kind` names the pristine home: copies of one kind share their keys. `init_args` is the
    `ledgerca init` command line that makes it (each copy gets its own address). `database`
    is None for the embedded SQLite ledger, or the URL of an empty PostgreSQL database,
    replaced by a copy of the pristine one."""
    source, template = _pristine(kind, database, init_args, env)
    shutil.copytree(source, target, symlinks=True)
    config = target / "config" / "ca.toml"
    text = _replace(config.read_text(), "address", address)
    if database is not None:
        assert template is not None
        dbname = make_url(database).database
        assert dbname is not None
        with _admin(database) as connection:
            connection.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(dbname)))
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbname), sql.Identifier(template)
                )
            )
        text = _replace(text, "database", database)
    config.write_text(text)


def _replace(config: str, key: str, value: str) -> str:
    """`key = "value"` in the top-level table of ca.toml, the rest of the text untouched."""
    line = re.compile(rf"^{key} = \".*\"$", re.MULTILINE)
    text, count = line.subn(lambda _: f'{key} = "{value}"', config, count=1)
    assert count == 1, f"no {key} line in ca.toml"
    return text
