"""A throwaway PostgreSQL server for tests.

``PostgresServer.start()`` runs ``initdb`` and ``pg_ctl start`` in a private base directory,
listening on 127.0.0.1 at a free port with its Unix socket inside the base directory, and
``stop()`` shuts the server down and removes the base directory.

Running as root (as CI does): ``initdb`` refuses to run as root, so ``initdb`` and ``pg_ctl``
run as the ``postgres`` system user through ``runuser -u postgres --``, and the data directory
is chowned to ``postgres``. That user must be able to traverse every directory above it, which
rules out pytest's ``tmp_path`` (``/tmp/pytest-of-root`` is mode 0700). Hence the default base
directory is our own ``tempfile.mkdtemp(prefix="ledgerca-pg-")`` under ``/tmp``, chmodded 0755;
a base directory passed in must likewise sit below directories that ``postgres`` can traverse
(directories ``start`` creates for it are made 0755).

Not root: the binaries run directly as the current user and nothing is chowned.

The cluster is created with ``--auth=trust --username=ledgerca`` (the superuser is
``ledgerca``, no password), ``--no-sync`` (a fast initdb; the running server keeps
``fsync=on`` and the default ``synchronous_commit``, so commits are durable as in production)
and ``--locale=C`` (deterministic, and independent of the locales installed on the machine).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

__all__ = ["PostgresServer", "PostgresServerError", "find_pg_bin"]

PG_LIB_DIR = Path("/usr/lib/postgresql")
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
SUPERUSER = "ledgerca"
SYSTEM_USER = "postgres"
DEFAULT_DB = "postgres"
LOG_TAIL_LINES = 40
START_ATTEMPTS = 3
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresServerError(RuntimeError):
    """The test PostgreSQL server could not be set up, started or stopped."""


def _has_binaries(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in REQUIRED_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (-1,)


def find_pg_bin() -> Path | None:
    """The newest directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None.

    Looks at ``/usr/lib/postgresql/<N>/bin`` (Debian's layout) first, newest ``N`` first, then
    at what ``pg_config --bindir`` reports.
    """
    if PG_LIB_DIR.is_dir():
        for version_dir in sorted(PG_LIB_DIR.iterdir(), key=_version_key, reverse=True):
            bin_dir = version_dir / "bin"
            if _has_binaries(bin_dir):
                return bin_dir
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
        if out and _has_binaries(Path(out)):
            return Path(out)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no server log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


def _clean_env() -> dict[str, str]:
    # PGDATA, PGPORT, PGHOST ... from the caller's environment must not steer our server.
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


class PostgresServer:
    """A running throwaway PostgreSQL server. Create one with :meth:`start`."""

    def __init__(self, bin_dir: Path, base_dir: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.socket_dir = base_dir / "sock"
        self.log_file = base_dir / "postgres.log"
        self.port = port
        self.host = "127.0.0.1"
        self.user = SUPERUSER
        self._as_postgres = os.geteuid() == 0
        self._running = False
        self._stopped = False

    # ------------------------------------------------------------------ start
    @classmethod
    def start(cls, base_dir: Path | None = None) -> PostgresServer:
        """Create a cluster under ``base_dir`` (default: a fresh 0755 temp dir) and start it."""
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise PostgresServerError(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found"
            )
        if base_dir is None:
            base_dir = Path(tempfile.mkdtemp(prefix="ledgerca-pg-"))
            base_dir.chmod(0o755)
        else:
            base_dir = _make_traversable_dir(Path(base_dir))
        server = cls(bin_dir, base_dir, port=0)
        try:
            server._init_cluster()
            server._start_with_free_port()
        except BaseException:
            server.stop(_quiet=True)
            raise
        return server

    def _run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        if self._as_postgres:
            argv = ["runuser", "-u", SYSTEM_USER, "--", *argv]
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                cwd=self.base_dir,
                env=_clean_env(),
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresServerError(
                f"{shlex.join(argv)} failed: {exc}\n--- server log ---\n{_tail(self.log_file)}"
            ) from exc

    def _fail(self, what: str, proc: subprocess.CompletedProcess[str]) -> PostgresServerError:
        output = (proc.stdout + proc.stderr).strip()
        return PostgresServerError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(proc.args)}\n"
            f"--- output ---\n{output}\n"
            f"--- server log ({self.log_file}) ---\n{_tail(self.log_file)}"
        )

    def _init_cluster(self) -> None:
        for directory in (self.data_dir, self.socket_dir):
            directory.mkdir(mode=0o700)
        if self._as_postgres:
            try:
                owner = pwd.getpwnam(SYSTEM_USER)
            except KeyError as exc:
                raise PostgresServerError(
                    f"running as root needs the {SYSTEM_USER!r} system user (apt-get install "
                    "postgresql creates it)"
                ) from exc
            for path in (self.data_dir, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            # The log file is created by pg_ctl, running as postgres, in a root-owned dir.
            self.log_file.touch(mode=0o644)
            os.chown(self.log_file, owner.pw_uid, owner.pw_gid)
        proc = self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "--auth=trust",
                f"--username={SUPERUSER}",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )
        if proc.returncode != 0:
            raise self._fail("initdb", proc)

    def _start_with_free_port(self) -> None:
        last: PostgresServerError | None = None
        for _ in range(START_ATTEMPTS):
            self.port = _free_port()
            log_size = self.log_file.stat().st_size if self.log_file.exists() else 0
            proc = self._pg_ctl_start()
            if proc.returncode == 0:
                self._running = True
                return
            last = self._fail("pg_ctl start", proc)
            new_log = self.log_file.read_text(errors="replace")[log_size:]
            if "could not bind" not in new_log and "already in use" not in new_log:
                break
        assert last is not None
        raise last

    def _pg_ctl_start(self) -> subprocess.CompletedProcess[str]:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-k {shlex.quote(str(self.socket_dir))}",
                "-c fsync=on",
                "-c max_connections=200",
            ]
        )
        return self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-o",
                options,
                "-l",
                str(self.log_file),
                "-t",
                "60",
                "-w",
                "start",
            ],
            timeout=90,
        )

    # ------------------------------------------------------------------ outages
    def halt(self) -> None:
        """Stop the server (fast shutdown: open connections are cut), keeping its data."""
        proc = self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"],
            60,
        )
        if proc.returncode != 0:
            raise self._fail("pg_ctl stop", proc)
        self._running = False

    def resume(self) -> None:
        """Start a halted server again on the same port."""
        proc = self._pg_ctl_start()
        if proc.returncode != 0:
            raise self._fail("pg_ctl start", proc)
        self._running = True

    # ------------------------------------------------------------------ URLs and databases
    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL of database ``dbname`` on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the server's default ``postgres`` database."""
        return self.url_for(DEFAULT_DB)

    def _admin_connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if not self._running:
            raise PostgresServerError("the PostgreSQL test server is not running")
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=DEFAULT_DB,
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self, name: str) -> str:
        """Create an empty database ``name`` and return its SQLAlchemy URL."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain lower-case database name: {name!r}")
        with self._admin_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, closing any connections still open to it."""
        if not _DB_NAME.fullmatch(name):
            raise ValueError(f"not a plain lower-case database name: {name!r}")
        with self._admin_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # ------------------------------------------------------------------ stop
    def stop(self, *, _quiet: bool = False) -> None:
        """Stop the server and remove its base directory. Safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        error: PostgresServerError | None = None
        if self._running or (self.data_dir / "postmaster.pid").exists():
            pg_ctl = str(self.bin_dir / "pg_ctl")
            proc = self._run([pg_ctl, "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], 60)
            if proc.returncode != 0 and (self.data_dir / "postmaster.pid").exists():
                error = self._fail("pg_ctl stop", proc)
                self._run([pg_ctl, "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"], 60)
        self._running = False
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if error is not None and not _quiet:
            raise error

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._running else "stopped"
        return f"<PostgresServer {self.host}:{self.port} {state} in {self.base_dir}>"


def _make_traversable_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) with mode 0755; return it absolute.

    As root, first check that the ``postgres`` user can traverse the existing ancestors.
    """
    path = path.absolute()
    missing: list[Path] = []
    existing = path
    while not existing.exists():
        missing.append(existing)
        existing = existing.parent
    if os.geteuid() == 0:
        for ancestor in (existing, *existing.parents):
            if not ancestor.stat().st_mode & 0o001:
                raise PostgresServerError(
                    f"{ancestor} is not traversable by the {SYSTEM_USER!r} user; use a base "
                    "directory under /tmp made with tempfile.mkdtemp() and chmod 0755 "
                    "(pytest's tmp_path is 0700)"
                )
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir()
        directory.chmod(0o755)
    return path
