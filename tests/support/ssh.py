"""OpenSSH for tests: keys from `ssh-keygen`, SSH sign tokens, and a real `sshd` on a
loopback high port with its own config."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import SSHCertificate

from ca.ssh.certificates import SSHRequest, build_certificate
from support.binaries import needs_binary
from support.ca_server import RunningCA, free_port, mint_token, provisioner_key
from support.waiting import wait_until

SSHD = "/usr/sbin/sshd"
SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")

needs_ssh_keygen = needs_binary("ssh-keygen", "openssh-client")
needs_sshd = [
    pytest.mark.skipif(
        not (os.path.exists(SSHD) and SSH and SSH_KEYGEN),
        reason="sshd/ssh not installed (apt-get install openssh-server openssh-client);"
        " .ci/run installs them",
    ),
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="the sshd tests log in as root and create /run/sshd: run them as root, as CI does",
    ),
]


def keygen(directory: Path, name: str, kind: str = "ed25519") -> Path:
    """A new unencrypted key pair; returns the private key path (`.pub` beside it)."""
    assert SSH_KEYGEN is not None
    path = directory / name
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def public_blob(private_key: Path) -> str:
    """The std-base64 wire blob of `<key>.pub`, as step puts it in `publicKey`."""
    return Path(f"{private_key}.pub").read_text().split()[1]


def ssh_token(
    running: RunningCA,
    *,
    key_id: str,
    principals: list[str],
    cert_type: str = "user",
    provisioner: str = "admin",
    op: str = "ssh/sign",
    **ssh_options: str,
) -> str:
    """A JWK one-time token with step's `step.ssh` claim, as `step ssh certificate` mints it."""
    key, kid = provisioner_key(running.ca, provisioner)
    options: dict[str, Any] = {
        "certType": cert_type,
        "keyID": key_id,
        "principals": principals,
        **ssh_options,
    }
    return mint_token(
        key,
        kid,
        subject=key_id,
        issuer=provisioner,
        sans=principals,
        audience=f"{running.url}/1.0/{op}",
        extra={"step": {"ssh": options}},
    )


def sign_ssh(
    running: RunningCA,
    private_key: Path,
    *,
    key_id: str,
    principals: list[str],
    cert_type: str = "user",
    provisioner: str = "admin",
    **body: Any,
) -> httpx.Response:
    """POST /1.0/ssh/sign for `<private_key>.pub` with a fresh token."""
    token = ssh_token(
        running, key_id=key_id, principals=principals, cert_type=cert_type, provisioner=provisioner
    )
    request = {
        "publicKey": public_blob(private_key),
        "ott": token,
        "certType": cert_type,
        "keyID": key_id,
        "principals": principals,
        **body,
    }
    with running.client() as client:
        return client.post("/1.0/ssh/sign", json=request)


def certificate_line(response: httpx.Response, field: str = "crt") -> str:
    """The `-cert.pub` line of a 201 /ssh/sign|renew|rekey answer (`field`: `addUserCrt`
    for the add-user certificate)."""
    assert response.status_code == 201, response.text
    blob = response.json()[field]
    import base64

    raw = base64.b64decode(blob)
    kind = raw[4 : 4 + int.from_bytes(raw[:4], "big")].decode()
    return f"{kind} {blob}"


def keygen_list(certificate_file: Path) -> str:
    """`ssh-keygen -L -f CERT`: OpenSSH's own reading of a certificate."""
    assert SSH_KEYGEN is not None
    return subprocess.run(
        [SSH_KEYGEN, "-L", "-f", str(certificate_file)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "UTC"},  # it prints validity in local time
    ).stdout


@dataclass
class Sshd:
    """A real sshd in the foreground (`-D -e`), trusting the given user CA and KRL."""

    process: subprocess.Popen[str]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


SSHD_BASE = """\
ListenAddress 127.0.0.1
AuthorizedKeysFile none
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel VERBOSE
"""
"""What every test sshd has: loopback only, certificates only, root may log in."""


def start_sshd(
    directory: Path,
    *,
    host_key: Path,
    trusted_user_ca: Path,
    revoked_keys: Path,
    host_certificate: Path | None = None,
) -> Sshd:
    lines = [
        f"HostKey {host_key}",
        f"TrustedUserCAKeys {trusted_user_ca}",
        f"RevokedKeys {revoked_keys}",
    ]
    if host_certificate is not None:
        lines.append(f"HostCertificate {host_certificate}")
    return start_sshd_with(directory, "\n".join(lines) + "\n")


def sshd_test(config: Path, *extended: str) -> subprocess.CompletedProcess[str]:
    """`sshd -t -f CONFIG` (or `sshd -T -C ...` with `extended` connection parameters)."""
    mode = ["-T", "-C", ",".join(extended)] if extended else ["-t"]
    return subprocess.run(
        [SSHD, *mode, "-f", str(config)], capture_output=True, text=True, check=False
    )


def start_sshd_with(directory: Path, config_text: str) -> Sshd:
    """A real sshd whose config is `SSHD_BASE`, a port, a pid file, then `config_text`."""
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(f"Port {port}\nPidFile {directory / 'sshd.pid'}\n{SSHD_BASE}{config_text}")
    checked = sshd_test(config)
    if checked.returncode != 0:
        raise RuntimeError(f"sshd -t refuses {config}:\n{checked.stderr}")
    log = directory / "sshd.log"
    handle = log.open("w")
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)],
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    handle.close()
    sshd = Sshd(process, port, log)

    def listening() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}:\n{sshd.output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_until(listening, 30, f"sshd listens on port {port}")
    except AssertionError:
        sshd.stop()
        raise RuntimeError(f"sshd did not listen within 30 s:\n{sshd.output()}") from None
    return sshd


def ssh_settings(config: Path, host: str, env: dict[str, str]) -> dict[str, str]:
    """`ssh -G -F CONFIG HOST`: what ssh would use for HOST, one lower-case key per line
    (`Match exec` commands run, in `env`)."""
    assert SSH is not None
    shown = subprocess.run(
        [SSH, "-G", "-F", str(config), host],
        capture_output=True, text=True, env=env, check=True, timeout=60,
    ).stdout  # fmt: skip
    return dict(line.split(" ", 1) for line in shown.splitlines() if " " in line)


def ssh_login(
    sshd: Sshd,
    *,
    config: Path,
    identity: Path,
    certificate: Path,
    env: dict[str, str],
    host: str = "localhost",
) -> subprocess.CompletedProcess[str]:
    """`ssh -F CONFIG root@HOST true`, never prompting: which known_hosts file is used, and
    whether the host is checked, is the config's business."""
    assert SSH is not None
    return subprocess.run(
        [
            SSH, "-F", str(config), "-p", str(sshd.port),
            "-i", str(identity), "-o", f"CertificateFile={certificate}",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20",
            f"root@{host}", "true",
        ],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=60,
        check=False,
    )  # fmt: skip


def ssh_run(
    sshd: Sshd,
    *,
    identity: Path,
    certificate: Path,
    known_hosts: Path,
    user: str = "root",
    host: str = "127.0.0.1",
    strict: str = "yes",
) -> subprocess.CompletedProcess[str]:
    """`ssh ... true` with the key and its certificate, never prompting."""
    assert SSH is not None
    return subprocess.run(
        [
            SSH, "-F", "/dev/null", "-p", str(sshd.port),
            "-i", str(identity), "-o", f"CertificateFile={certificate}",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", f"StrictHostKeyChecking={strict}", "-o", "ConnectTimeout=20",
            f"{user}@{host}", "true",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )  # fmt: skip


# -- certificates without a server -------------------------------------------------

NOW = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)


def make_certificate(
    ca_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    subject_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    *,
    serial: int = 1234,
    cert_type: str = "host",
    principals: tuple[str, ...] = ("web.internal",),
    start: datetime = NOW - timedelta(hours=1),
    lifetime: timedelta = timedelta(days=1),
) -> SSHCertificate:
    request = SSHRequest(
        cert_type="host" if cert_type == "host" else "user",
        key_id="test",
        principals=principals,
        valid_after=start,
        valid_before=start + lifetime,
    )
    return build_certificate(
        request, public_key=subject_key.public_key(), ca_key=ca_key, serial=serial
    )
