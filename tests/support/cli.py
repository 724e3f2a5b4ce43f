"""Driving `ledgerca` as a user does: a real subprocess, no terminal, no password variables.

With stdin not a terminal, passwords come from files or are generated under `secrets/`.
The child runs this checkout's code (the repository root goes first on PYTHONPATH).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ca.config import load_config
from ca.home import Home
from ledger import EventStore, RecordedEvent, create_engine
from support.binaries import OPENSSL

REPO = Path(__file__).resolve().parents[2]

NAME = "Test"
DNS = "ca.example.test,127.0.0.1"
ADDRESS = "127.0.0.1:9443"
K = TypeVar("K")
V = TypeVar("V")
INIT = ("init", "--name", NAME, "--dns", DNS, "--address", ADDRESS)
"""`ledgerca init` with the three required options."""


def cli_env() -> dict[str, str]:
    """The caller's environment minus anything that could carry a password or a home; the
    child's output unbuffered, so that a server's log can be read while it runs."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LEDGERCA") and "PASSWORD" not in key.upper()
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(
    *args: str | Path,
    home: Path,
    cwd: Path | None = None,
    timeout: float = 120,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`ledgerca --home HOME ARGS...` in a child process with no terminal on stdin, in `cwd`
    (default: the home's parent). `check` raises CalledProcessError on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "ca", "--home", str(home), *map(str, args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=cwd or home.parent,
        timeout=timeout,
        check=check,
    )


def in_parallel(attempt: Callable[[K], V], keys: Iterable[K]) -> dict[K, V]:
    """`attempt(key)` for every key, several at once: each CLI run is mostly start-up time."""
    keys = list(keys)
    workers = max(1, min(len(keys), 2 * (os.cpu_count() or 1)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(keys, pool.map(attempt, keys), strict=True))


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Assert the command succeeded, showing its output if not."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def clean_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert a refusal as the CLI promises it: one `ledgerca: error:` line, non-zero exit."""
    assert result.returncode != 0, f"unexpectedly succeeded:\n{result.stdout}"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert lines[0].startswith("ledgerca: error: "), lines[0]
    return lines[0]


def write_password(path: Path, password: str) -> Path:
    """A password file as an operator writes one (trailing newline, owner-only)."""
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def tree_digest(root: Path) -> dict[str, tuple[int, str]]:
    """Every file and directory under `root`: its mode and (for files) its SHA-256."""
    digest: dict[str, tuple[int, str]] = {}
    for path in sorted(root.rglob("*")):
        content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        digest[str(path.relative_to(root))] = (path.stat().st_mode & 0o7777, content)
    return digest


def leftovers(parent: Path, home_name: str) -> list[Path]:
    """Staging or retired homes that init left beside the home."""
    return sorted(parent.glob(f".{home_name}.*"))


def copy_home(source: Path, target: Path) -> Path:
    """Copy an initialised home; its embedded database path is relative, so the copy has
    its own ledger."""
    shutil.copytree(source, target)
    return target


def ledger_events(home: Path) -> list[RecordedEvent]:
    """The home's ledger, read in-process from the database its config names."""
    return events_in(Home(home).database_url(load_config(Home(home)).database))


def events_in(url: str) -> list[RecordedEvent]:
    """Every event in the database at `url`; none if the database or its schema is absent."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if not engine.dialect.has_table(connection, "events"):
                return []
        return list(EventStore(engine).read(0))
    finally:
        engine.dispose()


def openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the real openssl; fails the test (with its output) if openssl does."""
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"openssl {' '.join(map(str, args))}:\n{result.stderr}"
    return result


def openssl_fingerprint(cert: Path) -> str:
    """`openssl x509 -fingerprint -sha256`, normalised to lowercase hex without colons."""
    out = openssl("x509", "-in", cert, "-noout", "-fingerprint", "-sha256").stdout
    return out.strip().split("=", 1)[1].replace(":", "").lower()
