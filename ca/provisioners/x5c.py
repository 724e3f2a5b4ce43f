"""x5cInsecure renewal tokens: `step ca renew --mtls=false` proves possession of a
certificate with a JWT signed by its key and carrying its chain (step-ca's
`AuthorizeRenewToken`).

This authenticates the certificate, not a provisioner: whether it may renew is then asked
of the provisioner the ledger recorded for it (`Provisioner.authorize_renew`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.errors import AuthError
from ca.pki.provisioner_extension import from_certificate
from ca.tokens import (
    DEFAULT_LEEWAY,
    RENEW_TOKEN_ISSUER,
    check_registered,
    peek,
    verify_signed_by_key,
)

__all__ = ["RenewToken", "verify_renew_token"]


@dataclass(frozen=True)
class RenewToken:
    """A verified renewal token: the certificate it proves possession of, its single-use id."""

    certificate: x509.Certificate
    token_id: str


def verify_renew_token(
    token: str,
    *,
    roots: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    accepted_audiences: frozenset[str],
    now: datetime,
    leeway: timedelta = DEFAULT_LEEWAY,
) -> RenewToken:
    """step-ca's `AuthorizeRenewToken`: a JWT signed by the key of the certificate it carries.

    The chain is verified as of the leaf's NotAfter - 1 minute: an expired certificate can
    prove possession here (whether it may renew is the provisioner's `allowRenewalAfterExpiry`).
    """
    unverified = peek(token)
    header, claims = unverified.header, unverified.claims
    leaf, supplied = _x5c_chain(header.get("x5cInsecure"))
    verify_signed_by_key(token, header, leaf.public_key(), "renewal certificate")

    _verify_chain(leaf, [*supplied, *intermediates], roots, at=leaf.not_valid_after_utc - leeway)
    _require_client_usage(leaf)

    provisioner = _extension(leaf)
    common_names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    registered = check_registered(
        token,
        claims,
        accepted_audiences=accepted_audiences,
        now=now,
        issuers={RENEW_TOKEN_ISSUER} | ({provisioner.name} if provisioner else set()),
        subject=str(common_names[0].value) if common_names else "",
        leeway=leeway,
    )
    return RenewToken(leaf, registered.token_id)


def _extension(certificate: x509.Certificate) -> Any:
    try:
        return from_certificate(certificate)
    except ValueError:
        raise AuthError("the certificate's provisioner extension is malformed") from None


def _x5c_chain(value: object) -> tuple[x509.Certificate, list[x509.Certificate]]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise AuthError("token has no x5cInsecure certificate chain")
    try:
        chain = [x509.load_der_x509_certificate(base64.b64decode(v, validate=True)) for v in value]
    except (ValueError, binascii.Error):
        raise AuthError("token x5cInsecure holds something that is not a DER certificate") from None
    return chain[0], chain[1:]


def _verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    *,
    at: datetime,
) -> None:
    """Leaf → intermediate → one of our roots, every link valid at `at`.

    ledgerca's hierarchy is root → intermediate → leaf (intermediate path length 0), so the
    path is at most that long; a leaf signed by a root directly is refused.
    """
    if _is_ca(leaf):
        raise AuthError("the token's certificate is a CA certificate")
    for intermediate in intermediates:
        if not (_issued_by(leaf, intermediate) and _is_ca(intermediate)):
            continue
        if not _valid_at(intermediate, at):
            continue
        if any(_issued_by(intermediate, root) and _valid_at(root, at) for root in roots):
            return
    raise AuthError("the token's certificate does not chain to this CA's roots")


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _valid_at(certificate: x509.Certificate, at: datetime) -> bool:
    return certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _require_client_usage(leaf: x509.Certificate) -> None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        signs = usage.digital_signature
    except x509.ExtensionNotFound:
        signs = False
    if not signs:
        raise AuthError("the token's certificate lacks the digitalSignature key usage")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise AuthError("the token's certificate lacks the clientAuth extended key usage")
