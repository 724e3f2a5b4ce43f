"""Stable identifiers for keys, as the ledger names them."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization

from ca.keys.files import PublicKey


def spki_der(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(public_key: PublicKey) -> str:
    """Lowercase hex SHA-256 of the SubjectPublicKeyInfo: the same key, the same id."""
    return hashlib.sha256(spki_der(public_key)).hexdigest()


def public_pem(public_key: PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
