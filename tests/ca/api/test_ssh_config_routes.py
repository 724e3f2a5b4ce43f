"""`/ssh/bastion` and `/ssh/config` in-process, with step's requests as its source sends
them (cli `command/ssh/proxycommand.go`, `command/ssh/config.go`) and step-ca's answers
(certificates `api/ssh.go`, `authority/ssh.go`, `templates/values.go`).

Every refusal is a 400 (404 without SSH keys) in step-ca's error shape, with no event.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.asgi import assert_refused, call
from support.ca_server import PASSWORD, CAHome, init_ca

from ca.authority.authority import Authority
from ca.home import Home
from ca.runtime import open_runtime

BASTIONS = """
[[ssh_bastions]]
hosts = ["*.internal.example", "db?.example"]
hostname = "jump.internal.example"
user = "jumper"
port = 2222
cmd = "nc %h %p"
flags = "-A -o ServerAliveInterval=30"

[[ssh_bastions]]
hosts = ["*.lab.example"]
hostname = "lab-gw.example"
"""

# What `step ssh config` sends on Linux with a context and `--set Provisioner=admin`.
STEP_USER_DATA = {
    "GOOS": "linux",
    "StepPath": "/home/alice/.step/authorities/ca.example",
    "StepBasePath": "/home/alice/.step",
    "StepSSHTemplateVersion": "v2",
    "Context": "ca.example",
    "User": "alice",
    "Provisioner": "admin",
}


@dataclass
class Site:
    ca: CAHome
    authority: Authority

    def call(self, path: str, body: Any) -> httpx.Response:
        return call(self.authority, "POST", path, base_url="https://ca", json=body)

    def refused(self, status: int, path: str, body: Any) -> str:
        return assert_refused(self.ca, status, lambda: self.call(path, body))


def _site(base: Path, *extra: str, tables: str = "") -> Site:
    ca = init_ca(base, extra=extra)
    config = ca.home / "config" / "ca.toml"
    config.write_text(config.read_text() + tables)
    return Site(ca, Authority(open_runtime(Home(ca.home)), PASSWORD))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = _site(tmp_path_factory.mktemp("ssh-api"), "--ssh", tables=BASTIONS)
    try:
        yield site
    finally:
        site.authority.close()


# -- /ssh/bastion ------------------------------------------------------------------------


def test_a_host_matching_a_bastion_pattern_gets_that_bastion_as_step_ca_shapes_it(
    site: Site,
) -> None:
    for prefix in ("", "/1.0"):
        response = site.call(
            f"{prefix}/ssh/bastion", {"user": "alice", "hostname": "web.internal.example"}
        )
        assert response.status_code == 200
        assert response.json() == {
            "hostname": "web.internal.example",
            "bastion": {
                "hostname": "jump.internal.example",
                "user": "jumper",
                "port": "2222",
                "cmd": "nc %h %p",
                "flags": "-A -o ServerAliveInterval=30",
            },
        }


def test_patterns_match_without_case_and_the_first_matching_bastion_wins(site: Site) -> None:
    answer = site.call("/ssh/bastion", {"user": "a", "hostname": "DB1.Example"}).json()
    assert answer["bastion"]["hostname"] == "jump.internal.example"
    lab = site.call("/ssh/bastion", {"user": "a", "hostname": "r1.lab.example"}).json()
    # Unset fields are left out, as step-ca's omitempty does.
    assert lab == {"hostname": "r1.lab.example", "bastion": {"hostname": "lab-gw.example"}}


def test_a_host_no_pattern_matches_and_the_bastion_itself_are_reached_directly(
    site: Site,
) -> None:
    for host in ("db10.example", "elsewhere.example", "jump.internal.example"):
        answer = site.call("/ssh/bastion", {"user": "alice", "hostname": host})
        assert answer.status_code == 200
        assert answer.json() == {"hostname": host}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"user": "alice"}, "missing or empty hostname"),
        ({"user": "alice", "hostname": ""}, "missing or empty hostname"),
        ({"hostname": ["a"]}, "hostname must be a string"),
        ({"hostname": "a", "user": 5}, "user must be a string"),
        ([], "object"),
    ],
)
def test_bastion_refuses_a_malformed_request(site: Site, body: Any, words: str) -> None:
    assert words in site.refused(400, "/ssh/bastion", body)


def test_without_ssh_keys_bastion_is_not_found(tmp_path: Path) -> None:
    plain = _site(tmp_path, tables=BASTIONS)
    try:
        plain.refused(404, "/ssh/bastion", {"user": "a", "hostname": "web.internal.example"})
    finally:
        plain.authority.close()


# -- /ssh/config -------------------------------------------------------------------------


def _templates(response: httpx.Response, kind: str) -> dict[str, dict[str, str]]:
    assert response.status_code == 200, response.text
    assert set(response.json()) == {f"{kind}Templates"}
    return {
        t["name"]: {**t, "content": base64.b64decode(t["content"]).decode()}
        for t in response.json()[f"{kind}Templates"]
    }


def test_step_ssh_config_gets_step_cas_four_user_templates_scoped_by_check_host(
    site: Site,
) -> None:
    templates = _templates(
        site.call("/ssh/config", {"type": "user", "data": STEP_USER_DATA}), "user"
    )
    assert [(n, t["type"], t["path"], t["comment"]) for n, t in templates.items()] == [
        ("config.tpl", "snippet", "~/.ssh/config", "#"),
        ("step_includes.tpl", "prepend-line", "${STEPPATH}/ssh/includes", "#"),
        ("step_config.tpl", "file", "ssh/config", "#"),
        ("known_hosts.tpl", "file", "ssh/known_hosts", "#"),
    ]
    assert templates["config.tpl"]["content"] == (
        'Host *\n\tInclude "/home/alice/.step/ssh/includes"'
    )
    assert templates["step_includes.tpl"]["content"] == (
        'Include "/home/alice/.step/authorities/ca.example/ssh/config"'
    )
    assert templates["step_config.tpl"]["content"] == (
        'Match exec "step ssh check-host --context ca.example %h"\n'
        "\tUser alice\n"
        '\tUserKnownHostsFile "/home/alice/.step/authorities/ca.example/ssh/known_hosts"\n'
        "\tProxyCommand step ssh proxycommand --context ca.example --provisioner admin"
        " %r %h %p\n"
    )
    keys = _roots(site)
    assert templates["known_hosts.tpl"]["content"] == (
        f"@cert-authority * ecdsa-sha2-nistp256 {keys['hostKey'][0]}\n"
    )
    # Nothing in any of them applies to every host: `Host *` only includes the file whose
    # settings sit under the Match exec line.
    assert "StrictHostKeyChecking" not in "".join(t["content"] for t in templates.values())


def _roots(site: Site) -> dict[str, list[str]]:
    answer: dict[str, list[str]] = call(
        site.authority, "GET", "/ssh/roots", base_url="https://ca"
    ).json()
    return answer


def test_windows_paths_follow_step_cas_windows_templates(site: Site) -> None:
    data = {"GOOS": "windows", "StepPath": "C:\\Users\\Ann Lee\\.step", "User": "ann",
            "StepSSHTemplateVersion": "v2", "Console": "true"}  # fmt: skip
    templates = _templates(site.call("/ssh/config/user", {"data": data}), "user")
    assert (
        templates["config.tpl"]["content"]
        == 'Host *\n\tInclude "/Users/Ann Lee/.step/ssh/includes"'
    )
    config = templates["step_config.tpl"]["content"]
    assert '\tUserKnownHostsFile "C:\\Users\\Ann Lee\\.step\\ssh\\known_hosts"\n' in config
    assert (
        "\tProxyCommand C:\\Windows\\System32\\cmd.exe /c step ssh proxycommand --console"
        " %r %h %p\n"
    ) in config


def test_a_step_older_than_v0_18_gets_the_includes_as_a_file(site: Site) -> None:
    data = {"StepPath": "/home/bob/.step", "User": "bob"}
    templates = _templates(site.call("/ssh/config", {"type": "user", "data": data}), "user")
    includes = templates["step_includes.tpl"]
    assert (includes["type"], includes["path"]) == ("file", "ssh/includes")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"User": "alice"}, "required variable 'StepPath' is missing"),
        ({**STEP_USER_DATA, "StepPath": 'x"\n\tProxyCommand evil'}, "data.StepPath"),
        ({**STEP_USER_DATA, "StepPath": "relative/.step"}, "data.StepPath"),
        ({**STEP_USER_DATA, "StepPath": "/home/%u/.step"}, "data.StepPath"),
        ({**STEP_USER_DATA, "StepBasePath": "/home/${HOME}"}, "data.StepBasePath"),
        ({**STEP_USER_DATA, "User": "alice\n\tProxyCommand evil"}, "data.User"),
        ({**STEP_USER_DATA, "User": "alice bob"}, "data.User"),
        ({**STEP_USER_DATA, "Context": "ca; rm -rf ~"}, "data.Context"),
        ({**STEP_USER_DATA, "Provisioner": "-oProxyCommand=evil"}, "data.Provisioner"),
        ({**STEP_USER_DATA, "Console": "yes"}, "data.Console"),
        ({**STEP_USER_DATA, "GOOS": "Linux\n"}, "data.GOOS"),
        ({**STEP_USER_DATA, "hostPattern": "* evil"}, "data.hostPattern"),
        ({**STEP_USER_DATA, "User": 7}, "data.User must be a string"),
        ({"Client": "ledgerca"}, "required variable 'LedgercaHome' is missing"),
        ({"Client": "ledgerca", "LedgercaHome": "/home/a b"}, "data.LedgercaHome"),
        ({"Client": "openssh", "StepPath": "/s"}, "data.Client"),
    ],
)
def test_a_value_that_could_inject_into_a_config_file_is_refused(
    site: Site, data: dict[str, Any], words: str
) -> None:
    assert words in site.refused(400, "/ssh/config", {"type": "user", "data": data})


def test_step_ssh_config_host_gets_a_snippet_starting_with_match_all(site: Site) -> None:
    # `step ssh config --host --set Certificate=ssh_host_ecdsa_key-cert.pub --set Key=...`
    data = {"GOOS": "linux", "StepPath": "/root/.step", "StepBasePath": "/root/.step",
            "StepSSHTemplateVersion": "v2",
            "Certificate": "ssh_host_ecdsa_key-cert.pub", "Key": "ssh_host_ecdsa_key"}  # fmt: skip
    templates = _templates(site.call("/ssh/config", {"type": "host", "data": data}), "host")
    assert [(n, t["type"], t["path"]) for n, t in templates.items()] == [
        ("sshd_config.tpl", "snippet", "/etc/ssh/sshd_config"),
        ("ca.tpl", "file", "/etc/ssh/ledgerca_user_ca.pub"),
    ]
    directives = [
        line.strip()
        for line in templates["sshd_config.tpl"]["content"].splitlines()
        if not line.strip().startswith("#")
    ]
    assert directives == [
        "Match all",
        "TrustedUserCAKeys /etc/ssh/ledgerca_user_ca.pub",
        "HostCertificate /etc/ssh/ssh_host_ecdsa_key-cert.pub",
        "HostKey /etc/ssh/ssh_host_ecdsa_key",
        "RevokedKeys /etc/ssh/ledgerca_revoked.krl",
    ]
    assert templates["ca.tpl"]["content"] == (f"ecdsa-sha2-nistp256 {_roots(site)['userKey'][0]}\n")


def test_absolute_host_key_paths_are_kept(site: Site) -> None:
    data = {"Certificate": "/srv/ssh/host-cert.pub", "Key": "/srv/ssh/host"}
    snippet = _templates(site.call("/ssh/config/host", {"data": data}), "host")
    assert "\tHostCertificate /srv/ssh/host-cert.pub\n" in snippet["sshd_config.tpl"]["content"]
    assert "\tHostKey /srv/ssh/host\n" in snippet["sshd_config.tpl"]["content"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"Key": "k"}, "required variable 'Certificate' is missing"),
        ({"Certificate": "c"}, "required variable 'Key' is missing"),
        ({"Certificate": "c\nPermitRootLogin yes", "Key": "k"}, "data.Certificate"),
        ({"Certificate": "c", "Key": "my key"}, "data.Key"),
        ({"Certificate": "c", "Key": "k", "krlPath": "revoked.krl"}, "data.krlPath"),
    ],
)
def test_a_host_request_without_its_files_or_with_odd_ones_is_refused(
    site: Site, data: dict[str, str], words: str
) -> None:
    assert words in site.refused(400, "/ssh/config", {"type": "host", "data": data})
