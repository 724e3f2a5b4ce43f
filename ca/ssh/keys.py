"""SSH CA keys: a user CA and a host CA, each an encrypted key file referenced by the ledger.

They are activated with `authority.key_activated` (roles `ssh_user`, `ssh_host`) exactly like
the intermediate: the event carries the public key (PEM), a key reference and the OpenSSH
SHA-256 fingerprint, never the key. Rotation activates a new key and retires the old one in
one append; every instance signs with the new key on its next request.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ca.errors import ConfigError
from ca.keys.files import (
    PrivateKey,
    PublicKey,
    encrypt_private_key,
    write_private_file,
    write_public_file,
)
from ca.keys.ids import key_id, public_pem
from ca.keys.refs import file_ref
from ledger import NewEvent
from projections.events import KeyActivated

__all__ = [
    "ROLES",
    "Role",
    "SSHKeyFiles",
    "activation_events",
    "fingerprint",
    "generate_ssh_key",
    "key_activated",
    "openssh_line",
    "ssh_key_events",
    "ssh_kty",
    "wire_b64",
    "write_ssh_key",
]

Role = Literal["ssh_user", "ssh_host"]
ROLES: tuple[Role, Role] = ("ssh_user", "ssh_host")
_FILE_STEM = {"ssh_user": "ssh_user_ca_key", "ssh_host": "ssh_host_ca_key"}


def generate_ssh_key(kty: str) -> PrivateKey:
    """Ed25519 ("OKP") or ECDSA P-256 ("EC"): the two key types OpenSSH CAs commonly use."""
    match kty.upper():
        case "EC":
            return ec.generate_private_key(ec.SECP256R1())
        case "OKP" | "ED25519":
            return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(f"SSH CA keys are EC (P-256) or OKP (Ed25519), not {kty!r}")


def openssh_line(public_key: PublicKey) -> str:
    """`ecdsa-sha2-nistp256 AAAA...`: the public key as authorized_keys and sshd read it."""
    return public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode("ascii")


def wire_b64(public_key: PublicKey) -> str:
    """The std-base64 wire blob step-ca puts in JSON (`/ssh/roots`)."""
    return openssh_line(public_key).split()[1]


def fingerprint(public_key: PublicKey) -> str:
    """OpenSSH's `SHA256:...` fingerprint, as `ssh-keygen -l` prints it."""
    blob = base64.b64decode(wire_b64(public_key))
    digest = base64.b64encode(hashlib.sha256(blob).digest()).rstrip(b"=").decode()
    return f"SHA256:{digest}"


def key_activated(role: Role, public_key: PublicKey, key_ref: Mapping[str, str]) -> KeyActivated:
    """The activation of an SSH CA key (no certificate)."""
    return KeyActivated(
        key_id=key_id(public_key),
        role=role,
        certificate=None,
        public_key=public_pem(public_key),
        key_ref=dict(key_ref),
        fingerprint=fingerprint(public_key),
    )


@dataclass(frozen=True)
class SSHKeyFiles:
    """Where one SSH CA key was written: its reference (relative to the home) and files."""

    role: Role
    public_key: PublicKey
    key_ref: dict[str, str]
    key_path: Path
    public_path: Path


def write_ssh_key(
    home_path: Path, role: Role, key: PrivateKey, password: bytes, *, suffix: str = ""
) -> SSHKeyFiles:
    """Write the encrypted key (0600) under `secrets/` and its `.pub` under `certs/`."""
    stem = _FILE_STEM[role] + suffix
    key_rel = f"secrets/{stem}"
    key_path = home_path / key_rel
    public_path = home_path / "certs" / f"{stem}.pub"
    if key_path.exists():
        raise ConfigError(f"{key_path} already exists")
    write_private_file(key_path, encrypt_private_key(key, password))
    public_key = key.public_key()
    write_public_file(public_path, (openssh_line(public_key) + "\n").encode())
    return SSHKeyFiles(role, public_key, file_ref(key_rel), key_path, public_path)


def activation_events(files: list[SSHKeyFiles]) -> list[NewEvent]:
    return [key_activated(f.role, f.public_key, f.key_ref).to_new_event() for f in files]


def ssh_kty(x509_kty: str) -> str:
    """The SSH CA key type for a CA whose X.509 keys are `x509_kty`: Ed25519 stays, else P-256."""
    return "OKP" if x509_kty.upper() == "OKP" else "EC"


def ssh_key_events(home_path: Path, password: bytes, x509_kty: str) -> list[NewEvent]:
    """New user and host CA keys written under `home_path`, and their activation events."""
    files = [
        write_ssh_key(home_path, role, generate_ssh_key(ssh_kty(x509_kty)), password)
        for role in ROLES
    ]
    return activation_events(files)
