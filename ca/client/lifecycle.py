"""Renew, rekey and revoke from the client side, as step's CLI does them.

* renewal over mTLS (the certificate and key in the TLS handshake, empty body), or with a
  step-style renewal token: a JWT signed by the certificate's key whose `x5cInsecure`
  header carries the chain — the way to renew behind a TLS-terminating proxy, or an
  expired certificate where the provisioner allows it;
* rekey over mTLS with a CSR for a new key of the same type;
* revocation with a JWK one-time token (`sub` = serial) or over mTLS (self-revocation).

The schedule of the renewal daemon (`renew_at`) is a pure function of the certificate,
the clock and a random source.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from ca.client.session import Session, _client, check_response, reaching
from ca.errors import BadRequest, ConfigError
from ca.keys.files import PrivateKey, write_private_file, write_public_file
from ca.tokens import RENEW_TOKEN_ISSUER

__all__ = [
    "RENEW_TOKEN_ISSUER",
    "Credentials",
    "load_credentials",
    "new_key_like",
    "normalize_serial",
    "rekey",
    "renew",
    "renew_at",
    "renew_token",
    "revoke",
    "save",
]

RENEW_TOKEN_LIFETIME = timedelta(minutes=5)
_EC_ALGS = {"secp256r1": ("ES256", hashes.SHA256), "secp384r1": ("ES384", hashes.SHA384),
            "secp521r1": ("ES512", hashes.SHA512)}  # fmt: skip


@dataclass(frozen=True)
class Credentials:
    """A certificate chain (leaf first) and its private key, read from CRT and KEY."""

    crt: Path
    key_file: Path
    chain: list[x509.Certificate]
    key: PrivateKey

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def serial(self) -> str:
        return str(self.leaf.serial_number)


def load_credentials(crt: Path, key_file: Path) -> Credentials:
    """Read CRT (PEM chain) and KEY (unencrypted PEM, as `ledgerca certificate` writes it)."""
    try:
        chain = x509.load_pem_x509_certificates(crt.read_bytes())
    except ValueError:
        raise ConfigError(f"{crt} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except TypeError:
        raise ConfigError(f"{key_file} is encrypted: renewal needs an unencrypted key") from None
    except ValueError:
        raise ConfigError(f"{key_file} holds no PEM private key") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey,
                            rsa.RSAPrivateKey)):  # fmt: skip
        raise ConfigError(f"{key_file}: only EC, Ed25519 and RSA keys are supported")
    if key.public_key() != chain[0].public_key():
        raise ConfigError(f"{key_file} is not the key of the certificate in {crt}")
    return Credentials(crt, key_file, chain, key)


def save(credentials: Credentials, chain: list[x509.Certificate], key: PrivateKey) -> None:
    """Replace CRT (and KEY if it changed), each atomically.

    The key goes first: a service that reloads when CRT changes then reads a matching pair.
    """
    if key is not credentials.key:
        write_private_file(
            credentials.key_file,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    write_public_file(
        credentials.crt, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    )


def normalize_serial(text: str) -> str:
    """Decimal digits, from a decimal or `0x` hexadecimal serial."""
    cleaned = text.strip()
    try:
        value = int(cleaned, 16) if cleaned.lower().startswith("0x") else int(cleaned, 10)
    except ValueError:
        raise BadRequest(
            f"{text!r} is not a serial number: give it in decimal or as 0x-prefixed hex"
        ) from None
    if value <= 0 or "_" in cleaned:
        raise BadRequest(f"{text!r} is not a serial number")
    return str(value)


# -- the renewal schedule ----------------------------------------------------------------


def renew_at(
    leaf: x509.Certificate,
    *,
    expires_in: timedelta | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """When to renew: when a third of the lifetime is left (or `expires_in`), minus a
    random jitter of up to a twentieth of the lifetime, so a fleet does not renew at once."""
    period = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    before_expiry = expires_in if expires_in is not None else period / 3
    jitter = period / 20 * (rng or random.SystemRandom()).random()
    return leaf.not_valid_after_utc - before_expiry - jitter


# -- requests ----------------------------------------------------------------------------


@contextmanager
def _mtls(session: Session, credentials: Credentials) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cadata=session.root_pem)
    try:
        context.load_cert_chain(credentials.crt, credentials.key_file)
    except ssl.SSLError as exc:
        raise ConfigError(f"cannot use {credentials.crt} for mTLS: {exc.reason}") from None
    with reaching(session.ca_url), _client(session.ca_url, context) as http:
        yield http


@contextmanager
def _plain(session: Session) -> Iterator[httpx.Client]:
    with reaching(session.ca_url), session.http() as http:
        yield http


def renew(
    session: Session, credentials: Credentials, *, mtls: bool, now: datetime
) -> list[x509.Certificate]:
    """Renew over mTLS, or with a renewal token (also used for an expired certificate,
    which the TLS handshake would refuse)."""
    if mtls and now < credentials.leaf.not_valid_after_utc:
        with _mtls(session, credentials) as http:
            response = http.post("/1.0/renew")
    else:
        token = renew_token(credentials, audience=f"{session.ca_url}/1.0/renew", now=now)
        with _plain(session) as http:
            response = http.post("/1.0/renew", headers={"Authorization": f"Bearer {token}"})
    return _chain(check_response(response, expected=(201,)), session, "renew")


def rekey(
    session: Session, credentials: Credentials, new_key: PrivateKey
) -> list[x509.Certificate]:
    """A certificate for `new_key`, authorized by the current one over mTLS."""
    common_names = credentials.leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(common_names[:1]))
    algorithm = None if isinstance(new_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(new_key, algorithm)
    body = {"csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii")}
    with _mtls(session, credentials) as http:
        response = http.post("/1.0/rekey", json=body)
    chain = _chain(check_response(response, expected=(201,)), session, "rekey")
    if chain[0].public_key() != new_key.public_key():
        raise ConfigError("the CA's rekeyed certificate does not carry the new key")
    return chain


def revoke(
    session: Session,
    serial: str,
    *,
    reason_code: int,
    reason: str,
    token: str | None = None,
    credentials: Credentials | None = None,
) -> None:
    """Revoke `serial` with a one-time token, or over mTLS with its own certificate."""
    body: dict[str, Any] = {
        "serial": serial,
        "reasonCode": reason_code,
        "reason": reason,
        "passive": True,
    }
    if token is not None:
        body["ott"] = token
        with _plain(session) as http:
            response = http.post("/1.0/revoke", json=body)
    elif credentials is not None:
        with _mtls(session, credentials) as http:
            response = http.post("/1.0/revoke", json=body)
    else:
        raise ConfigError("revocation needs a token or the certificate and its key")
    check_response(response, expected=(200,))


def new_key_like(key: PrivateKey) -> PrivateKey:
    """A fresh key of the same type and size (curve) as `key`."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ec.generate_private_key(key.curve)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=key.key_size)


# -- the renewal token -------------------------------------------------------------------


def renew_token(credentials: Credentials, *, audience: str, now: datetime) -> str:
    """step's renewal token: signed by the certificate's key, the chain in `x5cInsecure`."""
    leaf = credentials.leaf
    common_names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    claims = {
        "aud": audience,
        "exp": int((now + RENEW_TOKEN_LIFETIME).timestamp()),
        "iat": int(now.timestamp()),
        "iss": RENEW_TOKEN_ISSUER,
        "jti": secrets.token_hex(32),
        "nbf": int(now.timestamp()),
        "sub": str(common_names[0].value) if common_names else "",
    }
    alg = _algorithm(credentials.key)
    header = {
        "alg": alg,
        "typ": "JWT",
        "x5cInsecure": [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in credentials.chain
        ],
    }
    signing_input = f"{_b64url(_json(header))}.{_b64url(_json(claims))}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{_b64url(_sign(credentials.key, signing_input))}"


def _algorithm(key: PrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _EC_ALGS:
            raise ConfigError(f"EC curve {key.curve.name} cannot sign a renewal token")
        return _EC_ALGS[key.curve.name][0]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    return "RS256"


def _sign(key: PrivateKey, message: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        digest = _EC_ALGS[key.curve.name][1]
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(digest())))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")  # JWS wants r‖s
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _chain(body: Any, session: Session, what: str) -> list[x509.Certificate]:
    pems: Any = body.get("certChain") if isinstance(body, dict) else None
    if not pems and isinstance(body, dict):
        pems = [p for p in (body.get("crt"), body.get("ca")) if p]
    if not isinstance(pems, list) or not pems or not all(isinstance(p, str) for p in pems):
        raise ConfigError(f"the CA at {session.ca_url} answered /{what} without a certificate")
    try:
        return [x509.load_pem_x509_certificate(p.encode()) for p in pems]
    except ValueError:
        raise ConfigError(f"the CA at {session.ca_url} sent a malformed certificate") from None
