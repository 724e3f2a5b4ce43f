"""The client's side of the SSH CA: key files, SSH tokens, and the requests that use them.

Sign tokens are step's JWK one-time tokens with a `step.ssh` claim; renew, rekey (and
optionally revoke) tokens are SSHPOP tokens, signed by the key of the certificate they
carry in their `sshpop` header. Minting is a pure function of its inputs, the clock included.
"""

from __future__ import annotations

import base64
import json
import secrets
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from ca.client.session import check_response
from ca.errors import BadRequest, ConfigError
from ca.ssh.certificates import parse_certificate, parse_public_key

__all__ = [
    "certificate_from",
    "certificate_path",
    "post_ssh",
    "read_certificate",
    "read_private_key",
    "read_public_key",
    "ssh_sign_claims",
    "sshpop_token",
]

DEFAULT_LIFETIME = timedelta(minutes=5)


def certificate_path(public_key_file: Path) -> Path:
    """Where OpenSSH looks for a key's certificate: `id_ecdsa.pub` → `id_ecdsa-cert.pub`."""
    name = public_key_file.name
    stem = name[: -len(".pub")] if name.endswith(".pub") else name
    return public_key_file.with_name(f"{stem}-cert.pub")


def read_public_key(path: Path) -> str:
    """The std-base64 wire blob of an `authorized_keys`-style public key file."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the public key {path}: {exc}") from exc
    try:
        parse_public_key(text)
    except BadRequest as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    return text.split()[1] if len(text.split()) >= 2 else text


def read_certificate(path: Path) -> str:
    """The `-cert.pub` line of an SSH certificate file."""
    try:
        text = path.read_text().strip()
        parse_certificate(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the certificate {path}: {exc}") from exc
    except BadRequest as exc:
        raise ConfigError(f"{path}: {exc.message}") from None
    return text


def read_private_key(path: Path) -> Any:
    """An unencrypted OpenSSH or PEM private key (as `ssh-keygen -N ''` writes them)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the private key {path}: {exc.strerror}") from exc
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            return serialization.load_ssh_private_key(data, password=None)
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted private key: {exc}") from None


def ssh_sign_claims(
    base: dict[str, Any],
    *,
    cert_type: str,
    key_id: str,
    principals: list[str],
    valid_after: str = "",
    valid_before: str = "",
) -> dict[str, Any]:
    """A JWK sign token's claims plus step's `step.ssh` options."""
    claims = dict(base)
    claims["step"] = {
        "ssh": {
            "certType": cert_type,
            "keyID": key_id,
            "principals": principals,
            "validAfter": valid_after,
            "validBefore": valid_before,
        }
    }
    return claims


def _jose_key(private_key: Any) -> tuple[Any, str]:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if private_key.curve.name not in algs:
            raise ConfigError(f"EC curve {private_key.curve.name} cannot sign tokens")
        return ECKey.import_key(private_key), algs[private_key.curve.name]
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return OKPKey.import_key(private_key), "EdDSA"
    if isinstance(private_key, rsa.RSAPrivateKey):
        return RSAKey.import_key(private_key), "RS256"
    raise ConfigError(f"{type(private_key).__name__} keys cannot sign SSHPOP tokens")


def sshpop_token(
    certificate_line: str,
    private_key: Any,
    *,
    audience: str,
    subject: str,
    now: datetime,
    issuer: str = "sshpop",
) -> str:
    """An SSHPOP token: the certificate in the header, signed by the certificate's key."""
    key, alg = _jose_key(private_key)
    blob = certificate_line.split()[1]
    header = {"alg": alg, "typ": "JWT", "sshpop": blob}
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "jti": secrets.token_hex(32),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + DEFAULT_LIFETIME).timestamp()),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            return jws.serialize_compact(
                header,
                json.dumps(claims, separators=(",", ":")).encode(),
                key,
                # `sshpop` is step's private header parameter.
                registry=jws.JWSRegistry(algorithms=[alg], strict_check_header=False),
            )
    except (JoseError, ValueError) as exc:
        raise ConfigError(f"cannot sign the SSHPOP token: {exc}") from exc


def post_ssh(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST an SSH request; return the JSON answer (or raise the CA's error)."""
    answer = check_response(http.post(path, json=body), expected=(200, 201))
    if not isinstance(answer, dict):
        raise ConfigError(f"the CA answered {path} with something that is not a JSON object")
    return answer


def certificate_from(answer: dict[str, Any]) -> str:
    """The `-cert.pub` line of a `{"crt": "<base64>"}` answer."""
    crt = answer.get("crt")
    if not isinstance(crt, str) or not crt:
        raise ConfigError("the CA's answer has no certificate")
    try:
        blob = base64.b64decode(crt, validate=True)
        kind = blob[4 : 4 + int.from_bytes(blob[:4], "big")].decode("ascii")
        certificate = parse_certificate(f"{kind} {crt}")
    except (ValueError, BadRequest) as exc:
        raise ConfigError(f"the CA sent a malformed SSH certificate: {exc}") from None
    return certificate.public_bytes().decode("ascii").strip()
