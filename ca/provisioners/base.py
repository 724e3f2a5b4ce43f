"""The one interface every provisioner type implements, in the spirit of step-ca's
`authority/provisioner.Interface`.

A provisioner answers one question per operation: may this credential do this, and with
what? Each `authorize_*` method returns a grant (what the CA may issue or revoke, and what
to record about who allowed it) or raises a `CAError` that says why not. The use cases in
`ca.authority` never ask which type a provisioner is: the type differs only here, in the
class that implements this protocol.

An operation a type does not support is refused by `Unsupported`, which every
implementation extends, the way step-ca's provisioners embed `base`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import SSHCertificate

from ca.errors import AuthError
from ca.keys.files import PublicKey
from ca.pki.claims import Claims
from ca.pki.provisioner_extension import ProvisionerExtension
from ca.pki.sans import SAN
from ca.ssh.options import SSHOptions
from ca.tokens import audiences
from projections.events import ProvisionerRef

__all__ = [
    "Context",
    "Provisioner",
    "ProvisionerRef",
    "RevokeGrant",
    "SSHCertificateGrant",
    "SSHSignGrant",
    "SignGrant",
    "Unprovisioned",
    "Unsupported",
    "authorize_renewal",
    "ssh_audiences",
]


def ssh_audiences(dns_names: Sequence[str], op: str) -> frozenset[str]:
    """Accepted audiences for `ssh/<op>`; sign tokens may also name the X.509 sign URLs."""
    accepted = audiences(dns_names, f"ssh/{op}")
    if op == "sign":
        accepted |= audiences(dns_names, "sign")
    return accepted


@dataclass(frozen=True)
class Context:
    """What an authorization may know of the CA: the time, its start, its names and keys."""

    now: datetime
    ca_started: datetime
    """Tokens issued before the CA started are refused (step-ca's rule)."""
    dns_names: tuple[str, ...]
    roots: tuple[x509.Certificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    ssh_ca_keys: tuple[PublicKey, ...] = ()
    """Every SSH CA key the ledger knows, retired ones too (hosts renew into a new key)."""
    check_ssh_certificate: Callable[[SSHCertificate], None] | None = None
    """Raises unless the certificate is the very one the ledger recorded, and not revoked."""

    def audiences(self, op: str) -> frozenset[str]:
        return audiences(self.dns_names, op)

    def ssh_audiences(self, op: str) -> frozenset[str]:
        return ssh_audiences(self.dns_names, op)


@dataclass(frozen=True)
class SignGrant:
    """`authorize_sign`: the names a leaf may carry and how to build it."""

    provisioner: ProvisionerRef
    token_id: str
    subject: str
    sans: tuple[SAN, ...]
    claims: Claims
    token_claims: Mapping[str, Any]
    template: str | None = None
    """The provisioner's own X.509 template, if it has one (else the default leaf)."""
    extensions: tuple[ProvisionerExtension, ...] = ()


@dataclass(frozen=True)
class RevokeGrant:
    """`authorize_revoke` / `authorize_ssh_revoke`: the serial may be revoked."""

    provisioner: ProvisionerRef | None
    token_id: str
    actor_extra: Mapping[str, Any] = field(default_factory=dict)
    names_any_serial: bool = True
    """Whether the grant may name a serial this ledger never issued (a pre-revocation): a
    provisioner's one-time token may; a proof of possession of a certificate may not."""


@dataclass(frozen=True)
class SSHSignGrant:
    """`authorize_ssh_sign`: the options (request and token merged) and the claims."""

    provisioner: ProvisionerRef
    token_id: str
    options: SSHOptions
    claims: Claims


@dataclass(frozen=True)
class SSHCertificateGrant:
    """`authorize_ssh_renew` / `authorize_ssh_rekey`: the certificate proven, to re-issue."""

    provisioner: ProvisionerRef | None
    token_id: str
    certificate: SSHCertificate
    serial: str
    actor_extra: Mapping[str, Any] = field(default_factory=dict)


class Provisioner(Protocol):
    """What every provisioner type implements; see the module docstring."""

    @property
    def ref(self) -> ProvisionerRef | None: ...

    def authorize_sign(
        self, token: str, csr: x509.CertificateSigningRequest, context: Context
    ) -> SignGrant: ...

    def authorize_renew(
        self, certificate: x509.Certificate, context: Context, *, via_token: bool
    ) -> Claims: ...

    def authorize_rekey(self, certificate: x509.Certificate, context: Context) -> Claims: ...

    def authorize_revoke(self, token: str, serial: str, context: Context) -> RevokeGrant: ...

    def authorize_ssh_sign(
        self, token: str, requested: SSHOptions, context: Context
    ) -> SSHSignGrant: ...

    def authorize_ssh_renew(self, token: str, context: Context) -> SSHCertificateGrant: ...

    def authorize_ssh_rekey(self, token: str, context: Context) -> SSHCertificateGrant: ...

    def authorize_ssh_revoke(self, token: str, serial: str, context: Context) -> RevokeGrant: ...


class Unsupported:
    """Refuses every operation; a provisioner type overrides the ones it supports."""

    kind = "this"

    def _refuse(self, operation: str) -> AuthError:
        return AuthError(f"{self.kind} provisioner cannot authorize {operation}")

    def authorize_sign(
        self, token: str, csr: x509.CertificateSigningRequest, context: Context
    ) -> SignGrant:
        raise self._refuse("X.509 signing")

    def authorize_renew(
        self, certificate: x509.Certificate, context: Context, *, via_token: bool
    ) -> Claims:
        raise self._refuse("X.509 renewal")

    def authorize_rekey(self, certificate: x509.Certificate, context: Context) -> Claims:
        raise self._refuse("X.509 rekey")

    def authorize_revoke(self, token: str, serial: str, context: Context) -> RevokeGrant:
        raise self._refuse("X.509 revocation")

    def authorize_ssh_sign(
        self, token: str, requested: SSHOptions, context: Context
    ) -> SSHSignGrant:
        raise self._refuse("SSH signing")

    def authorize_ssh_renew(self, token: str, context: Context) -> SSHCertificateGrant:
        raise self._refuse("SSH renewal")

    def authorize_ssh_rekey(self, token: str, context: Context) -> SSHCertificateGrant:
        raise self._refuse("SSH rekey")

    def authorize_ssh_revoke(self, token: str, serial: str, context: Context) -> RevokeGrant:
        raise self._refuse("SSH revocation")


def authorize_renewal(
    certificate: x509.Certificate, claims: Claims, *, now: datetime, via_token: bool
) -> None:
    """step-ca's `DefaultAuthorizeRenew`; revocation is checked against the ledger, not here."""
    if claims.disable_renewal:
        raise AuthError("renew is disabled for the certificate's provisioner")
    if now < certificate.not_valid_before_utc:
        raise AuthError(
            f"certificate is not yet valid: it starts at {_iso(certificate.not_valid_before_utc)}"
        )
    if now > certificate.not_valid_after_utc:
        expired = f"certificate expired on {_iso(certificate.not_valid_after_utc)}"
        if not via_token:
            raise AuthError(expired)
        if not claims.allow_renewal_after_expiry:
            raise AuthError(f"{expired}; its provisioner does not allow renewal after expiry")


class Unprovisioned(Unsupported):
    """The provisioner of certificates issued without one (the CA's own TLS certificate):
    renewable under the default claims, nothing else."""

    kind = "no"

    @property
    def ref(self) -> ProvisionerRef | None:
        return None

    def authorize_renew(
        self, certificate: x509.Certificate, context: Context, *, via_token: bool
    ) -> Claims:
        claims = Claims.from_json(None, None)
        authorize_renewal(certificate, claims, now=context.now, via_token=via_token)
        return claims

    def authorize_rekey(self, certificate: x509.Certificate, context: Context) -> Claims:
        return self.authorize_renew(certificate, context, via_token=False)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
