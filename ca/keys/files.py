"""Private keys at rest: generate, encrypt, load, and write files atomically.

Every key the authority keeps on disk is an encrypted PKCS#8 PEM file (mode 0600) in a
0700 directory; an unencrypted key file is refused rather than silently used.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal, TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ca.errors import ConfigError, PasswordError

__all__ = [
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "encrypt_private_key",
    "ensure_private_dir",
    "generate_private_key",
    "key_type",
    "load_private_key",
    "write_private_file",
    "write_public_file",
]

KeyType = Literal["EC", "OKP", "RSA"]
PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

MIN_RSA_BITS = 2048
_KEY_TYPES: dict[str, KeyType] = {"EC": "EC", "OKP": "OKP", "RSA": "RSA"}


def key_type(kty: str) -> KeyType:
    """Normalise a user-supplied key type ("ec", "OKP", ...) or raise ConfigError."""
    try:
        return _KEY_TYPES[kty.upper()]
    except KeyError:
        raise ConfigError(f"unknown key type '{kty}': choose EC, OKP or RSA") from None


def generate_private_key(kty: str, *, rsa_bits: int = 3072) -> PrivateKey:
    """Generate a key: EC is P-256, OKP is Ed25519, RSA has `rsa_bits` (at least 2048)."""
    match key_type(kty):
        case "EC":
            return ec.generate_private_key(ec.SECP256R1())
        case "OKP":
            return ed25519.Ed25519PrivateKey.generate()
        case "RSA":
            if rsa_bits < MIN_RSA_BITS:
                raise ConfigError(
                    f"RSA key size {rsa_bits} is too small: use at least {MIN_RSA_BITS} bits"
                )
            return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)


def encrypt_private_key(key: PrivateKey, password: bytes) -> bytes:
    """Serialise `key` as an encrypted PKCS#8 PEM ("BEGIN ENCRYPTED PRIVATE KEY")."""
    if not password:
        raise PasswordError("the password is empty: keys at rest must be encrypted")
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(password),
    )


def load_private_key(data: bytes, password: bytes, *, what: str = "key") -> PrivateKey:
    """Decrypt a PEM private key; `what` names it in error messages ("root key", ...).

    Raises PasswordError for a wrong or empty password, ConfigError for data that is not an
    encrypted private key of a supported type.
    """
    # First parse without a password: that is cheap (no KDF) and tells the three cases apart
    # that a single load with the password would blur (not a key / plaintext key / encrypted).
    try:
        serialization.load_pem_private_key(data, password=None)
    except TypeError:
        pass  # encrypted, as it should be
    except (ValueError, UnsupportedAlgorithm) as err:
        raise ConfigError(f"the {what} is not a PEM private key (or is corrupted)") from err
    else:
        raise ConfigError(
            f"the {what} is not encrypted: keys at rest must be encrypted with a password"
        )
    if not password:
        raise PasswordError(f"empty password for the {what}")
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except ValueError as err:
        raise PasswordError(f"wrong password for the {what}") from err
    except UnsupportedAlgorithm as err:
        raise ConfigError(f"the {what} uses an unsupported encryption: {err}") from err
    if not isinstance(key, PrivateKey):
        raise ConfigError(
            f"the {what} is a {type(key).__name__}: only EC, Ed25519 and RSA keys are supported"
        )
    return key


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, readable by the owner only (0600)."""
    _write_atomically(path, data, 0o600)


def write_public_file(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, world-readable (0644)."""
    _write_atomically(path, data, 0o644)


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) if needed and make it 0700, even if it already existed."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask and ignored for an existing directory.
    os.chmod(path, 0o700)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    # The temp file lives in the target's directory so os.replace is a same-filesystem rename:
    # readers see the old file or the new one, never a partial write. O_EXCL refuses to follow
    # a planted symlink, and the file never exists with wider permissions than `mode`.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode & 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
            # Set the final mode explicitly: os.open's mode is filtered by the umask.
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable across a crash.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
