"""Key material of a JWK provisioner, in the form step-ca and the step CLI use.

A JWK provisioner is a signing key pair: the public JWK is in the CA's configuration and
verifies one-time tokens; the private JWK is kept as `encryptedKey`, a compact JWE that
anyone may fetch (`/provisioners/{kid}/encrypted-key`) because the password protects it.
The JWE is what step CLI writes: PBES2-HS256+A128KW with 600000 iterations and a 16-byte
salt, A256GCM, `cty: jwk+json`, the private JWK JSON (with kid, use, alg) as payload.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap
from joserfc import jwe, jwk
from joserfc.errors import JoseError
from joserfc.jwa import AESAlgKeyWrapping, GCMEncModel, PBES2HSAlgKeyEncryption
from joserfc.jwe import JWERegistry
from joserfc.registry import HeaderParameter, HeaderRegistryDict
from joserfc.util import urlsafe_b64encode

from ca.errors import ConfigError, PasswordError
from ca.keys.files import KeyType, PrivateKey, key_type

__all__ = [
    "DEFAULT_ITERATIONS",
    "MAX_ITERATIONS",
    "ProvisionerKey",
    "create_provisioner_key",
    "decrypt_provisioner_key",
    "private_key_from_jwe",
    "reencrypt_provisioner_key",
    "thumbprint",
]

KEY_ENCRYPTION = "PBES2-HS256+A128KW"
CONTENT_ENCRYPTION = "A256GCM"
CONTENT_TYPE = "jwk+json"
DEFAULT_ITERATIONS = 600_000  # step CLI's p2c; its older keys carry 100000
MIN_ITERATIONS = 1_000  # RFC 7518 §4.8.1.2 recommends at least 1000
# A JWE fetched from a server chooses its own p2c: cap it so a hostile one cannot make the
# client spin for minutes (go-jose caps at the same value).
MAX_ITERATIONS = 1_000_000

_JOSE_ALG: dict[KeyType, str] = {"EC": "ES256", "OKP": "EdDSA", "RSA": "RS256"}
_RSA_BITS = 3072


@dataclass(frozen=True)
class ProvisionerKey:
    """A new provisioner key pair: `public_jwk` goes in the config, `encrypted_key` beside it."""

    kid: str
    public_jwk: dict[str, Any]
    encrypted_key: str


def create_provisioner_key(
    password: bytes, *, kty: str = "EC", iterations: int = DEFAULT_ITERATIONS
) -> ProvisionerKey:
    """Generate a signing key (EC P-256/ES256, OKP Ed25519/EdDSA or RSA/RS256) and encrypt it.

    `iterations` is the PBES2 count; keep the default outside tests.
    """
    kind = key_type(kty)
    params: jwk.KeyParameters = {"use": "sig", "alg": _JOSE_ALG[kind]}
    key: jwk.Key
    match kind:
        case "EC":
            key = jwk.generate_key("EC", "P-256", parameters=params)
        case "OKP":
            key = jwk.generate_key("OKP", "Ed25519", parameters=params)
        case "RSA":
            key = jwk.generate_key("RSA", _RSA_BITS, parameters=params)
    key.ensure_kid()
    return ProvisionerKey(
        kid=key.thumbprint(),
        public_jwk=dict(key.as_dict(private=False)),
        encrypted_key=_encrypt(key, password, iterations),
    )


def decrypt_provisioner_key(encrypted_key: str, password: bytes, *, name: str = "") -> jwk.Key:
    """Decrypt a provisioner's `encryptedKey` to its private JWK.

    `name` (the provisioner's) only improves error messages. Raises PasswordError for a
    wrong password, ConfigError for anything that is not a step-style encrypted JWK.
    """
    what = f"provisioner '{name}'" if name else "the provisioner key"
    blob = f"the encrypted key of provisioner '{name}'" if name else "the encrypted provisioner key"
    if not password:
        raise PasswordError(f"empty password for {what}")
    try:
        # The count comes from the JWE header (p2c); the registry bounds it.
        message = jwe.decrypt_compact(encrypted_key, _password_key(password), registry=_REGISTRY)
    except JoseError as err:
        if isinstance(err.__cause__, InvalidUnwrap):
            # The AES key wrap's integrity check failed: the derived key is wrong.
            raise PasswordError(f"wrong password for {what}") from err
        if isinstance(err.__cause__, InvalidTag):
            raise ConfigError(f"{blob} is corrupted") from err
        detail = err.description or err.error
        raise ConfigError(f"{blob} is not a valid JWE: {detail}") from err
    except ValueError as err:  # e.g. invalid base64 or JSON in the header
        raise ConfigError(f"{blob} is not a valid JWE: {err}") from err
    cty = message.protected.get("cty", CONTENT_TYPE)
    if cty != CONTENT_TYPE:
        raise ConfigError(f"{blob} holds '{cty}', not a JWK")
    try:
        key = jwk.import_key(json.loads(message.plaintext or b""))
    except (ValueError, TypeError, JoseError) as err:
        raise ConfigError(f"{blob} does not hold a valid JWK") from err
    if not key.is_private or key.key_type not in _JOSE_ALG:
        raise ConfigError(f"{blob} is not an EC, OKP or RSA private key")
    return key


def private_key_from_jwe(encrypted_key: str, password: bytes, *, name: str = "") -> PrivateKey:
    """Like `decrypt_provisioner_key`, but as a cryptography private key object."""
    private = decrypt_provisioner_key(encrypted_key, password, name=name).private_key
    if not isinstance(private, PrivateKey):
        what = f"provisioner '{name}'" if name else "the provisioner key"
        raise ConfigError(f"{what} is not an EC, Ed25519 or RSA private key")
    return private


def reencrypt_provisioner_key(
    encrypted_key: str,
    old_password: bytes,
    new_password: bytes,
    *,
    name: str = "",
    iterations: int = DEFAULT_ITERATIONS,
) -> str:
    """Encrypt the same key (same kid) under a new password, with a fresh salt."""
    key = decrypt_provisioner_key(encrypted_key, old_password, name=name)
    return _encrypt(key, new_password, iterations)


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint (base64url, no padding): a JWK provisioner's kid."""
    try:
        return jwk.import_key(public_jwk).thumbprint()
    except (ValueError, TypeError, KeyError, JoseError) as err:
        raise ConfigError(f"not a valid public JWK: {err}") from err


def _encrypt(key: jwk.Key, password: bytes, iterations: int) -> str:
    if not password:
        raise PasswordError("the password is empty: provisioner keys must be encrypted")
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ConfigError(f"PBES2 iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}")
    protected = {
        "alg": KEY_ENCRYPTION,
        "enc": CONTENT_ENCRYPTION,
        "cty": CONTENT_TYPE,
        "p2c": iterations,
        "p2s": urlsafe_b64encode(secrets.token_bytes(16)).decode("ascii"),
    }
    payload = json.dumps(key.as_dict(private=True), separators=(",", ":"))
    return jwe.encrypt_compact(protected, payload, _password_key(password), registry=_REGISTRY)


def _password_key(password: bytes) -> jwk.OctKey:
    # Built directly rather than with OctKey.import_key, which warns about keys shorter than
    # 112 bits: a PBES2 password is stretched by the KDF and is not used as a key itself.
    return jwk.OctKey(password, password)


def _check_p2c(value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("must be an integer")
    if not MIN_ITERATIONS <= value <= MAX_ITERATIONS:
        raise ValueError(f"must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}")


class _StepPBES2(PBES2HSAlgKeyEncryption):
    # joserfc refuses p2c above 300000, below step's 600000; only the bounds differ.
    more_header_registry: HeaderRegistryDict = {  # noqa: RUF012 (read-only, as upstream)
        "p2s": HeaderParameter("PBES2 Salt Input", "str", True),
        "p2c": HeaderParameter("PBES2 Count", _check_p2c, True),
    }


class _ProvisionerKeyRegistry(JWERegistry):
    # A class attribute of its own, so joserfc's process-wide registry is left untouched
    # and nothing but step's two algorithms is accepted.
    algorithms = {  # noqa: RUF012
        "alg": {KEY_ENCRYPTION: _StepPBES2(256, AESAlgKeyWrapping(128))},
        "enc": {CONTENT_ENCRYPTION: GCMEncModel(256)},
        "zip": {},
    }


_REGISTRY = _ProvisionerKeyRegistry(algorithms=[KEY_ENCRYPTION, CONTENT_ENCRYPTION])
