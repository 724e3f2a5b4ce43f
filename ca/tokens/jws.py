"""Compact JWS as the CA reads it: decode without trust, the algorithm policy, signatures.

Every token the CA accepts (JWK one-time tokens, x5cInsecure renewal tokens, SSHPOP, admin
tokens) is a compact JWS signed by an asymmetric key: `none` and HMAC are refused, the
algorithm must fit the key, critical headers are not supported.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ca.errors import AuthError, ConfigError
from ca.keys.files import PublicKey
from ledger.canonical import MalformedJSON, parse_untrusted

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class UnverifiedToken:
    """A compact JWS decoded but not verified: only good for finding who should verify it."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    raw: str


def peek(token: str) -> UnverifiedToken:
    """Decode a compact JWS's header and claims without verifying anything."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("malformed token: a compact JWS has three dot-separated parts")
    if not _B64URL.fullmatch(parts[2]):
        raise AuthError("malformed token: the signature is not base64url")
    header = _json_object(parts[0], "header")
    claims = _json_object(parts[1], "claims")
    return UnverifiedToken(header=header, claims=claims, raw=token)


def algorithms_for(key: PublicKey, owner: str) -> frozenset[str]:
    """The JWS algorithms `key` can produce; ConfigError naming `owner` for other keys."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGORITHMS.get(key.curve.name)
        if alg is None:
            raise ConfigError(f"{owner} key is on unsupported curve {key.curve.name}")
        return frozenset({alg})
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS
    if isinstance(key, ed25519.Ed25519PublicKey):
        return frozenset({"EdDSA"})
    raise ConfigError(f"{owner} key must be EC, Ed25519 or RSA")


def check_algorithm(header: Mapping[str, Any], allowed: frozenset[str], owner: str) -> str:
    """The header's `alg`, if signed (not none, not HMAC), fitting `allowed`, with no `crit`."""
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise AuthError("malformed token: the header has no 'alg'")
    if alg.lower() == "none":
        raise AuthError("token algorithm 'none' is refused: tokens must be signed")
    if alg.upper().startswith("HS"):
        raise AuthError(f"token algorithm {alg!r} is refused: HMAC cannot use a public key")
    if alg not in allowed:
        raise AuthError(
            f"token algorithm {alg!r} does not fit the {owner} ({', '.join(sorted(allowed))})"
        )
    if "crit" in header:
        raise AuthError("token has critical header parameters, which are not supported")
    return alg


def verify_signature(token: str, alg: str, key: PublicKey, owner: str) -> None:
    """The JWS signature over the token's first two parts; AuthError naming `owner`."""
    signing_input, _, signature_segment = token.rpartition(".")
    message = signing_input.encode("ascii")
    try:
        signature = _b64url_decode(signature_segment)
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            # JWS carries r‖s, each the curve's size in bytes; cryptography wants DER.
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise InvalidSignature
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(_HASHES[alg[2:]]()))
        elif isinstance(key, rsa.RSAPublicKey) and alg.startswith("PS"):
            # go-jose verifies PSS with any salt length; so does step-ca.
            digest = _HASHES[alg[2:]]()
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.AUTO)
            key.verify(signature, message, pss, digest)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), _HASHES[alg[2:]]())
        else:
            raise InvalidSignature
    except (InvalidSignature, ValueError, binascii.Error) as err:
        raise AuthError(f"token signature does not verify with the {owner}") from err


def verify_signed_by_key(token: str, header: Mapping[str, Any], key: Any, owner: str) -> None:
    """Check a token signed by a certificate's own key (x5cInsecure renewal, SSHPOP): an
    algorithm fitting the key, no critical headers, a valid signature; AuthError otherwise."""
    try:
        allowed = algorithms_for(key, owner)
    except (ConfigError, AttributeError):
        raise AuthError(f"the {owner}'s key type cannot sign tokens") from None
    alg = check_algorithm(header, allowed, "certificate's key")
    verify_signature(token, alg, key, "certificate's key")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    if not _B64URL.fullmatch(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(segment: str, what: str) -> dict[str, Any]:
    """A token part as JSON, read as strictly as a request body (`parse_untrusted`)."""
    try:
        value = parse_untrusted(_b64url_decode(segment))
    except MalformedJSON as err:
        raise AuthError(f"malformed token: the {what} is not JSON we accept: {err}") from None
    except (ValueError, binascii.Error) as err:
        raise AuthError(f"malformed token: the {what} is not base64url JSON") from err
    if not isinstance(value, dict):
        raise AuthError(f"malformed token: the {what} is not a JSON object")
    return value
