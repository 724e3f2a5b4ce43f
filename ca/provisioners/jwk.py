"""JWK provisioner: step-ca's one-time tokens (OTT) and what they authorize.

The server reads a token in three steps, all pure (the clock is an argument):

1. `peek` decodes it without trusting it, to find the provisioner by `iss` and `kid`;
2. `verify_token` checks it as step-ca does (`authority/provisioner/jwk.go authorizeToken`);
3. `authorize_csr` checks the certificate request against it (`jwk.go AuthorizeSign`) and
   returns the names the certificate will carry.

Every refusal is a `CAError` whose message is precise enough for an operator's log; the
HTTP layer decides what the client sees.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwk
from joserfc.errors import JoseError

from ca.errors import AuthError, BadRequest, ConfigError, PolicyError
from ca.keys.files import MIN_RSA_BITS, PublicKey
from ca.provisioners.jwk_keys import thumbprint
from ledger.canonical import MalformedJSON, NotCanonical, canonical_json, parse_untrusted

__all__ = [
    "SAN",
    "JWKProvisioner",
    "UnverifiedToken",
    "VerifiedToken",
    "audience_matches",
    "audiences",
    "authorize_csr",
    "peek",
    "split_sans",
    "verify_token",
]

LEGACY_AUDIENCE = "step-certificate-authority"
DEFAULT_LEEWAY = timedelta(minutes=1)

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CSR_CURVES = frozenset(_EC_ALGORITHMS)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_URL_AUTHORITY = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#]*)(?P<rest>.*)"
)
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::\d*)?")
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
    _key: PublicKey = field(init=False, repr=False, compare=False)
    _algorithms: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = _public_key(self.public_jwk, self.name)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_algorithms", _algorithms_for(key, self.name))

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
class UnverifiedToken:
    """A compact JWS decoded but not verified: only good for finding its provisioner."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    raw: str


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


def audiences(dns_names: Iterable[str], op: str = "sign") -> frozenset[str]:
    """The audiences step-ca accepts for `op` ("sign", "revoke", "renew", "ssh/sign"...)."""
    accepted = {LEGACY_AUDIENCE} if op in ("sign", "revoke") else set()
    for name in dns_names:
        host = f"[{name}]" if _is_ipv6(name) else name
        accepted |= {f"https://{host}/1.0/{op}", f"https://{host}/{op}"}
    return frozenset(accepted)


def audience_matches(token_aud: str | list[str], accepted: frozenset[str]) -> bool:
    """True if any token audience is accepted, exactly or once its port is dropped."""
    return _matching_audience(token_aud, accepted) is not None


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
    alg = _check_algorithm(header.get("alg"), provisioner)
    if "crit" in header:
        raise AuthError("token has critical header parameters, which are not supported")
    if header.get("kid") != provisioner.kid:
        raise AuthError(f"token kid does not match provisioner '{provisioner.name}'")
    _verify_signature(token, alg, provisioner._key)

    if claims.get("iss") != provisioner.name:
        raise AuthError(
            f"token issuer {_show(claims.get('iss'))} is not provisioner '{provisioner.name}'"
        )
    aud = claims.get("aud")
    audience = _matching_audience(aud, accepted_audiences) if isinstance(aud, (str, list)) else None
    if audience is None:
        raise AuthError(f"token audience {_show(aud)} is not accepted by this CA")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthError("token subject ('sub') is missing or empty")

    expires = _numeric_date(claims, "exp")
    if expires is None:
        raise AuthError("token has no expiry ('exp')")
    not_before = _numeric_date(claims, "nbf")
    issued_at = _numeric_date(claims, "iat")
    if now > expires + leeway:
        raise AuthError("token expired")
    if not_before is not None and now + leeway < not_before:
        raise AuthError("token not yet valid")
    if issued_at is not None and now + leeway < issued_at:
        raise AuthError("token issued in the future")
    # `iat` has whole seconds: compare with the start's second, or a token minted in the
    # second the CA started would be refused.
    if issued_at is not None and issued_at < ca_started.replace(microsecond=0):
        raise AuthError("token issued before the bootstrap of certificate authority")

    return VerifiedToken(
        token_id=_token_id(claims, token),
        subject=subject,
        sans=_sans(claims, subject),
        issuer=provisioner.name,
        audience=audience,
        issued_at=issued_at,
        not_before=not_before,
        expires=expires,
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
        if _b64url(hashlib.sha256(der).digest()) != token.csr_fingerprint:
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


def _algorithms_for(key: PublicKey, name: str) -> frozenset[str]:
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS
    if isinstance(key, ed25519.Ed25519PublicKey):
        return frozenset({"EdDSA"})
    if key.curve.name not in _EC_ALGORITHMS:
        raise ConfigError(f"provisioner '{name}' key is on unsupported curve {key.curve.name}")
    return frozenset({_EC_ALGORITHMS[key.curve.name]})


# -- token parts --------------------------------------------------------------------------


def _b64url_decode(segment: str) -> bytes:
    if not _B64URL.fullmatch(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


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


def _check_algorithm(alg: Any, provisioner: JWKProvisioner) -> str:
    if not isinstance(alg, str) or not alg:
        raise AuthError("malformed token: the header has no 'alg'")
    if alg.lower() == "none":
        raise AuthError("token algorithm 'none' is refused: tokens must be signed")
    if alg.upper().startswith("HS"):
        raise AuthError(f"token algorithm {_show(alg)} is refused: HMAC cannot use a public key")
    if alg not in provisioner.algorithms:
        expected = ", ".join(sorted(provisioner.algorithms))
        raise AuthError(
            f"token algorithm {_show(alg)} does not fit the provisioner key ({expected})"
        )
    return alg


def verify_signed_by_key(token: str, header: Mapping[str, Any], key: Any, what: str) -> None:
    """Check a token signed by a certificate's own key (x5cInsecure renewal, SSHPOP): an
    algorithm fitting the key, no critical headers, a valid signature; AuthError otherwise."""
    alg = header.get("alg")
    try:
        allowed = _algorithms_for(key, what)
    except (ConfigError, AttributeError):
        raise AuthError(f"the {what}'s key type cannot sign tokens") from None
    if not isinstance(alg, str) or alg not in allowed:
        raise AuthError(f"token algorithm {alg!r} does not fit the certificate's key")
    if "crit" in header:
        raise AuthError("token has critical header parameters, which are not supported")
    try:
        _verify_signature(token, alg, key)
    except AuthError:
        raise AuthError("token signature does not verify with the certificate's key") from None


def _verify_signature(token: str, alg: str, key: PublicKey) -> None:
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
        elif alg.startswith("PS"):
            # go-jose verifies PSS with any salt length; so does step-ca.
            digest = _HASHES[alg[2:]]()
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=padding.PSS.AUTO)
            key.verify(signature, message, pss, digest)
        else:
            key.verify(signature, message, padding.PKCS1v15(), _HASHES[alg[2:]]())
    except (InvalidSignature, ValueError, binascii.Error) as err:
        raise AuthError("token signature does not verify with the provisioner key") from err


def _numeric_date(claims: Mapping[str, Any], name: str) -> datetime | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AuthError(f"malformed token: '{name}' is not a number")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, ValueError, OSError) as err:
        raise AuthError(f"malformed token: '{name}' is out of range") from err


def _token_id(claims: Mapping[str, Any], token: str) -> str:
    jti = claims.get("jti")
    if jti is not None and not isinstance(jti, str):
        raise AuthError("malformed token: 'jti' is not a string")
    return jti or hashlib.sha256(token.encode("utf-8")).hexdigest()


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


def _is_ipv6(name: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(name), ipaddress.IPv6Address)
    except ValueError:
        return False


def _matching_audience(token_aud: Any, accepted: frozenset[str]) -> str | None:
    candidates = [token_aud] if isinstance(token_aud, str) else token_aud
    for aud in candidates:
        # A fragment names another provisioner type's lookup (x5c, sshpop...), never a JWK.
        if not isinstance(aud, str) or "#" in aud:
            continue
        if aud in accepted or _without_port(aud) in accepted:
            return aud
    return None


def _without_port(url: str) -> str:
    match = _URL_AUTHORITY.fullmatch(url)
    host = _HOST_PORT.fullmatch(match["netloc"]) if match else None
    if match is None or host is None:
        return url
    return match["scheme"].lower() + host["host"] + match["rest"]


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
