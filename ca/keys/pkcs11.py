"""Keys in an HSM, named by RFC 7512 URIs: load one to sign with, or create one.

The ledger records `{"type": "pkcs11", "uri": "pkcs11:token=…;object=…;id=…;type=private"}`;
the module and the PIN are local to each machine: the URI's `module-path`, else the config's
`[pkcs11] module`; the URI's `pin-source=file:…`, else `[pkcs11] pin_file`. A PIN is read
only from a file that no one but its owner can read — never from the environment or argv.

python-pkcs11 is imported only when a PKCS#11 key is actually used.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ca.errors import ConfigError, PasswordError
from ca.keys.files import PrivateKey
from ca.keys.pkcs11_uri import PKCS11URI, parse_pkcs11_uri

if TYPE_CHECKING:
    from ca.keys.pkcs11_token import Token

__all__ = [
    "CreatedKey",
    "PKCS11Settings",
    "close_all",
    "create_key",
    "delete_created_key",
    "load_key",
    "pkcs11_ref",
    "read_pin_file",
]


@dataclass(frozen=True)
class PKCS11Settings:
    """The `[pkcs11]` table of `config/ca.toml`: how this machine reaches its tokens."""

    module: str | None = None
    """Path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)."""
    pin_file: str | None = None
    """File holding the token's user PIN (0600); relative to the home."""

    def module_for(self, uri: PKCS11URI) -> str:
        module = uri.module_path or self.module
        if not module:
            raise ConfigError(
                "no PKCS#11 module: set [pkcs11] module in config/ca.toml (or pass"
                " --pkcs11-module), e.g. /usr/lib/softhsm/libsofthsm2.so"
            )
        return module

    def pin_for(self, uri: PKCS11URI, home: Path) -> str:
        source = uri.pin_file() or (Path(self.pin_file) if self.pin_file else None)
        if source is None:
            raise PasswordError(
                f"no PIN for PKCS#11 token {uri.token!r}: set [pkcs11] pin_file in"
                " config/ca.toml (or pass --pin-file), or pin-source=file:… in the URI"
            )
        source = source.expanduser()
        return read_pin_file(source if source.is_absolute() else home / source)


def read_pin_file(path: Path) -> str:
    """The PIN in `path` (one line). The file must be readable by its owner only."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise PasswordError(f"PIN file not found: {path}") from None
    except OSError as exc:
        raise PasswordError(f"cannot read the PIN file {path}: {exc.strerror or exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PasswordError(
            f"the PIN file {path} is open to other users (mode {stat.S_IMODE(mode):04o}):"
            f" chmod 600 {path}"
        )
    pin = data.rstrip(b"\r\n")
    if not pin:
        raise PasswordError(f"the PIN file {path} is empty")
    try:
        return pin.decode("utf-8")
    except UnicodeDecodeError:
        raise PasswordError(f"the PIN in {path} is not UTF-8 text") from None


def pkcs11_ref(uri: PKCS11URI) -> dict[str, str]:
    """The key reference an `authority.key_activated` event records for a key in a token."""
    return {"type": "pkcs11", "uri": str(uri)}


def _open(uri: PKCS11URI, settings: PKCS11Settings, home: Path) -> Token:
    from ca.keys.pkcs11_token import open_token

    module = settings.module_for(uri)
    return open_token(module, uri, settings.pin_for(uri, home))


def _adapter(token: Token, uri: PKCS11URI) -> PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    from ca.keys.pkcs11_keys import HSMECKey, HSMEd25519Key, HSMRSAKey
    from ca.keys.pkcs11_token import HSMKeyObject

    handle = HSMKeyObject(token, uri)
    public = token.public_key(uri)  # fails here, clearly, if the key is not there
    if isinstance(public, ec.EllipticCurvePublicKey):
        return HSMECKey(handle, public)
    if isinstance(public, rsa.RSAPublicKey):
        return HSMRSAKey(handle, public)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    return HSMEd25519Key(handle, public)


def load_key(uri: str, settings: PKCS11Settings, home: Path) -> PrivateKey:
    """The key `uri` names, as a cryptography private key that signs in the token.

    Raises ConfigError for a bad URI or no module, PasswordError for a PIN file problem,
    SignerError when the module, token or key cannot be found or the PIN is wrong.
    """
    parsed = parse_pkcs11_uri(uri)
    return _adapter(_open(parsed, settings, home), parsed)


@dataclass(frozen=True)
class CreatedKey:
    key: PrivateKey
    uri: PKCS11URI
    """The exact URI of the key (with its id): what the ledger records."""
    created: bool
    """False when the token already held a key with that label, which is used as it is."""
    token: Token


def create_key(
    uri: str, settings: PKCS11Settings, home: Path, *, kty: str, rsa_bits: int = 3072
) -> CreatedKey:
    """The key `uri` names: generated in the token (non-extractable) unless it exists."""
    from pkcs11 import ObjectClass

    from ca.keys.pkcs11_token import delete_key, generate_key, search

    parsed = parse_pkcs11_uri(uri)
    token = _open(parsed, settings, home)
    existing = token.with_login_session(
        lambda session: search(session, ObjectClass.PRIVATE_KEY, parsed)
    )
    if len(existing) > 1:
        raise ConfigError(f"{len(existing)} private keys match {uri}: add id=… to name exactly one")
    if existing:
        exact = parsed.with_id(bytes(existing[0].id)) if existing[0].id else parsed
        return CreatedKey(_adapter(token, exact), exact, False, token)
    exact = generate_key(token, parsed, kty, rsa_bits=rsa_bits)
    try:
        return CreatedKey(_adapter(token, exact), exact, True, token)
    except BaseException:
        delete_key(token, exact)
        raise


def delete_created_key(created: CreatedKey) -> None:
    """Undo `create_key` (for a command that failed after it): a key it found stays."""
    from ca.keys.pkcs11_token import delete_key

    if created.created:
        delete_key(created.token, created.uri)


def close_all() -> None:
    """Log out of every token this process opened and finalize the modules."""
    from ca.keys.pkcs11_token import close_all as close_tokens

    close_tokens()
