"""pkilint's CRL linter finds nothing to warn about in any CRL the CA signs.

In-process and without a server: the published CRLs are linted in
tests/integration/test_crl_scope.py; here every shape the builder and the root's CRL can take.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from support.pkilint import crl_findings

from ca.crl.builder import REASON_FLAGS, RevokedEntry, build_crl
from ca.crl.root import Revocation, sign_root_crl

MakeHierarchy = Any  # tests/ca/crl/conftest.py
NOW = datetime.now(UTC)

BR_REASONS = (0, 1, 3, 4, 5, 9)
"""The reasons the CA/Browser Forum allows in a CRL of leaves (and cACompromise for CAs)."""


def entries(reasons: tuple[int, ...]) -> list[RevokedEntry]:
    return [
        RevokedEntry(2**100 + code, NOW - timedelta(minutes=5), code, NOW + timedelta(hours=1))
        for code in reasons
    ]


@pytest.mark.parametrize("kty", ["EC", "RSA", "OKP"])
@pytest.mark.parametrize("idp_url", [None, "http://ca.example.internal:8080/crl"])
@pytest.mark.parametrize(
    ("reasons", "profiles"),
    [((), ("PKIX", "BR")), (BR_REASONS, ("PKIX", "BR")), ((0, *REASON_FLAGS), ("PKIX",))],
    ids=["empty", "br-reasons", "every-reason"],
)
def test_an_intermediate_crl_lints_clean(
    make_hierarchy: MakeHierarchy,
    kty: str,
    idp_url: str | None,
    reasons: tuple[int, ...],
    profiles: tuple[str, ...],
) -> None:
    hierarchy = make_hierarchy(kty)
    crl = build_crl(
        issuer=hierarchy.intermediate,
        issuer_key=hierarchy.intermediate_key,
        entries=entries(reasons),
        number=2**64,
        now=NOW,
        lifetime=timedelta(hours=24),
        idp_url=idp_url,
    )
    der = crl.public_bytes(serialization.Encoding.DER)
    for profile in profiles:
        assert crl_findings(der, kind="CRL", profile=profile) == [], profile


@pytest.mark.parametrize("kty", ["EC", "RSA", "OKP"])
def test_the_roots_crl_of_intermediates_lints_clean(
    make_hierarchy: MakeHierarchy, kty: str
) -> None:
    hierarchy = make_hierarchy(kty, crl_url="http://ca.example.internal:8080/root.crl")
    for revoke in ((), (Revocation(hierarchy.intermediate.serial_number, 2),)):
        signed = sign_root_crl(
            root=hierarchy.root,
            root_key=hierarchy.root_key,
            revoke=revoke,
            now=NOW,
            next_update=timedelta(hours=720),
        )
        der = signed.crl.public_bytes(serialization.Encoding.DER)
        for profile in ("PKIX", "BR"):
            assert crl_findings(der, kind="ARL", profile=profile) == [], (profile, revoke)
