"""Real OpenSSH is the judge: a real `sshd` configured with exactly the host snippet of
`/ssh/config` trusts ledgerca's user CA and KRL; a real `ssh` with exactly the user config
trusts ledgerca's host CA for the hosts the CA knows, and for no other.

The host is enrolled as the README says: a host certificate (`ledgerca ssh certificate
--host`), the KRL first (`ledgerca ssh krl --out`: sshd refuses every key while the file
is missing), then `ledgerca ssh config --host` appended after an existing `Match` block.
`sshd -t` judges the snippet as `step ssh config --host` asks for it. Users get their
config from `ledgerca ssh config --write`, or as step writes step-ca's four templates.
"""

from __future__ import annotations

import base64
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from support.ca_server import (
    CAHome,
    RunningCA,
    cli_env,
    event_count,
    init_ca,
    ledgerca,
    start_ca,
)
from support.ssh import (
    SSH_KEYGEN,
    Sshd,
    keygen,
    keygen_list,
    needs_sshd,
    ssh_login,
    ssh_run,
    ssh_settings,
    sshd_test,
    start_sshd_with,
)

from ca.client.ssh_templates import BEGIN, END
from ca.ssh.certificates import parse_certificate

pytestmark = needs_sshd

# An sshd_config that already ends inside a Match block, as many do.
EXISTING_MATCH = "Match User nobody-here\n\tX11Forwarding no\n"


@dataclass
class Site:
    ca: CAHome
    running: RunningCA
    client_home: Path
    sshd: Sshd
    krl: Path
    known_hosts: Path
    work: Path
    bin: Path
    """`ledgerca` as a command on PATH, for `Match exec` lines."""

    def client(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A client verb in the bootstrapped client home."""
        if env is None:
            return ledgerca(*args, home=self.client_home, check=check)
        return subprocess.run(
            [sys.executable, "-m", "ca", "--home", str(self.client_home), *args],
            capture_output=True, text=True, env=env, check=check, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def user_certificate(self, name: str, *principals: str) -> tuple[Path, Path]:
        key = keygen(self.work, name)
        flags = [arg for p in principals for arg in ("--principal", p)]
        self.client(
            "ssh", "certificate", name, f"{key}.pub", *flags,
            "--provisioner-password-file", str(self.ca.provisioner_password_file),
        )  # fmt: skip
        return key, self.work / f"{name}-cert.pub"

    def env(self, home: Path, *path: Path) -> dict[str, str]:
        """A user's environment: their HOME, and PATH with `path` first."""
        return {**cli_env(), "HOME": str(home),
                "PATH": os.pathsep.join([*map(str, path), "/usr/bin", "/bin"])}  # fmt: skip


def _shim(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    script = directory / name
    script.write_text(body)
    script.chmod(0o755)


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
        root = x509.load_pem_x509_certificate(ca.root.read_bytes())
        ledgerca(
            "bootstrap", "--ca-url", running.url,
            "--fingerprint", root.fingerprint(hashes.SHA256()).hex(), home=client_home,
        )  # fmt: skip
        bin_dir = base / "bin"
        _shim(bin_dir, "ledgerca", f'#!/bin/sh\nexec {sys.executable} -m ca "$@"\n')
        site = Site(
            ca, running, client_home, None, work / "revoked.krl",  # type: ignore[arg-type]
            client_home / "ssh" / "known_hosts", work, bin_dir,
        )  # fmt: skip

        # The host's enrolment, in the README's order.
        host_key = keygen(work, "ssh_host_ecdsa_key", "ecdsa")
        site.client(
            "ssh", "certificate", "sshd-under-test", f"{host_key}.pub", "--host",
            "--principal", "127.0.0.1", "--principal", "localhost",
            "--provisioner-password-file", str(ca.provisioner_password_file),
        )  # fmt: skip
        site.client("ssh", "krl", "--out", str(site.krl))
        user_ca = work / "user_ca.pub"
        host_config = site.client(
            "ssh", "config", "--host",
            "--set", f"Certificate={work / 'ssh_host_ecdsa_key-cert.pub'}",
            "--set", f"Key={host_key}",
            "--set", f"userCAPath={user_ca}", "--set", f"krlPath={site.krl}",
        ).stdout  # fmt: skip
        user_ca.write_text(_section(host_config, "ca.tpl"))
        sshd = start_sshd_with(work, EXISTING_MATCH + _section(host_config, "sshd_config.tpl"))
        site.sshd = sshd

        # A user's config: `ledgerca ssh config --write`, which also writes the known_hosts.
        site.client("ssh", "config", "--write", env=site.env(work / "user-home"))
        assert site.known_hosts.read_text().startswith("@cert-authority * ")
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
        if line.startswith("# ") and " -> " in line:
            taking = line.startswith(f"# {name} (")
            continue
        if taking:
            lines.append(line)
    return "\n".join(lines) + "\n"


def _step_host_snippet(site: Site) -> str:
    """The sshd snippet exactly as `step ssh config --host --set Certificate=... --set
    Key=...` asks for it (cli `command/ssh/config.go`): bare names in /etc/ssh."""
    data = {"GOOS": "linux", "StepPath": "/root/.step", "StepBasePath": "/root/.step",
            "StepSSHTemplateVersion": "v2", "Certificate": "ssh_host_ecdsa_key-cert.pub",
            "Key": "ssh_host_ecdsa_key"}  # fmt: skip
    with site.running.client() as client:
        answer = client.post("/ssh/config", json={"type": "host", "data": data})
    assert answer.status_code == 200, answer.text
    (snippet,) = [t for t in answer.json()["hostTemplates"] if t["name"] == "sshd_config.tpl"]
    return base64.b64decode(snippet["content"]).decode()


def test_the_step_host_snippet_passes_sshd_t_after_a_match_block_and_alone(
    site: Site, tmp_path: Path
) -> None:
    snippet = _step_host_snippet(site)
    assert snippet.startswith("Match all\n")
    own_key = f"HostKey {site.work / 'ssh_host_ecdsa_key'}\nPort 2222\n"
    after_match = tmp_path / "after_match"
    after_match.write_text(own_key + EXISTING_MATCH + snippet)
    alone = tmp_path / "alone"
    alone.write_text(own_key + snippet)
    for config in (after_match, alone):
        checked = sshd_test(config)
        assert checked.returncode == 0, checked.stderr
    # It applies to every connection, the user of the earlier Match block included.
    effective = sshd_test(after_match, "user=nobody-here", "host=h", "addr=127.0.0.1").stdout
    assert "trustedusercakeys /etc/ssh/ledgerca_user_ca.pub" in effective
    assert "revokedkeys /etc/ssh/ledgerca_revoked.krl" in effective
    # The judge can tell: without its first line, sshd refuses the same file.
    broken = tmp_path / "broken"
    broken.write_text(own_key + EXISTING_MATCH + snippet.removeprefix("Match all\n"))
    refused = sshd_test(broken)
    assert refused.returncode != 0 and "not allowed within a Match block" in refused.stderr


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


# -- the user's side: only the CA's hosts get the CA's settings ---------------------------

OWN_CONFIG = "Host *.example.org\n\tUserKnownHostsFile ~/.ssh/my_known_hosts\n"
"""A user's own ~/.ssh/config, before ledgerca's or step's snippet lands in it."""


def test_ledgerca_ssh_config_logs_in_to_a_ca_host_and_leaves_other_hosts_alone(
    site: Site,
) -> None:
    home = site.work / "bob"
    (home / ".ssh").mkdir(parents=True)
    config = home / ".ssh" / "config"
    config.write_text(OWN_CONFIG)
    env = site.env(home, site.bin)
    for _ in range(2):  # writing again replaces its block
        site.client("ssh", "config", "--write", env=env)
    written = config.read_text()
    assert written.startswith(OWN_CONFIG) and written.count(BEGIN) == written.count(END) == 1

    # The host the CA certified: its known_hosts, through `ledgerca ssh check-host`.
    managed = ssh_settings(config, "localhost", env)
    assert managed["userknownhostsfile"] == str(site.known_hosts)
    key, cert = site.user_certificate("bob-login", "root")
    login = ssh_login(site.sshd, config=config, identity=key, certificate=cert, env=env)
    assert login.returncode == 0, login.stderr
    # Hosts it does not know keep the user's settings, or ssh's defaults, untouched.
    assert ssh_settings(config, "git.example.org", env)["userknownhostsfile"] == str(
        Path(pwd.getpwuid(os.getuid()).pw_dir, ".ssh", "my_known_hosts")
    )
    other = ssh_settings(config, "unmanaged.test", env)
    assert str(site.known_hosts) not in other["userknownhostsfile"]
    assert other["stricthostkeychecking"] != "true"
    # Without `ledgerca` on PATH the Match line matches nothing: no host is taken over.
    bare = ssh_settings(config, "localhost", site.env(home))
    assert str(site.known_hosts) not in bare["userknownhostsfile"]


STEP_CHECK_HOST = """#!{python}
# A stand-in for `step ssh check-host [--context NAME] HOST`: ask the CA, exit 0 or 1.
import sys, httpx
args = sys.argv[1:]
assert args[:2] == ["ssh", "check-host"], args
answer = httpx.post("{url}/ssh/check-host", verify="{root}",
                    json={{"type": "host", "principal": args[-1]}})
sys.exit(0 if answer.json()["exists"] is True else 1)
"""


def _write_as_step(step_path: Path, answer: dict[str, list[dict[str, str]]], home: Path) -> None:
    """step's `Output.Write` for one context: `${{STEPPATH}}` is the base path, a relative
    path is under the context's StepPath, `~` is the user's home."""
    from ca.client.ssh_templates import RenderedTemplate, write_template

    for t in answer["userTemplates"]:
        path = t["path"].replace("${STEPPATH}", str(step_path)).replace("~", str(home), 1)
        where = Path(path) if path.startswith("/") else step_path / path
        content = base64.b64decode(t["content"]).decode()
        write_template(RenderedTemplate(t["name"], t["type"], where, content))


def test_step_ssh_config_gives_the_cas_settings_only_to_hosts_the_ca_knows(
    site: Site,
) -> None:
    home = site.work / "carol"
    step_path = home / ".step"
    (home / ".ssh").mkdir(parents=True)
    config = home / ".ssh" / "config"
    config.write_text(OWN_CONFIG)
    data = {"GOOS": "linux", "StepPath": str(step_path), "StepBasePath": str(step_path),
            "StepSSHTemplateVersion": "v2", "User": "root", "Provisioner": "admin"}  # fmt: skip
    with site.running.client() as client:
        answer = client.post("/ssh/config", json={"type": "user", "data": data}).json()
    _write_as_step(step_path, answer, home)
    fake_step = site.work / "fake-step"
    _shim(fake_step, "step", STEP_CHECK_HOST.format(
        python=sys.executable, url=site.running.url, root=site.ca.root))  # fmt: skip
    env = site.env(home, fake_step)

    managed = ssh_settings(config, "localhost", env)
    assert managed["userknownhostsfile"] == str(step_path / "ssh" / "known_hosts")
    assert managed["proxycommand"].startswith("step ssh proxycommand --provisioner admin ")
    assert managed["user"] == "root"
    # The known_hosts step wrote is what lets ssh trust the CA's host: log in with it.
    key, cert = site.user_certificate("carol-login", "root")
    trusted = ssh_run(
        site.sshd, identity=key, certificate=cert, known_hosts=Path(managed["userknownhostsfile"])
    )
    assert trusted.returncode == 0, trusted.stderr

    for unmanaged in ("git.example.org", "unmanaged.test"):
        settings = ssh_settings(config, unmanaged, env)
        assert "proxycommand" not in settings
        assert str(step_path) not in settings["userknownhostsfile"]
    # step absent (this machine has none): nothing matches, every host as before.
    assert "proxycommand" not in ssh_settings(config, "localhost", site.env(home))
