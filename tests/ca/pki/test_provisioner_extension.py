from __future__ import annotations

import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.binaries import needs_openssl

from ca.pki.provisioner_extension import ProvisionerExtension, decode, encode

names = st.text(min_size=0, max_size=300)


@given(st.integers(0, 2**31 - 1), names, names, st.lists(st.text(max_size=40), max_size=4))
def test_extension_round_trips(kind: int, name: str, credential: str, kvs: list[str]) -> None:
    ext = ProvisionerExtension(kind, name, credential, tuple(kvs))
    assert decode(encode(ext)) == ext


def test_a_jwk_provisioner_extension_has_step_cas_exact_bytes() -> None:
    # SEQUENCE { INTEGER 1, OCTET STRING "admin", OCTET STRING "kid" }
    assert encode(ProvisionerExtension(1, "admin", "kid")) == bytes.fromhex(
        "300f020101040561646d696e04036b6964"
    )


@needs_openssl
def test_openssl_parses_the_der_as_the_documented_structure(tmp_path: object) -> None:
    der = encode(ProvisionerExtension(1, "admin", "x" * 200, ("a=b",)))
    out = subprocess.run(
        ["openssl", "asn1parse", "-inform", "DER"], input=der, capture_output=True, check=True
    ).stdout.decode()
    assert "INTEGER           :01" in out
    assert "OCTET STRING      :admin" in out
    assert "UTF8STRING        :a=b" in out


def test_garbage_is_refused() -> None:
    with pytest.raises(ValueError):
        decode(b"\x30\x05\x02\x01")
