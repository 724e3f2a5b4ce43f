"""The ledger key: signs checkpoints, and nothing else.

It is separate from every CA key (a compromised intermediate cannot forge the audit trail,
and the ledger key cannot issue certificates). Like the intermediate it lives in a file
encrypted with the CA's password (0600, `secrets/ledger_key`) or behind a PKCS#11 URI, and
it is named in the ledger by `authority.key_activated` with role `ledger` and no
certificate: the public key and its id (SHA-256 of the SubjectPublicKeyInfo) are enough to
check a checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection, select

from ca.audit.errors import AuditError
from ca.errors import ConfigError
from ca.home import Home
from ca.keys.files import (
    PrivateKey,
    PublicKey,
    encrypt_private_key,
    generate_private_key,
    write_private_file,
)
from ca.keys.ids import key_id, public_pem
from ca.keys.pkcs11 import PKCS11Settings
from ca.keys.refs import file_ref, load_signer
from ledger import NewEvent
from projections import events as ev
from projections.authority_keys import authority_keys

ROLE = "ledger"
KEY_FILE = "secrets/ledger_key"


@dataclass(frozen=True)
class LedgerKey:
    """The active ledger key as the ledger names it."""

    key_id: str
    public_key: PublicKey
    key_ref: dict[str, str]


def activation_event(public: PublicKey, key_ref: dict[str, str]) -> NewEvent:
    ident = key_id(public)
    return NewEvent(
        ev.AUTHORITY_STREAM,
        ev.KeyActivated.TYPE,
        {
            "key_id": ident,
            "role": ROLE,
            "certificate": None,
            "public_key": public_pem(public),
            "key_ref": key_ref,
            "fingerprint": ident,
        },
    )


def create_key_file(
    home: Home, password: bytes, *, kty: str = "EC"
) -> tuple[PrivateKey, dict[str, str]]:
    """A new ledger key, encrypted with `password`, written 0600 at `secrets/ledger_key`."""
    path = home.resolve(KEY_FILE)
    if path.exists():
        raise ConfigError(f"{path} already exists: the ledger key is created once")
    key = generate_private_key(kty)
    write_private_file(path, encrypt_private_key(key, password))
    return key, file_ref(KEY_FILE)


def load_public_key(pem: str | bytes, *, what: str = "ledger public key") -> PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise AuditError(f"the {what} is not a PEM public key") from None
    if not isinstance(key, PublicKey):
        raise AuditError(f"the {what} is a {type(key).__name__}: not an EC, Ed25519 or RSA key")
    return key


def active_ledger_key(connection: Connection) -> LedgerKey | None:
    """The newest active key with role `ledger`, from the `authority_keys` projection."""
    row = connection.execute(
        select(authority_keys.c.key_id, authority_keys.c.public_key, authority_keys.c.key_ref)
        .where(authority_keys.c.role == ROLE, authority_keys.c.active.is_(True))
        .order_by(authority_keys.c.activated_position.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return LedgerKey(str(row.key_id), load_public_key(row.public_key), json.loads(row.key_ref))


def load_ledger_signer(
    home: Home, key: LedgerKey, password: bytes, *, pkcs11: PKCS11Settings | None
) -> PrivateKey:
    """The private ledger key, through `load_signer` (a key file or a PKCS#11 token)."""
    private = load_signer(home, key.key_ref, password, what="ledger key", pkcs11=pkcs11)
    if key_id(private.public_key()) != key.key_id:
        raise ConfigError(f"the key at {key.key_ref} is not the active ledger key")
    return private
