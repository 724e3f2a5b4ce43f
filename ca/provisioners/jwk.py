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

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwk
from joserfc.errors import JoseError

from ca.errors import AuthError, BadRequest, ConfigError, PolicyError
from ca.keys.files import PublicKey
from ca.pki.claims import Claims
from ca.pki.csr import check_csr_key
from ca.pki.provisioner_extension import PROVISIONER_TYPES, ProvisionerExtension
from ca.pki.sans import SAN, normal_ip, split_sans
from ca.pki.serials import parse_serial
from ca.provisioners.base import (
    Context,
    ProvisionerRef,
    RevokeGrant,
    SignGrant,
    SSHSignGrant,
    Unsupported,
    authorize_renewal,
)
from ca.provisioners.jwk_keys import thumbprint
from ca.ssh.options import SSHOptions, merge_options, token_options
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
    "JWKProvisioner",
    "VerifiedToken",
    "authorize_csr",
    "verify_token",
]

_SAN_LABELS = {"dns": "DNS names", "ip": "IP addresses", "email": "emails", "uri": "URIs"}


@dataclass(frozen=True)
class JWKProvisioner(Unsupported):
    """A JWK provisioner: build once per state snapshot and reuse (the key is parsed here).

    It authorizes X.509 signing, renewal, rekey and revocation, and SSH signing and
    revocation, each with a one-time token signed by its key; SSH renewal and rekey need
    SSHPOP (`ca.provisioners.sshpop`), as in step-ca.
    """

    kind = "JWK"

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

    @property
    def ref(self) -> ProvisionerRef:
        return ProvisionerRef(self.id, self.name, "JWK")

    @functools.cached_property
    def parsed_claims(self) -> Claims:
        """Its claims (X.509 and SSH) over the defaults."""
        return Claims.from_json(None, self.claims)

    def verify(self, token: str, audiences: frozenset[str], context: Context) -> VerifiedToken:
        return verify_token(
            token,
            self,
            accepted_audiences=audiences,
            now=context.now,
            ca_started=context.ca_started,
        )

    def authorize_sign(
        self, token: str, csr: x509.CertificateSigningRequest, context: Context
    ) -> SignGrant:
        verified = self.verify(token, context.audiences("sign"), context)
        sans = authorize_csr(verified, csr)
        claims = self.parsed_claims
        x509_options = self.options.get("x509")
        template = x509_options.get("template") if isinstance(x509_options, Mapping) else None
        extensions: tuple[ProvisionerExtension, ...] = ()
        if not claims.disable_smallstep_extensions:
            extensions = (ProvisionerExtension(PROVISIONER_TYPES["JWK"], self.name, self.kid),)
        return SignGrant(
            provisioner=self.ref,
            token_id=verified.token_id,
            subject=verified.subject,
            sans=tuple(sans),
            claims=claims,
            token_claims=verified.claims,
            template=template if isinstance(template, str) else None,
            extensions=extensions,
        )

    def authorize_renew(
        self, certificate: x509.Certificate, context: Context, *, via_token: bool
    ) -> Claims:
        claims = self.parsed_claims
        authorize_renewal(certificate, claims, now=context.now, via_token=via_token)
        return claims

    def authorize_rekey(self, certificate: x509.Certificate, context: Context) -> Claims:
        return self.authorize_renew(certificate, context, via_token=False)

    def authorize_revoke(self, token: str, serial: str, context: Context) -> RevokeGrant:
        verified = self.verify(token, context.audiences("revoke"), context)
        try:
            subject = parse_serial(verified.subject)
        except BadRequest:
            subject = None
        if subject != serial:
            raise PolicyError(
                f"token subject {verified.subject[:80]!r} is not the serial number {serial}"
            )
        return RevokeGrant(self.ref, verified.token_id)

    def authorize_ssh_sign(
        self, token: str, requested: SSHOptions, context: Context
    ) -> SSHSignGrant:
        # step-ca's secure default: a provisioner signs SSH certificates only where its
        # claims say `enableSSHCA` (set on the first provisioner when the SSH CA is set up).
        if not self.parsed_claims.enable_ssh_ca:
            raise AuthError(f"sshCA is disabled for jwk provisioner '{self.name}'")
        verified = self.verify(token, context.ssh_audiences("sign"), context)
        options = merge_options(requested, token_options(verified.claims), subject=verified.subject)
        return SSHSignGrant(self.ref, verified.token_id, options, self.parsed_claims)

    def authorize_ssh_revoke(self, token: str, serial: str, context: Context) -> RevokeGrant:
        verified = self.verify(token, context.ssh_audiences("revoke"), context)
        if verified.subject != serial:
            raise PolicyError(f"token subject {verified.subject[:40]!r} is not serial {serial}")
        return RevokeGrant(self.ref, verified.token_id)


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


def authorize_csr(token: VerifiedToken, csr: x509.CertificateSigningRequest) -> list[SAN]:
    """Check a CSR against its token (step-ca's JWK AuthorizeSign); return the SANs to issue.

    The CSR's own signature is checked once, where it is parsed (`ca.pki.csr.parse_csr`).
    """
    if token.csr_fingerprint is not None:
        der = csr.public_bytes(serialization.Encoding.DER)
        if b64url(hashlib.sha256(der).digest()) != token.csr_fingerprint:
            raise AuthError("token is bound to another certificate request")
    check_csr_key(csr)

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


# -- certificate requests -----------------------------------------------------------------


def _csr_sans(csr: x509.CertificateSigningRequest) -> dict[str, set[str]]:
    try:
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {kind: set() for kind in _SAN_LABELS}
    except ValueError as err:  # duplicate or undecodable extensions
        raise BadRequest(f"invalid csr: {err}") from err
    return {
        "dns": {name.lower() for name in names.get_values_for_type(x509.DNSName)},
        "ip": {normal_ip(ip) for ip in names.get_values_for_type(x509.IPAddress)},  # type: ignore[arg-type]
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
