"""A real sshd judges the add-user certificate (`step ssh certificate --add-user`): it lets
the key in only as the principal `provisioner`, and runs the certificate's force-command,
whatever command the client asked for.

The host's `sudo` and `nc` are stand-ins on the session's PATH (`SetEnv`), which record what
they were asked to do: no account is created on the machine running the tests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.ca_server import RunningCA, init_ca, ledgerca, start_ca
from support.ssh import (
    certificate_line,
    keygen,
    needs_sshd,
    public_blob,
    sign_ssh,
    ssh_run,
    start_sshd_with,
)

pytestmark = needs_sshd

STAND_IN = """#!/bin/sh
echo "$(basename "$0") $*" >> {record}
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCA]:
    ca = init_ca(tmp_path_factory.mktemp("add-user"))
    ledgerca("ssh", "init", "--password-file", str(ca.password_file), home=ca.home)
    ledgerca(
        "provisioner", "add", "adds-users",
        "--password-file", str(ca.provisioner_password_file),
        "--claims", json.dumps({"enableSSHCA": True, "enableSSHAddUser": True}),
        home=ca.home,
    )  # fmt: skip
    server = start_ca(ca)
    try:
        yield server
    finally:
        server.stop()


def test_sshd_runs_the_add_user_command_for_the_provisioner_principal_only(
    running: RunningCA, tmp_path: Path
) -> None:
    user_key, add_user_key = keygen(tmp_path, "id"), keygen(tmp_path, "id-provisioner")
    response = sign_ssh(
        running, user_key, key_id="alice", principals=["alice"], provisioner="adds-users",
        addUserPublicKey=public_blob(add_user_key),
    )  # fmt: skip
    user_cert = tmp_path / "id-cert.pub"
    user_cert.write_text(certificate_line(response) + "\n")
    add_user_cert = tmp_path / "id-provisioner-cert.pub"
    add_user_cert.write_text(certificate_line(response, "addUserCrt") + "\n")

    with running.client() as client:
        user_ca = client.get("/1.0/ssh/roots").json()["userKey"]
    trusted = tmp_path / "user_ca.pub"
    trusted.write_text("".join(f"{_key_type(k)} {k}\n" for k in user_ca))
    bin_dir, record = tmp_path / "bin", tmp_path / "ran"
    bin_dir.mkdir()
    for tool in ("sudo", "nc"):
        (bin_dir / tool).write_text(STAND_IN.format(record=record))
        (bin_dir / tool).chmod(0o755)
    principals = tmp_path / "principals"
    principals.write_text("provisioner\n")
    host_key = keygen(tmp_path, "host", "ecdsa")
    sshd = start_sshd_with(
        tmp_path,
        f"HostKey {host_key}\n"
        f"TrustedUserCAKeys {trusted}\n"
        f"AuthorizedPrincipalsFile {principals}\n"
        f"SetEnv PATH={bin_dir}:/usr/bin:/bin\n",
    )
    try:
        known = tmp_path / "known_hosts"
        # The user certificate names alice, not provisioner: this host refuses it.
        refused = ssh_run(
            sshd, identity=user_key, certificate=user_cert, known_hosts=known, strict="no"
        )
        assert refused.returncode == 255, refused.stderr
        assert not record.exists()
        # The add-user certificate gets in, and sshd runs its force-command instead of `true`.
        admitted = ssh_run(
            sshd, identity=add_user_key, certificate=add_user_cert, known_hosts=known,
            strict="no",
        )  # fmt: skip
        assert admitted.returncode == 0, admitted.stderr + sshd.output()
        assert record.read_text().splitlines() == ["sudo useradd -m alice", "nc -q0 localhost 22"]
    finally:
        sshd.stop()


def _key_type(blob: str) -> str:
    raw = base64.b64decode(blob)
    return raw[4 : 4 + int.from_bytes(raw[:4], "big")].decode()
