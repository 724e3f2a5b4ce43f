"""Real OpenSSH is the judge: a real `sshd` trusts ledgerca's user CA and KRL, a real `ssh`
trusts ledgerca's host CA through an `@cert-authority` line from `/ssh/config`.

Certificates are obtained with the client verbs (`ledgerca ssh certificate|revoke|hosts|
config`), the KRL with `ledgerca ssh krl --out`.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.ca_server import CAHome, RunningCA, event_count, init_ca, ledgerca, start_ca
from support.ssh import (
    SSH_KEYGEN,
    Sshd,
    keygen,
    keygen_list,
    needs_sshd,
    ssh_run,
    start_sshd,
)

from ca.ssh.certificates import parse_certificate

pytestmark = needs_sshd


@dataclass
class Site:
    ca: CAHome
    running: RunningCA
    client_home: Path
    sshd: Sshd
    krl: Path
    known_hosts: Path
    work: Path

    def client(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A client verb against the running CA, trusting its root explicitly."""
        return ledgerca(
            *args,
            "--ca-url", self.running.url, "--root", str(self.ca.root),
            home=self.client_home, check=check,
        )  # fmt: skip

    def user_certificate(self, name: str, *principals: str) -> tuple[Path, Path]:
        key = keygen(self.work, name)
        flags = [arg for p in principals for arg in ("--principal", p)]
        self.client(
            "ssh", "certificate", name, f"{key}.pub", *flags,
            "--provisioner-password-file", str(self.ca.provisioner_password_file),
        )  # fmt: skip
        return key, self.work / f"{name}-cert.pub"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("sshd")
    ca = init_ca(base / "ca")
    running = start_ca(ca)
    sshd = None
    try:
        # `init --ssh` is covered in tests/ca/ssh; here the keys come later, as for a CA
        # that adds SSH after the fact.
        ledgerca("ssh", "init", "--password-file", str(ca.password_file), home=ca.home)
        work = base / "work"
        work.mkdir()
        client_home = base / "client"
        site = Site(
            ca, running, client_home, None, work / "revoked.krl", work / "known_hosts", work
        )  # type: ignore[arg-type]

        host_key = keygen(work, "ssh_host_ecdsa_key", "ecdsa")
        site.client(
            "ssh", "certificate", "sshd-under-test", f"{host_key}.pub", "--host",
            "--principal", "127.0.0.1", "--principal", "localhost",
            "--provisioner-password-file", str(ca.provisioner_password_file),
        )  # fmt: skip
        host_config = site.client("ssh", "config", "--host").stdout
        user_ca = work / "user_ca.pub"
        user_ca.write_text(_section(host_config, "ca.pub"))
        ledgerca("ssh", "krl", "--out", str(site.krl), home=ca.home)
        sshd = start_sshd(
            work,
            host_key=host_key,
            trusted_user_ca=user_ca,
            revoked_keys=site.krl,
            host_certificate=work / "ssh_host_ecdsa_key-cert.pub",
        )
        site.sshd = sshd
        with running.client() as client:
            answer = client.post("/ssh/config", json={"type": "user", "data": {}}).json()
        (known,) = [t for t in answer["userTemplates"] if t["name"] == "known_hosts"]
        site.known_hosts.write_text(base64.b64decode(known["content"]).decode())
        yield site
    finally:
        if sshd is not None:
            sshd.stop()
        running.stop()


def _section(output: str, name: str) -> str:
    """One template's content from `ledgerca ssh config` output."""
    lines: list[str] = []
    taking = False
    for line in output.splitlines():
        if line.startswith("# "):
            taking = line.startswith(f"# {name} ->")
            continue
        if taking:
            lines.append(line)
    return "\n".join(lines) + "\n"


def test_sshd_lets_a_user_in_with_a_ledgerca_certificate_and_refuses_it_once_revoked(
    site: Site,
) -> None:
    key, cert = site.user_certificate("root-login", "root")
    shown = keygen_list(cert)
    assert "root" in shown.split("Principals:")[1].split("Critical Options:")[0]
    assert "permit-pty" in shown.split("Extensions:")[1]

    allowed = ssh_run(site.sshd, identity=key, certificate=cert, known_hosts=site.known_hosts)
    assert allowed.returncode == 0, allowed.stderr + site.sshd.output()

    serial = str(parse_certificate(cert.read_text()).serial)
    before = event_count(site.ca)
    site.client(
        "ssh", "revoke", serial, "--reason", "key lost",
        "--provisioner-password-file", str(site.ca.provisioner_password_file),
    )  # fmt: skip
    assert event_count(site.ca) == before + 1
    ledgerca("ssh", "krl", "--out", str(site.krl), home=site.ca.home)
    assert SSH_KEYGEN is not None
    queried = subprocess.run(
        [SSH_KEYGEN, "-Q", "-f", str(site.krl), str(cert)], capture_output=True, text=True
    )
    assert queried.returncode != 0 and "REVOKED" in queried.stdout

    refused = ssh_run(site.sshd, identity=key, certificate=cert, known_hosts=site.known_hosts)
    assert refused.returncode != 0
    assert "revoked" in site.sshd.output().lower()

    # A host fetches the same KRL from the CA (`ssh krl` in a client home, over HTTPS);
    # another user's certificate is unaffected by it.
    other_key, other_cert = site.user_certificate("root-login-2", "root")
    site.krl.unlink()
    site.client("ssh", "krl", "--out", str(site.krl))
    assert (
        "REVOKED"
        in subprocess.run(
            [SSH_KEYGEN, "-Q", "-f", str(site.krl), str(cert)], capture_output=True, text=True
        ).stdout
    )
    again = ssh_run(
        site.sshd, identity=other_key, certificate=other_cert, known_hosts=site.known_hosts
    )
    assert again.returncode == 0, again.stderr


def test_sshd_refuses_a_certificate_whose_principals_do_not_name_the_user(site: Site) -> None:
    key, cert = site.user_certificate("not-root", "alice")
    refused = ssh_run(site.sshd, identity=key, certificate=cert, known_hosts=site.known_hosts)
    assert refused.returncode != 0


def test_ssh_trusts_the_host_certificate_through_the_cert_authority_line(site: Site) -> None:
    key, cert = site.user_certificate("host-check", "root")
    assert site.known_hosts.read_text().startswith("@cert-authority * ")
    trusted = ssh_run(site.sshd, identity=key, certificate=cert, known_hosts=site.known_hosts)
    assert trusted.returncode == 0, trusted.stderr
    assert "Host key verification failed" not in trusted.stderr

    # The same ssh without the line refuses the host: the trust came from the CA line.
    empty = site.work / "empty_known_hosts"
    empty.write_text("")
    untrusted = ssh_run(site.sshd, identity=key, certificate=cert, known_hosts=empty)
    assert untrusted.returncode != 0
    assert "Host key verification failed" in untrusted.stderr


def test_the_hosts_verb_lists_the_certified_sshd(site: Site) -> None:
    listed = site.client("ssh", "hosts").stdout.split()
    assert {"127.0.0.1", "localhost"} <= set(listed)
