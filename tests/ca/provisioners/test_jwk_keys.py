"""JWK provisioner keys: the encrypted key is what step CLI writes, and the pair signs tokens."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwe, jwk, jwt

from ca.errors import ConfigError, PasswordError
from ca.provisioners.jwk_keys import (
    ProvisionerKey,
    create_provisioner_key,
    decrypt_provisioner_key,
    private_key_from_jwe,
    reencrypt_provisioner_key,
    thumbprint,
)

PASSWORD = b"provisioner password 1234"
# For tests about shape rather than strength: PBES2 at 600000 rounds is slow by design.
FAST = 1_000


def _header(compact: str) -> dict[str, Any]:
    segment = compact.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]


def _with_header(compact: str, header: dict[str, Any]) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *compact.split(".")[1:]])


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def real_key() -> ProvisionerKey:
    """The production default: EC P-256 with 600000 PBES2 iterations."""
    return create_provisioner_key(PASSWORD)


@pytest.fixture(scope="module")
def decrypted(real_key: ProvisionerKey) -> jwk.Key:
    return decrypt_provisioner_key(real_key.encrypted_key, PASSWORD, name="admin")


@pytest.fixture(scope="module")
def fast_key() -> ProvisionerKey:
    return create_provisioner_key(PASSWORD, iterations=FAST)


def test_encrypted_key_header_is_what_step_cli_writes(real_key: ProvisionerKey) -> None:
    assert real_key.encrypted_key.count(".") == 4  # compact JWE: five parts
    header = _header(real_key.encrypted_key)
    salt = header.pop("p2s")
    assert header == {
        "alg": "PBES2-HS256+A128KW",
        "enc": "A256GCM",
        "cty": "jwk+json",
        "p2c": 600000,
    }
    assert len(base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))) == 16


def test_every_key_gets_a_fresh_salt(real_key: ProvisionerKey, fast_key: ProvisionerKey) -> None:
    assert _header(real_key.encrypted_key)["p2s"] != _header(fast_key.encrypted_key)["p2s"]


def test_public_jwk_is_an_es256_signing_key_named_by_its_thumbprint(
    real_key: ProvisionerKey,
) -> None:
    public = real_key.public_jwk
    assert public["kty"] == "EC"
    assert public["crv"] == "P-256"
    assert public["use"] == "sig"
    assert public["alg"] == "ES256"
    assert public["kid"] == real_key.kid
    assert "d" not in public
    assert thumbprint(public) == real_key.kid
    json.dumps(public)  # JSON-ready as is


def test_right_password_yields_the_private_half_of_public_jwk(
    real_key: ProvisionerKey, decrypted: jwk.Key
) -> None:
    assert decrypted.is_private
    assert decrypted.as_dict(private=False) == real_key.public_jwk
    assert decrypted.thumbprint() == real_key.kid
    # step CLI stores kid, use and alg inside the encrypted JWK as well.
    private = decrypted.as_dict(private=True)
    assert (private["kid"], private["use"], private["alg"]) == (real_key.kid, "sig", "ES256")


def test_wrong_password_names_the_provisioner(real_key: ProvisionerKey) -> None:
    with pytest.raises(PasswordError) as raised:
        decrypt_provisioner_key(real_key.encrypted_key, b"not the password", name="admin")
    assert raised.value.message == "wrong password for provisioner 'admin'"


def test_empty_password_is_refused(fast_key: ProvisionerKey) -> None:
    with pytest.raises(PasswordError):
        decrypt_provisioner_key(fast_key.encrypted_key, b"")
    with pytest.raises(PasswordError):
        create_provisioner_key(b"", iterations=FAST)


def test_token_signed_with_the_decrypted_key_verifies_with_public_jwk(
    real_key: ProvisionerKey, decrypted: jwk.Key
) -> None:
    now = int(time.time())
    claims = {
        "iss": "admin",
        "sub": "www.example.com",
        "aud": "https://ca.example.com/1.0/sign",
        "sans": ["www.example.com"],
        "jti": "0" * 64,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    token = jwt.encode({"alg": "ES256", "kid": real_key.kid, "typ": "JWT"}, claims, decrypted)

    verified = jwt.decode(token, jwk.import_key(real_key.public_jwk), algorithms=["ES256"])
    assert verified.header["kid"] == real_key.kid
    assert verified.claims["sub"] == "www.example.com"


def test_cryptography_key_matches_public_jwk(fast_key: ProvisionerKey) -> None:
    private = private_key_from_jwe(fast_key.encrypted_key, PASSWORD, name="admin")
    public = jwk.import_key(fast_key.public_jwk)
    assert _spki(private.public_key()) == _spki(public.public_key)


def test_reencryption_keeps_the_key_and_changes_the_password(fast_key: ProvisionerKey) -> None:
    new = reencrypt_provisioner_key(
        fast_key.encrypted_key, PASSWORD, b"a brand new password", iterations=FAST
    )

    assert decrypt_provisioner_key(new, b"a brand new password").kid == fast_key.kid
    assert _header(new)["p2s"] != _header(fast_key.encrypted_key)["p2s"]
    with pytest.raises(PasswordError):
        decrypt_provisioner_key(new, PASSWORD)


def test_reencryption_defaults_to_600000_iterations(fast_key: ProvisionerKey) -> None:
    new = reencrypt_provisioner_key(fast_key.encrypted_key, PASSWORD, PASSWORD)
    assert _header(new)["p2c"] == 600000


def test_older_keys_with_100000_iterations_decrypt(fast_key: ProvisionerKey) -> None:
    # What an older step CLI wrote, produced here by joserfc directly.
    private_jwk = decrypt_provisioner_key(fast_key.encrypted_key, PASSWORD).as_dict(private=True)
    old = jwe.encrypt_compact(
        {"alg": "PBES2-HS256+A128KW", "enc": "A256GCM", "cty": "jwk+json", "p2c": 100000},
        json.dumps(private_jwk),
        jwk.import_key(PASSWORD, "oct"),
        algorithms=["PBES2-HS256+A128KW", "A256GCM"],
    )
    assert _header(old)["p2c"] == 100000
    assert decrypt_provisioner_key(old, PASSWORD).kid == fast_key.kid


def test_absurd_iteration_counts_are_refused_before_any_work(fast_key: ProvisionerKey) -> None:
    # A hostile server could otherwise make `ledgerca token` spin for minutes.
    header = {**_header(fast_key.encrypted_key), "p2c": 50_000_000}
    started = time.monotonic()
    with pytest.raises(ConfigError, match="p2c"):
        decrypt_provisioner_key(_with_header(fast_key.encrypted_key, header), PASSWORD)
    assert time.monotonic() - started < 1


def test_other_algorithms_are_refused(fast_key: ProvisionerKey) -> None:
    header = {**_header(fast_key.encrypted_key), "enc": "A128CBC-HS256"}
    with pytest.raises(ConfigError, match="A128CBC-HS256"):
        decrypt_provisioner_key(_with_header(fast_key.encrypted_key, header), PASSWORD)


@pytest.mark.parametrize("garbage", ["", "not a jwe", "a.b.c.d.e", "e30.e30.e30.e30.e30"])
def test_malformed_encrypted_key_is_a_config_error(garbage: str) -> None:
    with pytest.raises(ConfigError, match="provisioner 'admin'"):
        decrypt_provisioner_key(garbage, PASSWORD, name="admin")


def test_tampered_ciphertext_is_reported_as_corruption(fast_key: ProvisionerKey) -> None:
    parts = fast_key.encrypted_key.split(".")
    parts[3] = ("B" if parts[3][0] == "A" else "A") + parts[3][1:]
    with pytest.raises(ConfigError, match="corrupted"):
        decrypt_provisioner_key(".".join(parts), PASSWORD)


@pytest.mark.parametrize(
    ("kty", "alg", "crv"),
    [
        pytest.param(
            "OKP",
            "EdDSA",
            "Ed25519",
            # step-ca names Ed25519 keys "EdDSA"; joserfc warns that RFC 9864 deprecates it.
            marks=pytest.mark.filterwarnings("ignore:EdDSA is deprecated"),
        ),
        ("rsa", "RS256", None),
    ],
)
def test_other_key_types_sign_verifiable_tokens(kty: str, alg: str, crv: str | None) -> None:
    key = create_provisioner_key(PASSWORD, kty=kty, iterations=FAST)
    assert key.public_jwk["alg"] == alg
    assert key.public_jwk.get("crv") == crv
    decrypted = decrypt_provisioner_key(key.encrypted_key, PASSWORD)
    assert decrypted.as_dict(private=False) == key.public_jwk
    token = jwt.encode({"alg": alg, "kid": key.kid}, {"sub": "x"}, decrypted, algorithms=[alg])
    jwt.decode(token, jwk.import_key(key.public_jwk), algorithms=[alg])


def test_unknown_key_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown key type"):
        create_provisioner_key(PASSWORD, kty="oct", iterations=FAST)


def test_thumbprint_matches_rfc7638_example_and_ignores_optional_members() -> None:
    rfc_key = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
            "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65"
            "YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNL"
            "yrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awa"
            "pJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(rfc_key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_of_garbage_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a valid public JWK"):
        thumbprint({"kty": "EC", "crv": "P-256"})
