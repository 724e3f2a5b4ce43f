"""`ledgerca init` and `ledgerca up`: a new PKI, home and ledger — or nothing at all."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from support.binaries import needs_openssl
from support.ca_server import BACKGROUND_EVENTS
from support.cli import (
    INIT,
    clean_error,
    cli_env,
    copy_home,
    events_in,
    in_parallel,
    ledger_events,
    leftovers,
    ok,
    openssl,
    openssl_fingerprint,
    run,
    tree_digest,
    write_password,
)

from ca.errors import PasswordError
from ca.keys.files import load_private_key
from ca.provisioners.jwk_keys import decrypt_provisioner_key, thumbprint

CA_PASSWORD = "ca-password-7f3a9c"
PROVISIONER_PASSWORD = "provisioner-password-2b8e1d"


def printed_fingerprint(stdout: str) -> str:
    match = re.search(r"^Root fingerprint: ([0-9a-f]{64})$", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


@dataclass(frozen=True)
class InitializedCA:
    home: Path
    stdout: str
    log_json: str
    """Raw output of `ledgerca ledger log --json`."""


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> InitializedCA:
    """One EC CA initialised with password files given; tests here only read it."""
    base = tmp_path_factory.mktemp("init")
    home = base / "home"
    result = ok(
        run(
            *INIT,
            "--password-file",
            write_password(base / "ca_pw", CA_PASSWORD),
            "--provisioner-password-file",
            write_password(base / "prov_pw", PROVISIONER_PASSWORD),
            home=home,
        )
    )
    log = ok(run("ledger", "log", "--json", home=home))
    return InitializedCA(home, result.stdout, log.stdout)


def logged_events(ca: InitializedCA) -> list[dict[str, object]]:
    return [json.loads(line) for line in ca.log_json.splitlines()]


# -- the home --------------------------------------------------------------------------------


def test_init_creates_exactly_the_documented_home(ca: InitializedCA) -> None:
    layout = {str(p.relative_to(ca.home)) for p in ca.home.rglob("*")}
    assert layout == {
        "certs",
        "certs/root_ca.crt",
        "certs/intermediate_ca.crt",
        "secrets",
        "secrets/root_ca_key",
        "secrets/intermediate_ca_key",
        "secrets/ledger_key",
        "config",
        "config/ca.toml",
        "db",
        "db/ledger.sqlite",
        "db/ledger.sqlite-writelock",  # serialises writer processes (ledger/database.py)
    }
    mode = {name: (ca.home / name).stat().st_mode & 0o777 for name in layout}
    assert (ca.home.stat().st_mode & 0o777) == 0o700
    assert mode["secrets"] == 0o700
    assert mode["secrets/root_ca_key"] == mode["secrets/intermediate_ca_key"] == 0o600
    assert mode["secrets/ledger_key"] == 0o600
    assert mode["config/ca.toml"] == 0o600
    assert "Generated password" not in ca.stdout


@pytest.mark.parametrize("key_file", ["root_ca_key", "intermediate_ca_key"])
def test_key_files_are_encrypted_with_the_ca_password(ca: InitializedCA, key_file: str) -> None:
    data = (ca.home / "secrets" / key_file).read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    load_private_key(data, CA_PASSWORD.encode())
    with pytest.raises(PasswordError):
        load_private_key(data, PROVISIONER_PASSWORD.encode())


@needs_openssl
def test_openssl_verifies_the_intermediate_against_the_root(ca: InitializedCA) -> None:
    result = openssl(
        "verify",
        "-CAfile",
        ca.home / "certs/root_ca.crt",
        ca.home / "certs/intermediate_ca.crt",
    )
    assert result.stdout.strip().endswith(": OK")


@needs_openssl
@pytest.mark.parametrize(
    ("cert", "pathlen", "common_name"),
    [("root_ca.crt", 1, "Test Root CA"), ("intermediate_ca.crt", 0, "Test Intermediate CA")],
)
def test_openssl_reads_the_ca_profile(
    ca: InitializedCA, cert: str, pathlen: int, common_name: str
) -> None:
    path = ca.home / "certs" / cert
    text = openssl("x509", "-in", path, "-noout", "-text").stdout
    assert re.search(r"X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:" f"{pathlen}\n", text)
    assert re.search(r"X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n", text)
    assert f"CN = {common_name}" in text
    assert "NIST CURVE: P-256" in text  # ECDSA P-256 by default
    dates = openssl("x509", "-in", path, "-noout", "-startdate", "-enddate").stdout
    start, end = (
        datetime.strptime(line.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
        for line in dates.splitlines()
    )
    assert 3649 <= (end - start).days <= 3653  # ten years


@needs_openssl
def test_printed_root_fingerprint_is_the_root_certificates_sha256(ca: InitializedCA) -> None:
    assert printed_fingerprint(ca.stdout) == openssl_fingerprint(ca.home / "certs/root_ca.crt")


# -- the ledger ------------------------------------------------------------------------------


def test_init_records_exactly_the_founding_events(ca: InitializedCA) -> None:
    events = logged_events(ca)
    assert [(e["position"], e["type"]) for e in events] == [
        (1, "authority.initialized"),
        (2, "authority.key_activated"),
        (3, "authority.key_activated"),
        (4, "provisioner.added"),
        (5, "authority.key_activated"),
    ]
    initialized, root, intermediate, provisioner, ledger_key = (e["data"] for e in events)
    assert initialized == {"name": "Test", "root_fingerprint": printed_fingerprint(ca.stdout)}
    assert root["role"] == "x509_root"
    assert root["key_ref"] == {"type": "file", "path": "secrets/root_ca_key"}
    assert root["certificate"] == (ca.home / "certs/root_ca.crt").read_text()
    assert intermediate["role"] == "x509_intermediate"
    assert intermediate["key_ref"] == {"type": "file", "path": "secrets/intermediate_ca_key"}
    assert intermediate["certificate"] == (ca.home / "certs/intermediate_ca.crt").read_text()
    assert provisioner["name"] == "admin"
    assert ledger_key["role"] == "ledger" and ledger_key["certificate"] is None
    assert ledger_key["key_ref"] == {"type": "file", "path": "secrets/ledger_key"}
    assert provisioner["type"] == "JWK"
    assert all(e["actor"]["cli"] == "init" for e in events)


def test_provisioner_key_opens_with_the_provisioner_password_only(ca: InitializedCA) -> None:
    added = logged_events(ca)[3]["data"]
    public = added["key"]
    assert public["kid"] == thumbprint(public)
    private = decrypt_provisioner_key(
        added["encrypted_key"], PROVISIONER_PASSWORD.encode(), name="admin"
    )
    assert private.thumbprint() == public["kid"]
    with pytest.raises(PasswordError):
        decrypt_provisioner_key(added["encrypted_key"], CA_PASSWORD.encode())


def test_no_password_or_private_key_reaches_the_ledger(ca: InitializedCA) -> None:
    database = (ca.home / "db/ledger.sqlite").read_bytes()
    for secret in (CA_PASSWORD, PROVISIONER_PASSWORD, "PRIVATE KEY"):
        assert secret not in ca.log_json
        assert secret.encode() not in database
        assert secret not in ca.stdout


# -- passwords -------------------------------------------------------------------------------


def test_without_files_or_terminal_passwords_are_generated_and_reported(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = ok(run(*INIT, home=home))
    ca_file = home / "secrets/ca_password"
    provisioner_file = home / "secrets/provisioner_password"
    assert str(ca_file) in result.stdout
    assert str(provisioner_file) in result.stdout
    assert (ca_file.stat().st_mode & 0o777) == (provisioner_file.stat().st_mode & 0o777) == 0o600
    ca_password = ca_file.read_bytes().strip()
    provisioner_password = provisioner_file.read_bytes().strip()
    assert len(ca_password) >= 32
    assert ca_password != provisioner_password
    for key_file in ("root_ca_key", "intermediate_ca_key"):
        load_private_key((home / "secrets" / key_file).read_bytes(), ca_password)
    added = ledger_events(home)[3].data
    decrypt_provisioner_key(added["encrypted_key"], provisioner_password)


# -- other key types and databases -----------------------------------------------------------


OTHER_KEY_TYPES = {"OKP": "ED25519", "RSA": "rsaEncryption"}
"""--key-type, and how openssl names the algorithm."""


@pytest.fixture(scope="module")
def other_key_types(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A home initialised with each of OTHER_KEY_TYPES, concurrently."""

    def init(key_type: str) -> Path:
        home = tmp_path_factory.mktemp(key_type) / "home"
        ok(run(*INIT, "--key-type", key_type, home=home))
        return home

    return in_parallel(init, OTHER_KEY_TYPES)


@needs_openssl
@pytest.mark.parametrize("key_type", OTHER_KEY_TYPES)
def test_init_with_another_key_type(other_key_types: dict[str, Path], key_type: str) -> None:
    home = other_key_types[key_type]
    root, intermediate = home / "certs/root_ca.crt", home / "certs/intermediate_ca.crt"
    openssl("verify", "-CAfile", root, intermediate)
    for cert in (root, intermediate):
        text = openssl("x509", "-in", cert, "-noout", "-text").stdout
        assert f"Public Key Algorithm: {OTHER_KEY_TYPES[key_type]}" in text


@pytest.mark.postgres
def test_init_on_postgresql_writes_the_ledger_there(tmp_path: Path, postgres_url: str) -> None:
    home = tmp_path / "home"
    ok(run(*INIT, "--db", postgres_url, home=home))
    assert not (home / "db/ledger.sqlite").exists()
    assert [e.type for e in events_in(postgres_url)] == [
        "authority.initialized",
        "authority.key_activated",
        "authority.key_activated",
        "provisioner.added",
        "authority.key_activated",
    ]
    log, verify = in_parallel(
        lambda args: ok(run(*args, home=home)), [("ledger", "log", "--json"), ("ledger", "verify")]
    ).values()
    assert [json.loads(line)["position"] for line in log.stdout.splitlines()] == [1, 2, 3, 4, 5]
    assert "5 events" in verify.stdout


# -- bad input: one line, non-zero, nothing written ------------------------------------------

Args = Callable[[Path], list[str | Path]]


def _unreadable_file(directory: Path) -> Path:
    path = write_password(directory / "unreadable", CA_PASSWORD)
    path.chmod(0)
    return path


BAD_INPUT: dict[str, Args] = {
    "missing password file": lambda d: ["--password-file", d / "no-such-file"],
    "missing provisioner password file": lambda d: [
        "--password-file",
        write_password(d / "ca_pw", CA_PASSWORD),
        "--provisioner-password-file",
        d / "no-such-file",
    ],
    "empty password file": lambda d: ["--password-file", write_password(d / "empty", "")],
    "password file is a directory": lambda d: ["--password-file", d],
    "unreadable password file": lambda d: ["--password-file", _unreadable_file(d)],
    "unreachable database": lambda d: ["--db", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x"],
    "unsupported database": lambda d: ["--db", "mysql://u@127.0.0.1/x"],
    "unknown key type": lambda d: ["--key-type", "DSA"],
    "address without a port": lambda d: ["--address", "ca.example.test"],
}
"""Each adds to (or, for a repeated option, overrides) `INIT --db <a new SQLite file>`."""

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SKIPPED = {"unreadable password file": "root reads files whatever their mode"} if AS_ROOT else {}


@dataclass(frozen=True)
class Attempt:
    directory: Path
    database: str
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Attempt]:
    """Every BAD_INPUT case tried once, each in a directory of its own, concurrently."""

    def attempt(case: str) -> Attempt:
        directory = tmp_path_factory.mktemp("bad-input")
        (directory / "inputs").mkdir()
        database = f"sqlite:///{directory / 'external.sqlite'}"
        extra = BAD_INPUT[case](directory / "inputs")
        result = run(*INIT, "--db", database, *extra, home=directory / "home")
        return Attempt(directory, database, result)

    return in_parallel(attempt, [case for case in BAD_INPUT if case not in SKIPPED])


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(name, marks=pytest.mark.skip(reason=SKIPPED[name]))
        if name in SKIPPED
        else name
        for name in BAD_INPUT
    ],
)
def test_bad_input_is_refused_with_one_line_and_leaves_nothing(
    refused: dict[str, Attempt], case: str
) -> None:
    attempt = refused[case]
    message = clean_error(attempt.result)
    assert "hunter2" not in message
    assert not (attempt.directory / "home").exists()
    assert leftovers(attempt.directory, "home") == []
    assert events_in(attempt.database) == []


def test_existing_home_is_refused_and_left_untouched(tmp_path: Path, ca: InitializedCA) -> None:
    home = copy_home(ca.home, tmp_path / "home")
    before = tree_digest(home)
    message = clean_error(run(*INIT, home=home))
    assert "--force" in message
    # Even with --force, a failure leaves the old home as it was.
    clean_error(run(*INIT, "--force", "--password-file", tmp_path / "missing", home=home))
    assert tree_digest(home) == before
    assert leftovers(tmp_path, "home") == []


def test_force_replaces_an_existing_home(tmp_path: Path, ca: InitializedCA) -> None:
    home = copy_home(ca.home, tmp_path / "home")
    old_fingerprint = printed_fingerprint(ca.stdout)
    result = ok(run(*INIT, "--force", home=home))
    new_fingerprint = printed_fingerprint(result.stdout)
    assert new_fingerprint != old_fingerprint
    assert new_fingerprint == ledger_events(home)[0].data["root_fingerprint"]
    assert len(ledger_events(home)) == 5
    assert leftovers(tmp_path, "home") == []


def test_a_database_that_already_holds_a_ledger_is_refused(
    tmp_path: Path, ca: InitializedCA
) -> None:
    # The copy's embedded database stands in for "another CA's database".
    other = copy_home(ca.home, tmp_path / "other")
    database = f"sqlite:///{other / 'db/ledger.sqlite'}"
    before = [e.hash for e in events_in(database)]
    message = clean_error(run(*INIT, "--db", database, home=tmp_path / "home"))
    assert "already holds a ledger" in message
    assert not (tmp_path / "home").exists()
    assert leftovers(tmp_path, "home") == []
    assert [e.hash for e in events_in(database)] == before


# -- up --------------------------------------------------------------------------------------


def up_until_serving(home: Path, *args: str) -> str:
    """Run `ledgerca up` until it says it serves, stop it, and return everything it printed."""
    log = home.parent / f"up-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ca", "--home", str(home), "up", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**cli_env(), "PYTHONUNBUFFERED": "1"},
            cwd=home.parent,
        )
    try:
        deadline = time.monotonic() + 60
        while "Serving HTTPS on" not in log.read_text():
            assert process.poll() is None, f"up exited {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"up is not serving after 60 s:\n{log.read_text()}"
            time.sleep(0.05)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return log.read_text()


def _ca_files(home: Path) -> dict[str, tuple[int, str]]:
    """The files that make the CA what it is (serving adds a TLS certificate of its own)."""
    names = {
        "certs/root_ca.crt",
        "certs/intermediate_ca.crt",
        "secrets/root_ca_key",
        "secrets/intermediate_ca_key",
        "config/ca.toml",
    }
    return {k: v for k, v in tree_digest(home).items() if k in names}


def test_up_initialises_a_new_home_once(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "home"
    first = up_until_serving(home, "--address", f"127.0.0.1:{port}")
    fingerprint = printed_fingerprint(first)
    root = x509.load_pem_x509_certificate((home / "certs/root_ca.crt").read_bytes())
    assert root.fingerprint(hashes.SHA256()).hex() == fingerprint
    assert str(home / "secrets/ca_password") in first
    assert f"X.509 Root Fingerprint: {fingerprint}" in first
    # Without --workers, one worker per CPU the process may use.
    assert f"with {len(os.sched_getaffinity(0))} worker(s)" in first
    # What `up` itself wrote; the CRL publisher and checkpointer append on their own clock.
    head = [e.position for e in ledger_events(home) if e.type not in BACKGROUND_EVENTS]
    state = _ca_files(home)

    second = up_until_serving(home)
    assert "CA initialized" not in second
    assert f"X.509 Root Fingerprint: {fingerprint}" in second
    assert _ca_files(home) == state
    assert [e.position for e in ledger_events(home) if e.type not in BACKGROUND_EVENTS] == head
    assert [e.type for e in ledger_events(home)].count("authority.initialized") == 1
