"""An offline root: `init --intermediate-csr`, then `init --root-cert/--intermediate-cert/-key`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from support.binaries import needs_openssl
from support.cli import (
    INIT,
    clean_error,
    events_in,
    ledger_events,
    leftovers,
    ok,
    openssl,
    run,
    write_password,
)

from ca.keys.files import generate_private_key, load_private_key
from ca.pki.profiles import build_root, fingerprint, pem, sign_intermediate_csr

NAME = "Offline"
PASSWORD = "intermediate-password-3e9b"


@dataclass(frozen=True)
class OfflineRoot:
    """The files an operator carries between the CA machine and the offline root."""

    directory: Path
    password_file: Path
    csr: Path
    key: Path
    root_cert: Path
    intermediate_cert: Path
    foreign_intermediate_cert: Path
    """The same CSR signed by another root of the same name."""
    root_fingerprint: str


def _sign(csr: x509.CertificateSigningRequest, out: Path) -> x509.Certificate:
    now = datetime.now(UTC)
    root_key = generate_private_key("EC")
    root = build_root(root_key, name=NAME, now=now)
    intermediate = sign_intermediate_csr(csr, root_cert=root, root_key=root_key, now=now)
    out.write_text(pem(intermediate))
    return root


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> OfflineRoot:
    directory = tmp_path_factory.mktemp("offline")
    password_file = write_password(directory / "pw", PASSWORD)
    (directory / "out").mkdir()
    ok(
        run(
            "init",
            "--name",
            NAME,
            "--intermediate-csr",
            "out/int.csr",
            "--password-file",
            password_file,
            home=directory / "unused-home",
            cwd=directory,
        )
    )
    csr_path = directory / "out/int.csr"
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    root = _sign(csr, directory / "int.crt")
    (directory / "root.crt").write_text(pem(root))
    _sign(csr, directory / "foreign_int.crt")
    return OfflineRoot(
        directory=directory,
        password_file=password_file,
        csr=csr_path,
        key=directory / "out/int_key",
        root_cert=directory / "root.crt",
        intermediate_cert=directory / "int.crt",
        foreign_intermediate_cert=directory / "foreign_int.crt",
        root_fingerprint=fingerprint(root),
    )


def import_args(offline: OfflineRoot, **overrides: Path) -> list[str | Path]:
    files = {
        "root_cert": offline.root_cert,
        "intermediate_cert": offline.intermediate_cert,
        "intermediate_key": offline.key,
        "password_file": offline.password_file,
        **overrides,
    }
    args: list[str | Path] = list(INIT)
    for option, path in files.items():
        args += [f"--{option.replace('_', '-')}", path]
    return args


@needs_openssl
def test_csr_mode_writes_a_verifiable_csr_and_an_encrypted_key(offline: OfflineRoot) -> None:
    result = openssl("req", "-in", offline.csr, "-noout", "-verify", "-subject")
    assert "verify OK" in result.stdout + result.stderr
    assert f"CN = {NAME} Intermediate CA" in result.stdout
    data = offline.key.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert (offline.key.stat().st_mode & 0o777) == 0o600
    key = load_private_key(data, PASSWORD.encode())
    csr = x509.load_pem_x509_csr(offline.csr.read_bytes())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert csr.public_key().public_bytes(serialization.Encoding.DER, spki) == (
        key.public_key().public_bytes(serialization.Encoding.DER, spki)
    )
    assert not (offline.directory / "unused-home").exists()


@needs_openssl
def test_import_creates_a_ca_without_the_root_key(offline: OfflineRoot, tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = ok(run(*import_args(offline), home=home))
    assert f"Root fingerprint: {offline.root_fingerprint}" in result.stdout
    assert not (home / "secrets/root_ca_key").exists()
    assert sorted(p.name for p in (home / "secrets").iterdir()) == [
        "intermediate_ca_key",
        "ledger_key",  # signs ledger checkpoints, under the intermediate's password
        "provisioner_password",  # generated: no --provisioner-password-file was given
    ]
    key = home / "secrets/intermediate_ca_key"
    assert (key.stat().st_mode & 0o777) == 0o600
    load_private_key(key.read_bytes(), PASSWORD.encode())
    assert (home / "certs/root_ca.crt").read_text() == offline.root_cert.read_text()
    openssl("verify", "-CAfile", home / "certs/root_ca.crt", home / "certs/intermediate_ca.crt")

    events = ledger_events(home)
    assert [e.type for e in events] == [
        "authority.initialized",
        "authority.key_activated",
        "authority.key_activated",
        "provisioner.added",
        "authority.key_activated",
    ]
    roles = {e.data["role"]: e.data["key_ref"] for e in events[1:3]}
    assert roles == {
        "x509_root": {"type": "offline"},
        "x509_intermediate": {"type": "file", "path": "secrets/intermediate_ca_key"},
    }


@pytest.mark.parametrize(
    ("override", "complaint"),
    [("foreign intermediate", "not issued by this root"), ("wrong password", "wrong password")],
)
def test_import_refusals_leave_nothing(
    offline: OfflineRoot, tmp_path: Path, override: str, complaint: str
) -> None:
    overrides = {
        "foreign intermediate": {"intermediate_cert": offline.foreign_intermediate_cert},
        "wrong password": {"password_file": write_password(tmp_path / "wrong", "not-it")},
    }[override]
    database = f"sqlite:///{tmp_path / 'external.sqlite'}"
    home = tmp_path / "home"
    message = clean_error(run(*import_args(offline, **overrides), "--db", database, home=home))
    assert complaint in message
    assert not home.exists()
    assert leftovers(tmp_path, "home") == []
    assert events_in(database) == []


def test_csr_into_a_missing_directory_is_written_or_refused_by_name(tmp_path: Path) -> None:
    password_file = write_password(tmp_path / "pw", PASSWORD)
    result = run(
        "init",
        "--name",
        NAME,
        "--intermediate-csr",
        "missing/int.csr",
        "--password-file",
        password_file,
        home=tmp_path / "home",
        cwd=tmp_path,
    )
    if result.returncode == 0:
        assert (tmp_path / "missing/int.csr").is_file()
        assert (tmp_path / "missing/int_key").is_file()
    else:
        message = clean_error(result)
        assert "missing" in message
        assert ".tmp" not in message  # an internal temp file means nothing to the operator
