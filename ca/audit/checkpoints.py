"""Signed checkpoints: `{tree_size, root_hash, time, key_id}` signed by the ledger key.

The signed bytes are a fixed prefix and the canonical JSON of those four fields, so any
language can rebuild them. A checkpoint recorded as `ledger.checkpoint` at position p always
covers positions 1..p-1 (it is computed and appended under the ledger lock); exported to a
file kept away from the database operator, it proves later rewriting or truncation.

Signatures: ECDSA with SHA-256 (DER), Ed25519, or RSA PKCS#1 v1.5 with SHA-256, by key type.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from sqlalchemy import Connection

from ca.audit.errors import AuditError
from ca.keys.files import PrivateKey, PublicKey
from ca.keys.ids import key_id
from ledger import canonical_bytes, parse_time, reads
from ledger.rows import StoredRow
from projections import events as ev

STATEMENT_PREFIX = b"ledgerca checkpoint v1\n"
FILE_FORMAT = "ledgerca-checkpoint/1"
_FIELDS = ("tree_size", "root_hash", "time", "key_id", "signature")


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root_hash: str
    """Lowercase hex of the Merkle root of positions 1..tree_size."""
    time: str
    key_id: str
    signature: str
    """Base64 of the signature over `statement()`."""
    number: int = 0
    position: int = 0
    """Where the ledger recorded it (0: not known, e.g. a file without it)."""

    def statement(self) -> bytes:
        return statement(self.tree_size, self.root_hash, self.time, self.key_id)

    def to_file(self) -> dict[str, Any]:
        return {
            "format": FILE_FORMAT,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "time": self.time,
            "key_id": self.key_id,
            "signature": self.signature,
            "number": self.number,
            "position": self.position,
        }

    def event_data(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "time": self.time,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def statement(tree_size: int, root_hash: str, time: str, key: str) -> bytes:
    body = {"key_id": key, "root_hash": root_hash, "time": time, "tree_size": tree_size}
    return STATEMENT_PREFIX + canonical_bytes(body)


def sign(
    private: PrivateKey, *, tree_size: int, root: bytes, time: str, number: int = 0
) -> Checkpoint:
    ident = key_id(private.public_key())
    message = statement(tree_size, root.hex(), time, ident)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        signature = private.sign(message, ec.ECDSA(hashes.SHA256()))
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        signature = private.sign(message)
    else:
        signature = private.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return Checkpoint(
        tree_size, root.hex(), time, ident, base64.b64encode(signature).decode(), number
    )


def signature_valid(checkpoint: Checkpoint, public: PublicKey) -> bool:
    """True when `public` is the checkpoint's key and its signature over the statement holds."""
    if key_id(public) != checkpoint.key_id:
        return False
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        message = checkpoint.statement()
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, message)
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def require_valid(checkpoint: Checkpoint, public: PublicKey, *, what: str = "checkpoint") -> None:
    if key_id(public) != checkpoint.key_id:
        raise AuditError(
            f"the {what} is signed by key {checkpoint.key_id[:16]}…, not by the ledger key"
            f" {key_id(public)[:16]}…"
        )
    if not signature_valid(checkpoint, public):
        raise AuditError(f"the {what}'s signature does not verify: it was altered or forged")


def from_mapping(data: object, *, what: str) -> Checkpoint:
    """A checkpoint from parsed JSON (a file, an HTTP body, an event), or AuditError."""
    if not isinstance(data, dict) or any(name not in data for name in _FIELDS):
        raise AuditError(f"{what} is not a ledgerca checkpoint (needs {', '.join(_FIELDS)})")
    size, root, time, key, signature = (data[name] for name in _FIELDS)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise AuditError(f"{what}: tree_size must be a non-negative integer")
    for name, value, length in (("root_hash", root, 64), ("key_id", key, 64)):
        if not isinstance(value, str) or len(value) != length:
            raise AuditError(f"{what}: {name} must be {length} hex digits")
        try:
            bytes.fromhex(value)
        except ValueError:
            raise AuditError(f"{what}: {name} must be {length} hex digits") from None
    if not isinstance(time, str) or not isinstance(signature, str):
        raise AuditError(f"{what}: time and signature must be strings")
    try:
        parse_time(time)
    except ValueError:
        raise AuditError(f"{what}: time {time!r} is not a ledger time") from None
    number, position = data.get("number", 0), data.get("position", 0)
    return Checkpoint(
        size,
        root,
        time,
        key,
        signature,
        number if isinstance(number, int) else 0,
        position if isinstance(position, int) else 0,
    )


def read_file(path: Path) -> Checkpoint:
    try:
        text = path.read_text()
    except OSError as exc:
        raise AuditError(f"cannot read the checkpoint {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise AuditError(f"{path} is not a ledgerca checkpoint (not text)") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise AuditError(f"{path} is not a ledgerca checkpoint (not JSON)") from None
    return from_mapping(data, what=str(path))


def file_text(checkpoint: Checkpoint) -> str:
    return json.dumps(checkpoint.to_file(), indent=2, sort_keys=True) + "\n"


# -- checkpoints in the ledger ---------------------------------------------------------------


def _from_row(row: StoredRow) -> Checkpoint:
    recorded = from_mapping(json.loads(row.data), what=f"the checkpoint at position {row.position}")
    return Checkpoint(
        recorded.tree_size,
        recorded.root_hash,
        recorded.time,
        recorded.key_id,
        recorded.signature,
        int(row.version),
        int(row.position),
    )


def latest(connection: Connection, *, covering: int = 0) -> Checkpoint | None:
    """The newest recorded checkpoint (with `covering`, the oldest whose tree holds that
    position, or None)."""
    if covering:
        row = reads.first_of_stream_after(connection, ev.CHECKPOINT_STREAM, covering)
    else:
        row = reads.last_of_stream(connection, ev.CHECKPOINT_STREAM)
    return _from_row(row) if row is not None else None


def at_number(connection: Connection, number: int) -> Checkpoint | None:
    row = reads.stream_row(connection, ev.CHECKPOINT_STREAM, number)
    return _from_row(row) if row is not None else None
