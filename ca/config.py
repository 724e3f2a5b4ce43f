"""`config/ca.toml`: the only local state of an instance.

Everything the CA *knows* (keys in force, provisioners, certificates) lives in the ledger;
this file says only how this instance reaches it: listen address, DNS names, database URL,
where its key files are, and TLS settings.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from ca.errors import ConfigError
from ca.home import Home
from ca.keys.files import write_private_file

DEFAULT_BODY_LIMIT = 64 * 1024
"""Largest request body the API accepts unless `serve --max-body` says otherwise."""

DEFAULT_CIPHERS = ("ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-GCM-SHA256")


@dataclass(frozen=True)
class TLSSettings:
    min_version: str = "1.2"
    max_version: str = "1.3"
    cipher_suites: tuple[str, ...] = DEFAULT_CIPHERS


@dataclass(frozen=True)
class CAConfig:
    name: str
    dns_names: tuple[str, ...]
    address: str
    database: str
    root_cert: str = "certs/root_ca.crt"
    intermediate_cert: str = "certs/intermediate_ca.crt"
    intermediate_key: str = "secrets/intermediate_ca_key"
    password_file: str | None = None
    """Where an unattended `serve` reads the intermediate key's password (optional)."""
    tls_cert_lifetime: str = "24h"
    """Lifetime of the CA's own TLS certificate (renewed when a third of it is left)."""
    tls: TLSSettings = field(default_factory=TLSSettings)

    def to_toml(self) -> str:
        data: dict[str, Any] = {k: v for k, v in asdict(self).items() if v is not None}
        data["dns_names"] = list(self.dns_names)
        data["tls"] = {**asdict(self.tls), "cipher_suites": list(self.tls.cipher_suites)}
        return tomli_w.dumps(data)


def load_config(home: Home) -> CAConfig:
    path = home.config_file
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no CA at {home.path}: {path} is missing (run `ledgerca init` first)"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        tls = TLSSettings(
            **{
                **raw.get("tls", {}),
                "cipher_suites": tuple(raw.get("tls", {}).get("cipher_suites", DEFAULT_CIPHERS)),
            }
        )
        return CAConfig(**{**raw, "dns_names": tuple(raw["dns_names"]), "tls": tls})
    except (TypeError, KeyError) as exc:
        raise ConfigError(f"{path} is not a valid ledgerca config: {exc}") from exc


def save_config(path: Path, config: CAConfig) -> None:
    # 0600: a PostgreSQL URL may carry a password.
    write_private_file(path, config.to_toml().encode())
