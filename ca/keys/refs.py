"""Key references: how an `authority.key_activated` event names where a private key lives.

Events carry references, never key material (DESIGN §2). A reference is a small JSON object:

    {"type": "file", "path": "secrets/intermediate_ca_key"}   an encrypted PKCS#8 file,
                                                              relative to the CA home
    {"type": "pkcs11", "uri": "pkcs11:token=…;object=…;id=…"}  a key in an HSM (RFC 7512);
                                                              module and PIN are local config
    {"type": "offline"}                                       not on this machine (a root)

`load_signer` turns a reference into a `cryptography` private-key object, whatever backs it, so
every signing path (certificates, CRLs, OCSP, SSH certificates, ledger checkpoints) is written
once against cryptography's key interfaces.
"""

from __future__ import annotations

from collections.abc import Mapping

from ca.errors import CAError, ConfigError, SignerError
from ca.home import Home
from ca.keys.files import PrivateKey, load_private_key
from ca.keys.pkcs11 import PKCS11Settings, load_key, pkcs11_ref

__all__ = ["file_ref", "is_local", "load_signer", "pkcs11_ref"]


def file_ref(path: str) -> dict[str, str]:
    """The reference of an encrypted key file at `path` (relative to the home)."""
    return {"type": "file", "path": path}


def is_local(home: Home, key_ref: Mapping[str, str]) -> bool:
    """True when this machine can sign with the referenced key."""
    if key_ref.get("type") == "file":
        return home.resolve(key_ref["path"]).exists()
    return key_ref.get("type") == "pkcs11"


def load_signer(
    home: Home,
    key_ref: Mapping[str, str],
    password: bytes,
    *,
    what: str,
    pkcs11: PKCS11Settings | None,
) -> PrivateKey:
    """The private key `key_ref` names, ready to sign; `what` names it in errors ("root key").

    A PKCS#11 key needs no password: its module and PIN file come from `pkcs11`, else from the
    `[pkcs11]` table of the home's config (or the URI's own module-path and pin-source).

    Raises ConfigError when the key cannot be found or read, PasswordError for a wrong
    password or an unreadable PIN file, SignerError for a reference this build cannot sign
    with or a token, key or PIN the HSM refuses.
    """
    kind = key_ref.get("type")
    if kind == "file":
        path = home.resolve(key_ref["path"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from exc
        return load_private_key(data, password, what=what)
    if kind == "pkcs11":
        try:
            return load_key(key_ref["uri"], pkcs11 or PKCS11Settings(), home.path)
        except CAError as exc:
            raise type(exc)(f"the {what}: {exc.message}") from exc
    raise SignerError(f"the {what} is referenced as {kind!r}: it cannot sign on this machine")
