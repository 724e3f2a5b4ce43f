"""Keys at rest: encrypted PEM files, written atomically with owner-only permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ca.errors import ConfigError, PasswordError
from ca.keys.files import (
    PrivateKey,
    encrypt_private_key,
    ensure_private_dir,
    generate_private_key,
    load_private_key,
    write_private_file,
    write_public_file,
)

PASSWORD = b"correct horse battery staple"


@pytest.fixture(scope="module")
def ec_key() -> PrivateKey:
    return generate_private_key("EC")


@pytest.fixture(scope="module")
def encrypted_pem(ec_key: PrivateKey) -> bytes:
    return encrypt_private_key(ec_key, PASSWORD)


def _public_der(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("kty", "expected"),
    [("EC", ec.EllipticCurvePrivateKey), ("okp", ed25519.Ed25519PrivateKey)],
)
def test_key_types_accept_any_case(kty: str, expected: type) -> None:
    assert isinstance(generate_private_key(kty), expected)


def test_default_ec_key_is_p256(ec_key: PrivateKey) -> None:
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    assert isinstance(ec_key.curve, ec.SECP256R1)


def test_rsa_key_has_requested_size() -> None:
    key = generate_private_key("rsa", rsa_bits=2048)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048


def test_rsa_keys_below_2048_bits_are_refused() -> None:
    with pytest.raises(ConfigError, match="at least 2048"):
        generate_private_key("RSA", rsa_bits=1024)


def test_unknown_key_type_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown key type 'DSA': choose EC, OKP or RSA"):
        generate_private_key("DSA")


def test_encrypted_pem_says_encrypted(encrypted_pem: bytes) -> None:
    assert encrypted_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_encrypted_key_round_trips_with_the_right_password(
    ec_key: PrivateKey, encrypted_pem: bytes
) -> None:
    loaded = load_private_key(encrypted_pem, PASSWORD)
    assert _public_der(loaded) == _public_der(ec_key)


def test_ed25519_key_round_trips() -> None:
    key = generate_private_key("OKP")
    loaded = load_private_key(encrypt_private_key(key, PASSWORD), PASSWORD)
    assert isinstance(loaded, ed25519.Ed25519PrivateKey)
    assert _public_der(loaded) == _public_der(key)


def test_wrong_password_names_the_key(encrypted_pem: bytes) -> None:
    with pytest.raises(PasswordError) as raised:
        load_private_key(encrypted_pem, b"not the password", what="root key")
    assert raised.value.message == "wrong password for the root key"


def test_empty_password_is_refused_when_encrypting(ec_key: PrivateKey) -> None:
    with pytest.raises(PasswordError):
        encrypt_private_key(ec_key, b"")


def test_unencrypted_key_file_is_refused(ec_key: PrivateKey) -> None:
    plain = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ConfigError, match="intermediate key is not encrypted"):
        load_private_key(plain, PASSWORD, what="intermediate key")


def test_data_that_is_not_a_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a PEM private key"):
        load_private_key(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", PASSWORD
        )


def test_private_file_is_owner_only_and_leaves_no_temp_files(
    tmp_path: Path, encrypted_pem: bytes
) -> None:
    path = tmp_path / "root_ca_key"
    path.write_bytes(b"old contents")
    path.chmod(0o644)

    write_private_file(path, encrypted_pem)

    assert path.read_bytes() == encrypted_pem
    assert _mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root_ca_key"]


def test_public_file_is_world_readable_even_under_a_strict_umask(tmp_path: Path) -> None:
    path = tmp_path / "root_ca.crt"
    old_umask = os.umask(0o077)
    try:
        write_public_file(path, b"-----BEGIN CERTIFICATE-----\n")
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root_ca.crt"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"old")

    def disk_full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_private_file(path, b"new")
    monkeypatch.undo()

    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["key"]


def test_private_dir_is_0700_even_if_it_existed(tmp_path: Path) -> None:
    existing = tmp_path / "secrets"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    ensure_private_dir(existing)
    assert _mode(existing) == 0o700

    fresh = tmp_path / "home" / "secrets"
    ensure_private_dir(fresh)
    assert _mode(fresh) == 0o700
