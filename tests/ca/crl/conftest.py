"""Fixtures for the CRL tests: a root and an intermediate, as `ledgerca init` makes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from cryptography import x509

from ca.keys.files import PrivateKey, generate_private_key
from ca.pki.profiles import build_intermediate_csr, build_root, sign_intermediate_csr


@dataclass(frozen=True)
class Hierarchy:
    root: x509.Certificate
    root_key: PrivateKey
    intermediate: x509.Certificate
    intermediate_key: PrivateKey


MakeHierarchy = Callable[..., Hierarchy]


def _make(kty: str = "EC", *, name: str = "Acme", crl_url: str | None = None) -> Hierarchy:
    now = datetime.now(UTC)
    root_key = generate_private_key(kty, rsa_bits=2048)
    root = build_root(root_key, name=name, now=now)
    key = generate_private_key(kty, rsa_bits=2048)
    csr = build_intermediate_csr(key, name=name)
    intermediate = sign_intermediate_csr(
        csr, root_cert=root, root_key=root_key, now=now, crl_url=crl_url
    )
    return Hierarchy(root, root_key, intermediate, key)


@pytest.fixture(scope="session")
def make_hierarchy() -> MakeHierarchy:
    return _make


@pytest.fixture(scope="session")
def hierarchy() -> Hierarchy:
    return _make()
