"""`config/ca.toml`: the only local state of an instance.

Everything the CA *knows* (keys in force, provisioners, certificates) lives in the ledger;
this file says only how this instance reaches it: listen address, DNS names, database URL,
where its key files are, TLS settings, and how it publishes and serves CRLs.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import tomli_w

from ca.durations import parse_go_duration
from ca.errors import BadRequest, ConfigError
from ca.home import Home
from ca.keys.files import write_private_file
from ca.keys.pkcs11 import PKCS11Settings

DEFAULT_BODY_LIMIT = 64 * 1024
"""Largest request body the API accepts unless `serve --max-body` says otherwise."""

DEFAULT_CIPHERS = ("ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-GCM-SHA256")


@dataclass(frozen=True)
class TLSSettings:
    min_version: str = "1.2"
    max_version: str = "1.3"
    cipher_suites: tuple[str, ...] = DEFAULT_CIPHERS


@dataclass(frozen=True)
class CRLSettings:
    """The `[crl]` table, step-ca's `crl` object with snake_case keys; every key optional."""

    enabled: bool = True
    generate_on_revoke: bool = True
    """Publish a new CRL as soon as a revocation is in the ledger (else only periodically)."""
    cache_duration: str = "24h"
    """A CRL's lifetime: nextUpdate = thisUpdate + cache_duration."""
    renew_period: str = ""
    """How long after thisUpdate a fresh CRL is published; "" means 2/3 of cache_duration."""
    idp_url: str = ""
    """A scoped CRL: its critical Issuing Distribution Point names this URI, and new leaves
    carry it as their CRL Distribution Point. "" (the default): no IDP, a complete CRL
    covering every certificate of the issuer (see `ca.crl.urls`)."""
    insecure_address: str = ""
    """HOST:PORT of a plain-HTTP listener serving only /crl and /1.0/crl ("" = none)."""
    poll_interval: str = "1s"
    """How often each worker checks whether a CRL is due (one indexed read)."""

    @functools.cached_property
    def cache(self) -> timedelta:
        return _duration(self.cache_duration, "crl.cache_duration")

    @functools.cached_property
    def renew(self) -> timedelta:
        if not self.renew_period:
            return self.cache * 2 / 3
        return _duration(self.renew_period, "crl.renew_period")

    @functools.cached_property
    def poll_seconds(self) -> float:
        return _duration(self.poll_interval, "crl.poll_interval").total_seconds()

    def check(self) -> None:
        """Raise ConfigError for settings step-ca would refuse, and for ones that cannot work."""
        if self.cache <= timedelta(0):
            raise ConfigError(f"crl.cache_duration must be positive, not {self.cache_duration!r}")
        if not timedelta(0) < self.renew <= self.cache:
            raise ConfigError(
                f"crl.renew_period {self.renew_period!r} must be positive and at most"
                f" crl.cache_duration {self.cache_duration!r}"
            )
        if self.poll_seconds <= 0:
            raise ConfigError(f"crl.poll_interval must be positive, not {self.poll_interval!r}")
        if self.insecure_address:
            _host, sep, port = self.insecure_address.rpartition(":")
            if not sep or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(
                    f"crl.insecure_address {self.insecure_address!r} is not HOST:PORT"
                )


@dataclass(frozen=True)
class CheckpointSettings:
    """The `[checkpoint]` table: how often each worker signs a ledger checkpoint."""

    enabled: bool = True
    every: int = 1000
    """Sign a checkpoint once this many events were appended since the last one."""
    interval: str = "1h"
    """...or once this long passed since the last one and anything was appended."""
    poll_interval: str = "1s"

    @functools.cached_property
    def interval_delta(self) -> timedelta:
        return _duration(self.interval, "checkpoint.interval")

    @functools.cached_property
    def poll_seconds(self) -> float:
        return _duration(self.poll_interval, "checkpoint.poll_interval").total_seconds()

    def check(self) -> None:
        if not isinstance(self.every, int) or self.every < 1:
            raise ConfigError(f"checkpoint.every must be a positive integer, not {self.every!r}")
        if self.interval_delta <= timedelta(0) or self.poll_seconds <= 0:
            raise ConfigError("checkpoint.interval and checkpoint.poll_interval must be positive")


_BASTION_HOST = re.compile(r"[A-Za-z0-9_.:][A-Za-z0-9_.:-]*")
_BASTION_USER = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.@-]*")
_HOST_PATTERN = re.compile(r"[A-Za-z0-9_.:*?-]+")


@dataclass(frozen=True)
class SSHBastion:
    """One `[[ssh_bastions]]` table: the jump host that step's `ssh proxycommand` goes
    through to reach the hosts matching `hosts` (step-ca's `ssh.bastion`, per pattern).

    `POST /ssh/bastion` answers the first table whose patterns match, and never a bastion
    for the bastion itself. step runs `ssh [-l user] [-p port] [flags] hostname cmd`."""

    hosts: tuple[str, ...]
    """Host patterns as ssh_config writes them (`*` and `?`), matched without case."""
    hostname: str
    """The bastion's DNS name or IP address."""
    user: str = ""
    """The login on the bastion ("" = the user's own ssh settings)."""
    port: int = 0
    """Its SSH port (0 = the user's own ssh settings, usually 22)."""
    cmd: str = ""
    """The command run on the bastion, with %h %p %r for host, port and user;
    "" = `nc %h %p`."""
    flags: str = ""
    """Extra ssh options, split at whitespace (e.g. "-A -o ServerAliveInterval=30")."""

    def check(self, key: str) -> None:
        if not self.hosts or not all(_HOST_PATTERN.fullmatch(p) for p in self.hosts):
            raise ConfigError(
                f"{key}.hosts must be a non-empty array of host patterns"
                f" (letters, digits, . - _ : * ?), not {list(self.hosts)!r}"
            )
        if not _BASTION_HOST.fullmatch(self.hostname):
            raise ConfigError(
                f"{key}.hostname must be a DNS name or IP address, not {self.hostname!r}"
            )
        if self.user and not _BASTION_USER.fullmatch(self.user):
            raise ConfigError(f"{key}.user {self.user!r} is not a login name")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"{key}.port must be between 1 and 65535, not {self.port}")
        for name in ("cmd", "flags"):
            value = getattr(self, name)
            if not value.isprintable() or len(value) > 1024:
                raise ConfigError(f"{key}.{name} must be one line of printable text")
        words = self.flags.split()
        if words and not words[0].startswith("-"):
            # ssh would read it as the host name and the real host as a command.
            raise ConfigError(f"{key}.flags must be ssh options, starting with '-'")


def _duration(text: str, key: str) -> timedelta:
    try:
        return parse_go_duration(text)
    except BadRequest as exc:
        raise ConfigError(f"{key}: {exc.message}") from None


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
    crl_url: str | None = None
    """The CRL Distribution Point new leaves carry: where relying parties fetch the CRL
    (see `ca.crl.urls`). None: leaves carry none, which the complete CRL still covers."""
    ocsp_url: str | None = None
    """An OCSP responder URL for the leaves' Authority Information Access."""
    log_level: str = "info"
    """debug, info, warning or error; reloaded on SIGHUP."""
    ssh_hosts_require_auth: bool = False
    """Answer `/ssh/hosts` only to callers with an unrevoked client certificate of this CA."""
    ssh_bastions: tuple[SSHBastion, ...] = ()
    """`[[ssh_bastions]]`: which jump host `/ssh/bastion` names for which hosts."""
    tls: TLSSettings = field(default_factory=TLSSettings)
    crl: CRLSettings = field(default_factory=CRLSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    pkcs11: PKCS11Settings | None = None
    """How this machine reaches the HSM holding keys the ledger names by PKCS#11 URI."""

    @functools.cached_property
    def server_cert_lifetime(self) -> timedelta:
        """The lifetime of the CA's own TLS certificate (`tls_cert_lifetime`, at least 10s)."""
        lifetime = _duration(self.tls_cert_lifetime, "tls_cert_lifetime")
        if lifetime < timedelta(seconds=10):
            raise ConfigError(
                f"tls_cert_lifetime must be at least 10s, not {self.tls_cert_lifetime}"
            )
        return lifetime

    def to_toml(self) -> str:
        data: dict[str, Any] = {k: v for k, v in asdict(self).items() if v is not None}
        data["dns_names"] = list(self.dns_names)
        data["tls"] = {**asdict(self.tls), "cipher_suites": list(self.tls.cipher_suites)}
        data["ssh_bastions"] = [{**asdict(b), "hosts": list(b.hosts)} for b in self.ssh_bastions]
        if not self.ssh_bastions:
            del data["ssh_bastions"]
        if self.pkcs11 is not None:
            data["pkcs11"] = {k: v for k, v in asdict(self.pkcs11).items() if v is not None}
        return tomli_w.dumps(data)


def load_config(home: Home) -> CAConfig:
    """Read `config/ca.toml` field by field: an unknown key, a value of the wrong type or
    one that cannot work is a ConfigError with one line per problem, each naming the file
    and the key."""
    path = home.config_file
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no CA at {home.path}: {path} is missing (run `ledgerca init` first)"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    problems: list[str] = []
    config = _read(CAConfig, raw, "", problems)
    if config is not None:
        problems.extend(_semantic_problems(config))
    if problems:
        raise ConfigError("\n".join(f"{path}: {problem}" for problem in problems))
    assert isinstance(config, CAConfig)
    return config


T = TypeVar("T")


def _read(cls: type[T], table: Mapping[str, Any], prefix: str, problems: list[str]) -> T | None:
    """One dataclass from one TOML table, checking each key's type (`problems` collects what
    is wrong; None if anything is)."""
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    found = len(problems)
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            problems.append(f"unknown key {prefix}{key}{hint}")
    values: dict[str, Any] = {}
    for name, spec in known.items():
        key = f"{prefix}{name}"
        if name not in table:
            if spec.default is MISSING and spec.default_factory is MISSING:
                problems.append(f"{key} is missing")
            continue
        value = table[name]
        expected = hints[name]
        listed = _dataclasses_in(expected)
        if listed is not None:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                problems.append(f"{key} must be an array of tables ([[{key}]])")
                continue
            read = [_read(listed, v, f"{key}[{i}].", problems) for i, v in enumerate(value)]
            values[name] = tuple(read)
            continue
        nested = _dataclass_in(expected)
        if nested is not None:
            if not isinstance(value, dict):
                problems.append(f"{key} must be a table ([{key}])")
                continue
            values[name] = _read(nested, value, f"{key}.", problems)
            continue
        checked = _typed(value, expected)
        if checked is _WRONG:
            problems.append(f"{key} must be {_describe(expected)}, not {_show(value)}")
            continue
        values[name] = checked
    if len(problems) > found:
        return None
    return cls(**values)


_WRONG = object()


def _dataclass_in(expected: Any) -> type | None:
    options = get_args(expected) if get_origin(expected) in (Union, UnionType) else (expected,)
    for option in options:
        if isinstance(option, type) and is_dataclass(option):
            return option
    return None


def _dataclasses_in(expected: Any) -> type | None:
    """The dataclass of a `tuple[SomeDataclass, ...]` field (a TOML array of tables)."""
    if get_origin(expected) is tuple:
        item = get_args(expected)[0]
        if isinstance(item, type) and is_dataclass(item):
            return item
    return None


def _typed(value: Any, expected: Any) -> Any:
    """`value` as the field's type wants it (TOML arrays become tuples), or _WRONG."""
    if get_origin(expected) in (Union, UnionType):
        for option in get_args(expected):
            if option is type(None):
                continue
            checked = _typed(value, option)
            if checked is not _WRONG:
                return checked
        return _WRONG
    if get_origin(expected) is tuple:
        (item, _ellipsis) = get_args(expected)
        if not isinstance(value, list):
            return _WRONG
        items = [_typed(v, item) for v in value]
        return _WRONG if any(i is _WRONG for i in items) else tuple(items)
    if expected is bool:
        return value if isinstance(value, bool) else _WRONG
    if expected is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _WRONG
    if expected is str:
        return value if isinstance(value, str) else _WRONG
    raise TypeError(f"config field of unsupported type {expected!r}")


def _describe(expected: Any) -> str:
    if get_origin(expected) in (Union, UnionType):
        return " or ".join(_describe(o) for o in get_args(expected) if o is not type(None))
    if get_origin(expected) is tuple:
        return f"an array of {_describe(get_args(expected)[0]).removeprefix('a ')}s"
    return {bool: "true or false", int: "an integer", str: "a string"}.get(expected, "valid")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"


def _semantic_problems(config: CAConfig) -> list[str]:
    """Values of the right type that still cannot work: one line each."""
    checks: list[Callable[[], object]] = [
        lambda: log_level(config.log_level),
        lambda: _check_address(config.address, "address"),
        lambda: _check_dns_names(config.dns_names),
        lambda: config.server_cert_lifetime,
        lambda: _check_tls_version(config.tls.min_version, "tls.min_version"),
        lambda: _check_tls_version(config.tls.max_version, "tls.max_version"),
        config.crl.check,
        config.checkpoint.check,
        lambda: _check_url(config.crl_url, "crl_url", CRL_URL_SCHEMES),
        lambda: _check_url(config.crl.idp_url or None, "crl.idp_url", CRL_URL_SCHEMES),
        lambda: _check_crl_scope(config),
        lambda: _check_url(config.ocsp_url, "ocsp_url", ("http", "https")),
        *(
            functools.partial(bastion.check, f"ssh_bastions[{i}]")
            for i, bastion in enumerate(config.ssh_bastions)
        ),
    ]
    problems = []
    for check in checks:
        try:
            check()
        except ConfigError as exc:
            problems.append(exc.message)
    if not problems and config.tls.min_version > config.tls.max_version:
        problems.append("tls.min_version is above tls.max_version")
    return problems


TLS_VERSIONS = ("1.2", "1.3")


def _check_tls_version(text: str, key: str) -> None:
    if text not in TLS_VERSIONS:
        raise ConfigError(f"{key} must be 1.2 or 1.3, not {text!r}")


def _check_address(address: str, key: str) -> None:
    _host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ConfigError(f"{key} must be HOST:PORT, not {address!r}")


def _check_dns_names(names: tuple[str, ...]) -> None:
    if not names or not all(names):
        raise ConfigError("dns_names must be a non-empty array of names")


LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def log_level(text: str) -> int:
    """The logging level a `log_level` setting names."""
    try:
        return LOG_LEVELS[text.lower()]
    except KeyError:
        raise ConfigError(f"log_level {text!r} is not one of {', '.join(LOG_LEVELS)}") from None


CRL_URL_SCHEMES = ("http", "https", "ldap")


def _check_crl_scope(config: CAConfig) -> None:
    """The scope a CRL claims must hold the leaves: `crl.idp_url` and `crl_url` agree."""
    idp = config.crl.idp_url
    if idp and config.crl_url and idp != config.crl_url:
        raise ConfigError(
            f"crl.idp_url {idp!r} differs from crl_url {config.crl_url!r}: leaves carrying"
            " crl_url would be outside the CRL's scope, and OpenSSL would refuse to check them"
            " (error 44). Set both to the URL the CRL is served at, or leave crl.idp_url empty"
            " for a CRL that covers every certificate"
        )


def _check_url(url: str | None, key: str, schemes: tuple[str, ...]) -> None:
    if url is None:
        return
    parsed = urlsplit(url)
    if parsed.scheme not in schemes or not parsed.netloc:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"{key} {url!r} is not an absolute URL ({allowed})")


def save_config(path: Path, config: CAConfig) -> None:
    # 0600: a PostgreSQL URL may carry a password.
    write_private_file(path, config.to_toml().encode())
