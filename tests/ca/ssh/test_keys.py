"""SSH CA keys: created by `init --ssh` or `ssh init`, rotated by `ssh rotate`, recorded in
the ledger by reference and public key only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from support.cli import INIT, clean_error, ledger_events, ok, run, write_password

from ca.keys.files import load_private_key
from ca.keys.ids import key_id
from ca.ssh.keys import openssh_line

PASSWORD = "correct horse battery staple"


def _init(tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    home = tmp_path / "home"
    password = write_password(tmp_path / "ca.pw", PASSWORD)
    provisioner = write_password(tmp_path / "prov.pw", "provisioner secret")
    ok(run(*INIT, "--password-file", password, "--provisioner-password-file", provisioner,
           *extra, home=home))  # fmt: skip
    return home, password


def _ssh_keys(home: Path) -> dict[str, dict[str, object]]:
    """role → payload of the newest activation, for the SSH roles."""
    found: dict[str, dict[str, object]] = {}
    for event in ledger_events(home):
        if event.type == "authority.key_activated" and event.data["role"].startswith("ssh_"):
            found[event.data["role"]] = dict(event.data)
    return found


def test_init_with_ssh_creates_encrypted_user_and_host_keys_recorded_by_reference(
    tmp_path: Path,
) -> None:
    home, _ = _init(tmp_path, "--ssh")
    keys = _ssh_keys(home)
    assert set(keys) == {"ssh_user", "ssh_host"}
    for role, payload in keys.items():
        ref = payload["key_ref"]
        assert isinstance(ref, dict) and ref["type"] == "file"
        key_file = home / str(ref["path"])
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()
        private = load_private_key(key_file.read_bytes(), PASSWORD.encode())
        assert key_id(private.public_key()) == payload["key_id"]
        public_file = home / "certs" / f"{role}_ca_key.pub"
        assert public_file.read_text().strip() == openssh_line(private.public_key())
        assert str(payload["fingerprint"]).startswith("SHA256:")
    text = json.dumps([e.data for e in ledger_events(home)])
    assert "PRIVATE KEY" not in text and PASSWORD not in text


def test_ssh_init_adds_the_keys_later_once_and_refuses_a_second_time(tmp_path: Path) -> None:
    home, password = _init(tmp_path)
    assert _ssh_keys(home) == {}
    ok(run("ssh", "init", "--password-file", password, "--key-type", "OKP", home=home))
    keys = _ssh_keys(home)
    public = home / "certs" / "ssh_host_ca_key.pub"
    assert public.read_text().startswith("ssh-ed25519 ")
    before = len(ledger_events(home))
    message = clean_error(run("ssh", "init", "--password-file", password, home=home))
    assert "already set up" in message
    assert len(ledger_events(home)) == before and _ssh_keys(home) == keys


def test_rotating_the_host_key_activates_a_new_key_and_retires_the_old_one(tmp_path: Path) -> None:
    home, password = _init(tmp_path, "--ssh")
    old = _ssh_keys(home)
    ok(run("ssh", "rotate", "host", "--password-file", password, home=home))
    new = _ssh_keys(home)
    assert new["ssh_user"] == old["ssh_user"]
    assert new["ssh_host"]["key_id"] != old["ssh_host"]["key_id"]
    retired = [e.data for e in ledger_events(home) if e.type == "authority.key_retired"]
    assert retired == [{"key_id": old["ssh_host"]["key_id"], "role": "ssh_host"}]
    ref = new["ssh_host"]["key_ref"]
    assert isinstance(ref, dict)
    key_file = home / str(ref["path"])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The .pub beside the new key is what operators distribute.
    pub = key_file.name + ".pub"
    assert load_ssh_public_key((home / "certs" / pub).read_bytes())
