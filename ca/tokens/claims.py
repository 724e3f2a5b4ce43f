"""The registered JWT claims, checked once for every kind of token: `iss`, `aud`, `sub`,
`exp`, `nbf`, `iat` (with step-ca's one-minute leeway) and `jti`, the single-use key.

What differs between token kinds is only *which* issuers and subjects are acceptable and
whether an audience may carry a `#type/name` fragment; the checks themselves are these.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ca.errors import AuthError

LEGACY_AUDIENCE = "step-certificate-authority"
DEFAULT_LEEWAY = timedelta(minutes=1)
RENEW_TOKEN_ISSUER = "step-ca-client/1.0"  # noqa: S105 - a JWT issuer, not a password
"""The `iss` of step's renewal tokens (`step ca renew --mtls=false`)."""

_URL_AUTHORITY = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#]*)(?P<rest>.*)"
)
_HOST_PORT = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*)(?::\d*)?")


@dataclass(frozen=True)
class Registered:
    """The registered claims of a token that passed `check_registered`."""

    token_id: str
    issuer: str
    subject: str
    audience: str
    expires: datetime
    not_before: datetime | None
    issued_at: datetime | None


def check_registered(
    token: str,
    claims: Mapping[str, Any],
    *,
    accepted_audiences: frozenset[str],
    now: datetime,
    issuers: Collection[str] | None = None,
    subject: str | None = None,
    audience_fragments: bool = False,
    ca_started: datetime | None = None,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> Registered:
    """Check the registered claims; AuthError says which one is refused.

    `issuers` lists the acceptable `iss` values (None: any non-empty string); `subject` is
    the only acceptable `sub` (None: any non-empty string). With `audience_fragments`, an
    audience's `#type/name` fragment (step's SSHPOP and x5c lookups) is ignored; without,
    such an audience never matches. With `ca_started`, a token issued before the CA
    started is refused (step-ca's rule for one-time tokens).
    """
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise AuthError("token issuer ('iss') is missing")
    if issuers is not None and issuer not in issuers:
        raise AuthError(f"token issuer {_show(issuer)} is not accepted here")
    aud = claims.get("aud")
    audience = (
        matching_audience(aud, accepted_audiences, fragments=audience_fragments)
        if isinstance(aud, (str, list))
        else None
    )
    if audience is None:
        raise AuthError(f"token audience {_show(aud)} is not accepted by this CA")
    sub = claims.get("sub")
    if subject is not None and sub != subject:
        raise AuthError("token subject is not the certificate's common name")
    if not isinstance(sub, str) or (subject is None and not sub):
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
    if (
        ca_started is not None
        and issued_at is not None
        and issued_at < ca_started.replace(microsecond=0)
    ):
        raise AuthError("token issued before the bootstrap of certificate authority")
    return Registered(
        token_id=token_id(claims, token),
        issuer=issuer,
        subject=sub,
        audience=audience,
        expires=expires,
        not_before=not_before,
        issued_at=issued_at,
    )


def token_id(claims: Mapping[str, Any], token: str) -> str:
    """The token's single-use key: its `jti`, or the SHA-256 of the token without one."""
    jti = claims.get("jti")
    if jti is not None and not isinstance(jti, str):
        raise AuthError("malformed token: 'jti' is not a string")
    return jti or hashlib.sha256(token.encode("utf-8")).hexdigest()


# -- audiences -----------------------------------------------------------------------------


def audiences(dns_names: Iterable[str], op: str = "sign") -> frozenset[str]:
    """The audiences step-ca accepts for `op` ("sign", "revoke", "renew", "ssh/sign"...)."""
    accepted = {LEGACY_AUDIENCE} if op in ("sign", "revoke") else set()
    for name in dns_names:
        host = f"[{name}]" if _is_ipv6(name) else name
        accepted |= {f"https://{host}/1.0/{op}", f"https://{host}/{op}"}
    return frozenset(accepted)


def audience_matches(token_aud: str | list[str], accepted: frozenset[str]) -> bool:
    """True if any token audience is accepted, exactly or once its port is dropped."""
    return matching_audience(token_aud, accepted) is not None


def matching_audience(
    token_aud: Any, accepted: frozenset[str], *, fragments: bool = False
) -> str | None:
    """The first of the token's audiences that is accepted (exactly or without its port)."""
    candidates = [token_aud] if isinstance(token_aud, str) else token_aud
    for aud in candidates:
        if not isinstance(aud, str):
            continue
        if "#" in aud:
            # A fragment names a provisioner type's lookup (x5c, sshpop…), never a JWK's.
            if not fragments:
                continue
            aud = aud.split("#", 1)[0]
        if aud in accepted or _without_port(aud) in accepted:
            return aud
    return None


def _without_port(url: str) -> str:
    match = _URL_AUTHORITY.fullmatch(url)
    host = _HOST_PORT.fullmatch(match["netloc"]) if match else None
    if match is None or host is None:
        return url
    return match["scheme"].lower() + host["host"] + match["rest"]


def _is_ipv6(name: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(name), ipaddress.IPv6Address)
    except ValueError:
        return False


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


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
