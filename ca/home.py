"""The CA's home directory: where each file lives, and its permissions.

`$LEDGERCA_HOME` or `~/.ledgerca`, holding `config/`, `certs/`, `secrets/` (0700, files
0600) and `db/` (the embedded SQLite ledger, unless the config names another database).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("~/.ledgerca")
EMBEDDED_DATABASE = "sqlite:///db/ledger.sqlite"
"""The config's default database: a SQLite path relative to the home, so a home can move."""


def default_home() -> Path:
    return Path(os.environ.get("LEDGERCA_HOME") or DEFAULT_HOME).expanduser()


@dataclass(frozen=True)
class Home:
    path: Path

    @property
    def config_dir(self) -> Path:
        return self.path / "config"

    @property
    def certs_dir(self) -> Path:
        return self.path / "certs"

    @property
    def secrets_dir(self) -> Path:
        return self.path / "secrets"

    @property
    def db_dir(self) -> Path:
        return self.path / "db"

    @property
    def config_file(self) -> Path:
        return self.config_dir / "ca.toml"

    @property
    def root_cert(self) -> Path:
        return self.certs_dir / "root_ca.crt"

    @property
    def intermediate_cert(self) -> Path:
        return self.certs_dir / "intermediate_ca.crt"

    @property
    def root_key(self) -> Path:
        return self.secrets_dir / "root_ca_key"

    @property
    def intermediate_key(self) -> Path:
        return self.secrets_dir / "intermediate_ca_key"

    @property
    def sqlite_file(self) -> Path:
        return self.db_dir / "ledger.sqlite"

    def database_url(self, url: str) -> str:
        """The config's database URL, with a relative SQLite path resolved against the home."""
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            return prefix + str(self.path / url[len(prefix) :])
        return url

    def resolve(self, path: str | Path) -> Path:
        """A path from the config: relative ones are relative to the home."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.path / candidate

    def relative(self, path: Path) -> str:
        """How the config writes `path`: relative when inside the home, so a home can move."""
        try:
            return str(path.relative_to(self.path))
        except ValueError:
            return str(path)

    def exists(self) -> bool:
        return self.path.exists() and any(self.path.iterdir())
