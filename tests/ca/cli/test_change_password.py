"""`ledgerca change-password intermediate|root|provisioner NAME`: same key, new password."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from support.cli import (
    INIT,
    clean_error,
    copy_home,
    ledger_events,
    ok,
    run,
    write_password,
)

from ca.config import load_config
from ca.errors import PasswordError
from ca.home import Home
from ca.keys.files import load_private_key
from ca.provisioners.jwk_keys import decrypt_provisioner_key
from ledger import create_engine, verify_chain
from projections.provisioners import provisioners

OLD = "old-password-51c0"
NEW = "new-password-9d4e"
PROVISIONER_OLD = "provisioner-old-a17f"


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA whose keys use OLD and whose provisioner `admin` uses PROVISIONER_OLD."""
    base = tmp_path_factory.mktemp("change-password")
    home = base / "home"
    ok(
        run(
            *INIT,
            "--password-file",
            write_password(base / "old", OLD),
            "--provisioner-password-file",
            write_password(base / "provisioner_old", PROVISIONER_OLD),
            home=home,
        )
    )
    return home


@pytest.fixture
def home(initialised: Path, tmp_path: Path) -> Path:
    """A copy of the CA for one test to change."""
    return copy_home(initialised, tmp_path / "home")


@pytest.fixture
def passwords(tmp_path: Path) -> dict[str, Path]:
    return {
        name: write_password(tmp_path / name, value)
        for name, value in [("old", OLD), ("new", NEW), ("provisioner_old", PROVISIONER_OLD)]
    }


def opens_with(key_file: Path, password: str) -> bool:
    try:
        load_private_key(key_file.read_bytes(), password.encode())
    except PasswordError:
        return False
    return True


@pytest.mark.parametrize(
    ("what", "key_file"), [("intermediate", "intermediate_ca_key"), ("root", "root_ca_key")]
)
def test_ca_key_opens_with_the_new_password_only(
    home: Path, passwords: dict[str, Path], what: str, key_file: str
) -> None:
    other_file = ({"root_ca_key", "intermediate_ca_key"} - {key_file}).pop()
    ok(
        run(
            "change-password",
            what,
            "--password-file",
            passwords["old"],
            "--new-password-file",
            passwords["new"],
            home=home,
        )
    )
    key = home / "secrets" / key_file
    assert opens_with(key, NEW)
    assert not opens_with(key, OLD)
    assert (key.stat().st_mode & 0o777) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert opens_with(home / "secrets" / other_file, OLD)  # only the named key changed
    assert sorted(p.name for p in (home / "secrets").iterdir()) == [
        "intermediate_ca_key",
        "ledger_key",
        "root_ca_key",
    ]


def test_wrong_current_password_leaves_the_key_file_unchanged(
    home: Path, passwords: dict[str, Path]
) -> None:
    key = home / "secrets/intermediate_ca_key"
    before = key.read_bytes()
    message = clean_error(
        run(
            "change-password",
            "intermediate",
            "--password-file",
            passwords["new"],
            "--new-password-file",
            passwords["old"],
            home=home,
        )
    )
    assert "wrong password" in message
    assert key.read_bytes() == before
    assert sorted(p.name for p in (home / "secrets").iterdir()) == [
        "intermediate_ca_key",
        "ledger_key",
        "root_ca_key",
    ]


def test_provisioner_password_change_is_recorded_and_keeps_the_kid(
    home: Path, passwords: dict[str, Path]
) -> None:
    ok(
        run(
            "change-password",
            "provisioner",
            "admin",
            "--password-file",
            passwords["provisioner_old"],
            "--new-password-file",
            passwords["new"],
            home=home,
        )
    )
    events = ledger_events(home)
    added, updated = events[3], events[-1]
    assert [e.type for e in events[5:]] == ["provisioner.updated"]
    assert updated.stream == added.stream
    assert updated.actor["cli"] == "change-password"
    assert set(updated.data["changes"]) == {"encrypted_key"}
    encrypted = updated.data["changes"]["encrypted_key"]
    assert decrypt_provisioner_key(encrypted, NEW.encode()).thumbprint() == added.data["key"]["kid"]
    with pytest.raises(PasswordError):
        decrypt_provisioner_key(encrypted, PROVISIONER_OLD.encode())
    assert NEW not in repr(updated.data) and "PRIVATE KEY" not in repr(updated.data)

    engine = create_engine(Home(home).database_url(load_config(Home(home)).database))
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                select(provisioners.c.encrypted_key).where(provisioners.c.name == "admin")
            ).scalar_one()
        assert stored == encrypted  # the next change-password starts from the new key
        assert verify_chain(engine).events == 6
    finally:
        engine.dispose()


def test_wrong_provisioner_password_records_nothing(home: Path, passwords: dict[str, Path]) -> None:
    message = clean_error(
        run(
            "change-password",
            "provisioner",
            "admin",
            "--password-file",
            passwords["old"],
            "--new-password-file",
            passwords["new"],
            home=home,
        )
    )
    assert "wrong password" in message
    assert len(ledger_events(home)) == 5
