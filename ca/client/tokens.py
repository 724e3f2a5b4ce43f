"""JWK one-time tokens, minted exactly as step's CLI mints them (`step ca token`).

The provisioner comes from the CA's `/provisioners` listing (all pages); its private key is
the password-encrypted JWE from that listing or from `/provisioners/{kid}/encrypted-key`.
Minting itself (`token_claims`, `sign_token`) is a pure function of its inputs, the clock
included.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwk, jws
from joserfc.errors import JoseError, SecurityWarning

from ca.client.session import check_response
from ca.durations import parse_time_duration
from ca.errors import BadRequest, ConfigError, PasswordError
from ca.passwords import is_interactive, obtain_password
from ca.provisioners.jwk_keys import decrypt_provisioner_key, thumbprint

__all__ = [
    "DEFAULT_LIFETIME",
    "Provisioner",
    "ProvisionerSigner",
    "choose_provisioner",
    "csr_fingerprint",
    "list_provisioners",
    "load_signer",
    "sign_audience",
    "sign_token",
    "token_claims",
    "token_validity",
]

DEFAULT_LIFETIME = timedelta(minutes=5)
# step CLI's bounds (`token.WithValidity`): a token lives 10 s to 1 h and starts within 30 min.
MIN_LIFETIME = timedelta(seconds=10)
MAX_LIFETIME = timedelta(hours=1)
MAX_START_DELAY = timedelta(minutes=30)
MAX_PAGES = 1000

_EC_ALGS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_ALGS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)


@dataclass(frozen=True)
class Provisioner:
    """One entry of `/provisioners`, as much of it as a token needs."""

    name: str
    type: str
    kid: str
    public_jwk: dict[str, Any]
    encrypted_key: str | None


def sign_audience(ca_url: str) -> str:
    """step CLI's audience for an X.509 sign token: a single string, not a list."""
    return f"{ca_url}/1.0/sign"


def csr_fingerprint(csr_der: bytes) -> str:
    """`cnf.x5rt#S256`: base64url (no padding) of the CSR's DER SHA-256."""
    return base64.urlsafe_b64encode(hashlib.sha256(csr_der).digest()).rstrip(b"=").decode()


# -- provisioners ------------------------------------------------------------------------


def list_provisioners(client: httpx.Client) -> list[dict[str, Any]]:
    """Every provisioner, following `nextCursor` until the CA says there are no more."""
    found: list[dict[str, Any]] = []
    cursor = ""
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        params = {"cursor": cursor} if cursor else {}
        body = check_response(client.get("/provisioners", params=params))
        items = body.get("provisioners") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ConfigError("the CA's /provisioners answer has no provisioners list")
        found.extend(item for item in items if isinstance(item, dict))
        cursor = str(body.get("nextCursor") or "")
        if not cursor:
            return found
        if cursor in seen:
            raise ConfigError("the CA's /provisioners pagination loops")
        seen.add(cursor)
    raise ConfigError(f"the CA lists more than {MAX_PAGES} pages of provisioners")


def choose_provisioner(items: list[dict[str, Any]], name: str | None) -> Provisioner:
    """The named provisioner, or the only JWK one; errors name the candidates."""
    jwks = [p for p in items if str(p.get("type", "")).upper() == "JWK"]
    if name is not None:
        matches = [p for p in items if p.get("name") == name]
        if not matches:
            listed = ", ".join(f"{p.get('name')} ({p.get('type')})" for p in items) or "none"
            raise ConfigError(f"the CA has no provisioner named {name!r}; it has: {listed}")
        jwk_matches = [p for p in matches if p in jwks]
        if not jwk_matches:
            raise ConfigError(
                f"provisioner {name!r} is a {matches[0].get('type')} provisioner: "
                "only JWK provisioners mint tokens here"
            )
        chosen = jwk_matches[0]
    elif len(jwks) == 1:
        chosen = jwks[0]
    elif not jwks:
        raise ConfigError("the CA has no JWK provisioner")
    else:
        names = ", ".join(str(p.get("name")) for p in jwks)
        raise ConfigError(
            f"the CA has several JWK provisioners ({names}): choose one with --provisioner"
        )
    key = chosen.get("key")
    if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
        raise ConfigError(f"provisioner {chosen.get('name')!r} has no public key with a kid")
    encrypted = chosen.get("encryptedKey")
    return Provisioner(
        name=str(chosen.get("name")),
        type="JWK",
        kid=key["kid"],
        public_jwk=key,
        encrypted_key=encrypted if isinstance(encrypted, str) and encrypted else None,
    )


def fetch_encrypted_key(client: httpx.Client, provisioner: Provisioner) -> str:
    if provisioner.encrypted_key:
        return provisioner.encrypted_key
    body = check_response(client.get(f"/provisioners/{provisioner.kid}/encrypted-key"))
    key = body.get("key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key:
        raise ConfigError(f"the CA has no encrypted key for provisioner {provisioner.name!r}")
    return key


@dataclass(frozen=True)
class ProvisionerSigner:
    """A decrypted provisioner key, ready to sign tokens."""

    name: str
    kid: str
    alg: str
    key: jwk.Key

    def token(self, claims: dict[str, Any]) -> str:
        return sign_token(claims, key=self.key, kid=self.kid, alg=self.alg)


def load_signer(
    client: httpx.Client, *, name: str | None, password_file: Path | None
) -> ProvisionerSigner:
    """Find the provisioner, fetch its encrypted key if needed, decrypt it."""
    provisioner = choose_provisioner(list_provisioners(client), name)
    encrypted = fetch_encrypted_key(client, provisioner)
    what = f"provisioner '{provisioner.name}'"
    if password_file is None and not is_interactive():
        raise PasswordError(
            f"no password for {what}: give --provisioner-password-file or run on a terminal"
        )
    password, _ = obtain_password(password_file, what=what, new=False)
    key = decrypt_provisioner_key(encrypted, password, name=provisioner.name)
    if key.thumbprint() != thumbprint(provisioner.public_jwk):
        raise ConfigError(f"the encrypted key of {what} does not match its public key")
    return ProvisionerSigner(provisioner.name, provisioner.kid, signing_algorithm(key), key)


def signing_algorithm(key: jwk.Key) -> str:
    """The key's own `alg` if it names one, else the usual one for its type and curve."""
    params = key.as_dict(private=False)
    alg = params.get("alg")
    if isinstance(alg, str) and alg in _ALGS:
        return alg
    match params.get("kty"):
        case "EC":
            crv = str(params.get("crv"))
            if crv in _EC_ALGS:
                return _EC_ALGS[crv]
            raise ConfigError(f"provisioner key curve {crv} is not supported")
        case "OKP":
            return "EdDSA"
        case "RSA":
            return "RS256"
    raise ConfigError(f"provisioner key type {params.get('kty')} is not supported")


# -- the token ---------------------------------------------------------------------------


def token_validity(
    now: datetime, *, not_before: str = "", not_after: str = ""
) -> tuple[datetime, datetime]:
    """(nbf, exp) of a token: times or durations from now; default now and nbf + 5 min."""
    start = _moment(not_before, now, "--not-before") or now
    end = _moment(not_after, now, "--not-after") or start + DEFAULT_LIFETIME
    if end <= start:
        raise BadRequest("the token's not-after must be after its not-before")
    if end - start < MIN_LIFETIME:
        raise BadRequest("a token must be valid for at least 10s")
    if end - start > MAX_LIFETIME:
        raise BadRequest("a token must not be valid for more than 1h")
    if start > now + MAX_START_DELAY:
        raise BadRequest("a token's not-before must be within 30m from now")
    return start, end


def _moment(text: str, now: datetime, flag: str) -> datetime | None:
    try:
        value = parse_time_duration(text)
    except BadRequest as exc:
        raise BadRequest(f"{flag}: {exc.message}") from None
    if value is None:
        return None
    return value if isinstance(value, datetime) else now + value


def token_claims(
    *,
    issuer: str,
    subject: str,
    audience: str,
    sans: list[str] | None,
    root_der: bytes,
    now: datetime,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    csr_der: bytes | None = None,
    jti: str | None = None,
) -> dict[str, Any]:
    """The claims of a JWK sign token, as `step ca token` writes them."""
    if not subject:
        raise BadRequest("the token subject must not be empty")
    start = not_before or now
    end = not_after or start + DEFAULT_LIFETIME
    claims: dict[str, Any] = {
        "aud": audience,
        "exp": int(end.timestamp()),
        "iat": int(now.timestamp()),
        "iss": issuer,
        "jti": jti or secrets.token_hex(32),
        "nbf": int(start.timestamp()),
        "sans": list(sans) if sans else [subject],
        "sha": hashlib.sha256(root_der).hexdigest(),
        "sub": subject,
    }
    if csr_der is not None:
        claims["cnf"] = {"x5rt#S256": csr_fingerprint(csr_der)}
    return claims


def sign_token(claims: dict[str, Any], *, key: jwk.Key, kid: str, alg: str) -> str:
    """A compact JWS with step's header: `{"alg","kid","typ":"JWT"}`."""
    header = {"alg": alg, "kid": kid, "typ": "JWT"}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    try:
        with warnings.catch_warnings():
            # joserfc flags "EdDSA" as superseded by RFC 9864; step and step-ca still use it.
            warnings.simplefilter("ignore", SecurityWarning)
            return jws.serialize_compact(header, payload, key, algorithms=[alg])
    except (JoseError, ValueError) as exc:
        raise ConfigError(f"cannot sign the token with {alg}: {exc}") from exc
