"""JWK provisioner: step-ca's one-time tokens (OTT) and what they authorize.

The server reads a token in three steps, all pure (the clock is an argument):

1. `ca.tokens.peek` decodes it without trusting it, to find the provisioner by `iss` and
   `kid`;
2. `verify_token` checks it as step-ca does (`authority/provisioner/jwk.go authorizeToken`):
   the key's algorithm and signature, then the registered claims (`ca.tokens`);
3. `authorize_csr` checks the certificate request against it (`jwk.go AuthorizeSign`) and
   returns the names the certificate will carry.

Every refusal is a `CAError` whose message is precise enough for an operator's log; the
HTTP layer decides what the client sees.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwk
from joserfc.errors import JoseError

from ca.errors import AuthError, BadRequest, ConfigError, PolicyError
from ca.keys.files import MIN_RSA_BITS, PublicKey
from ca.provisioners.jwk_keys import thumbprint
from ca.tokens import (
    DEFAULT_LEEWAY,
    UnverifiedToken,
    algorithms_for,
    b64url,
    check_algorithm,
    check_registered,
    peek,
    verify_signature,
)
from ledger.canonical import NotCanonical, canonical_json

__all__ = [
    "SAN",
    "JWKProvisioner",
    "VerifiedToken",
    "authorize_csr",
    "split_sans",
    "verify_token",
]

_CSR_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_SAN_LABELS = {"dns": "DNS names", "ip": "IP addresses", "email": "emails", "uri": "URIs"}


@dataclass(frozen=True)
class JWKProvisioner:
    """A JWK provisioner as the verifier needs it; build once and reuse (the key is parsed here)."""

    id: str
    name: str
    kid: str
    public_jwk: Mapping[str, Any]
    claims: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    public_key: PublicKey = field(init=False, repr=False, compare=False)
    _algorithms: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = _public_key(self.public_jwk, self.name)
        object.__setattr__(self, "public_key", key)
        object.__setattr__(self, "_algorithms", algorithms_for(key, f"provisioner '{self.name}'"))

    @classmethod
    def from_row(
        cls, id: str, name: str, key_json: str, claims_json: str, options_json: str
    ) -> JWKProvisioner:
        """Build from the JSON text columns of the `provisioners` projection."""
        try:
            public_jwk, claims, options = (
                json.loads(text) for text in (key_json, claims_json, options_json)
            )
        except ValueError as err:
            raise ConfigError(f"provisioner '{name}' is stored with invalid JSON: {err}") from err
        if not all(isinstance(value, dict) for value in (public_jwk, claims, options)):
            raise ConfigError(
                f"provisioner '{name}' is stored with a non-object key, claims or options"
            )
        kid = public_jwk.get("kid") or thumbprint(public_jwk)
        return cls(id=id, name=name, kid=kid, public_jwk=public_jwk, claims=claims, options=options)

    @property
    def algorithms(self) -> frozenset[str]:
        """The JWS algorithms this provisioner's key can produce."""
        return self._algorithms


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature and claims passed; `token_id` is its single-use key."""

    token_id: str
    subject: str
    sans: tuple[str, ...]
    issuer: str
    audience: str
    issued_at: datetime | None
    not_before: datetime | None
    expires: datetime
    csr_fingerprint: str | None
    claims: Mapping[str, Any]


@dataclass(frozen=True)
class SAN:
    """A subject alternative name typed the way step types them."""

    type: str  # "dns" | "ip" | "email" | "uri"
    value: str


def verify_token(
    token: str,
    provisioner: JWKProvisioner,
    *,
    accepted_audiences: frozenset[str],
    now: datetime,
    ca_started: datetime,
    leeway: timedelta = DEFAULT_LEEWAY,
    unverified: UnverifiedToken | None = None,
) -> VerifiedToken:
    """Verify a one-time token with step-ca's rules; raise AuthError with the reason.

    Datetimes are timezone-aware. Single use (by `token_id`) is the caller's to enforce.
    `unverified` is `peek(token)` when the caller has decoded it already.
    """
    if unverified is None or unverified.raw != token:
        unverified = peek(token)
    header, claims = unverified.header, unverified.claims
    alg = check_algorithm(header, provisioner.algorithms, "provisioner key")
    if header.get("kid") != provisioner.kid:
        raise AuthError(f"token kid does not match provisioner '{provisioner.name}'")
    verify_signature(token, alg, provisioner.public_key, "provisioner key")
    registered = check_registered(
        token,
        claims,
        accepted_audiences=accepted_audiences,
        now=now,
        issuers={provisioner.name},
        ca_started=ca_started,
        leeway=leeway,
    )
    return VerifiedToken(
        token_id=registered.token_id,
        subject=registered.subject,
        sans=_sans(claims, registered.subject),
        issuer=provisioner.name,
        audience=registered.audience,
        issued_at=registered.issued_at,
        not_before=registered.not_before,
        expires=registered.expires,
        csr_fingerprint=_csr_fingerprint(claims),
        claims=claims,
    )


MAX_SANS = 500
"""SANs a token may grant (and so a certificate carry): generous for any service, and a
bound on the name-policy work one request can ask for (SANs times policy entries)."""


def split_sans(sans: Iterable[str]) -> list[SAN]:
    """Type each name as step does (`x509util.SplitSANs`): ip, uri, email, else dns."""
    names = list(sans)
    if len(names) > MAX_SANS:
        raise BadRequest(f"{len(names)} SANs requested: at most {MAX_SANS} are allowed")
    return [_split_san(san) for san in names]


def authorize_csr(token: VerifiedToken, csr: x509.CertificateSigningRequest) -> list[SAN]:
    """Check a CSR against its token (step-ca's JWK AuthorizeSign); return the SANs to issue.

    The CSR's own signature is checked once, where it is parsed (`ca.authority.parse_csr`).
    """
    if token.csr_fingerprint is not None:
        der = csr.public_bytes(serialization.Encoding.DER)
        if b64url(hashlib.sha256(der).digest()) != token.csr_fingerprint:
            raise AuthError("token is bound to another certificate request")
    _check_csr_key(csr)

    allowed_cns = {token.subject, *token.sans}
    for attribute in csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
        if attribute.value not in allowed_cns:
            raise PolicyError(
                f"certificate request common name {_show(attribute.value)} is neither "
                "the token subject nor one of its sans"
            )

    granted = split_sans(token.sans)
    wanted = _csr_sans(csr)
    for kind, label in _SAN_LABELS.items():
        requested = wanted[kind]
        # step-ca checks each type only if the request has names of that type.
        if not requested:
            continue
        authorized = {san.value for san in granted if san.type == kind}
        if requested != authorized:
            raise PolicyError(
                f"certificate request {label} do not match the token: "
                + _difference(missing=authorized - requested, extra=requested - authorized)
            )
    return granted


# -- the provisioner key ------------------------------------------------------------------


def _public_key(public_jwk: Mapping[str, Any], name: str) -> PublicKey:
    try:
        # The key is recorded in the ledger as given: a member without a canonical form
        # (a float, say, which a JWK never needs) would fail only when it is appended.
        canonical_json(public_jwk)
    except NotCanonical as err:
        raise ConfigError(f"provisioner '{name}' has an invalid JWK: {err}") from None
    try:
        key = jwk.import_key(dict(public_jwk)).public_key
    except (ValueError, TypeError, KeyError, JoseError) as err:
        raise ConfigError(f"provisioner '{name}' has an invalid JWK: {err}") from err
    if not isinstance(key, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, rsa.RSAPublicKey)):
        raise ConfigError(f"provisioner '{name}' key must be EC, Ed25519 or RSA")
    return key


# -- token parts --------------------------------------------------------------------------


def _sans(claims: Mapping[str, Any], subject: str) -> tuple[str, ...]:
    sans = claims.get("sans")
    if not sans:  # absent, null or empty: step-ca uses the subject
        return (subject,)
    if not isinstance(sans, list) or not all(isinstance(san, str) and san for san in sans):
        raise AuthError("malformed token: 'sans' must be an array of non-empty strings")
    return tuple(sans)


def _csr_fingerprint(claims: Mapping[str, Any]) -> str | None:
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    fingerprint = cnf.get("x5rt#S256") if isinstance(cnf, dict) else None
    if not isinstance(fingerprint, str) or not fingerprint:
        raise AuthError("malformed token: 'cnf' must be an object with an 'x5rt#S256' string")
    return fingerprint


# -- audiences and names ------------------------------------------------------------------


def _normal_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)  # Go's net.IP treats ::ffff:a.b.c.d as a.b.c.d
    return str(ip)


def _split_san(san: str) -> SAN:
    try:
        ip = ipaddress.ip_address(san)
    except ValueError:
        ip = None
    if ip is not None and not getattr(ip, "scope_id", None):  # Go's ParseIP has no zones
        return SAN("ip", _normal_ip(ip))
    if _SCHEME.match(san):
        return SAN("uri", san)
    if "@" in san:
        return SAN("email", san)
    return SAN("dns", san.lower())


# -- certificate requests -----------------------------------------------------------------


def _check_csr_key(csr: x509.CertificateSigningRequest) -> None:
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as err:
        raise PolicyError("certificate request key type is not supported") from err
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise PolicyError(
                f"certificate request RSA key has {key.key_size} bits: "
                f"at least {MIN_RSA_BITS} are required"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CSR_CURVES:
            raise PolicyError(
                f"certificate request EC key on curve {key.curve.name} is not supported"
            )
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise PolicyError(
            f"certificate request key type {type(key).__name__} is not supported: "
            "use EC (P-256, P-384, P-521), Ed25519 or RSA"
        )


def _csr_sans(csr: x509.CertificateSigningRequest) -> dict[str, set[str]]:
    try:
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {kind: set() for kind in _SAN_LABELS}
    except ValueError as err:  # duplicate or undecodable extensions
        raise BadRequest(f"invalid csr: {err}") from err
    return {
        "dns": {name.lower() for name in names.get_values_for_type(x509.DNSName)},
        "ip": {_normal_ip(ip) for ip in names.get_values_for_type(x509.IPAddress)},  # type: ignore[arg-type]
        "email": set(names.get_values_for_type(x509.RFC822Name)),
        "uri": set(names.get_values_for_type(x509.UniformResourceIdentifier)),
    }


def _difference(*, missing: set[str], extra: set[str]) -> str:
    parts = []
    if missing:
        parts.append("missing " + ", ".join(sorted(missing)))
    if extra:
        parts.append("not in the token " + ", ".join(sorted(extra)))
    return "; ".join(parts)


def _show(value: Any) -> str:
    """A claim value for a log line: quoted, and short even if the token is hostile."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
