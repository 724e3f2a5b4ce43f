"""`/ssh/config`: the files a client or a host needs to trust this SSH CA.

Answers in step-ca's shape, `{"userTemplates": [...], "hostTemplates": [...]}`, each entry
`{"name","type","comment","path","content"}` with `content` base64 (Go's `[]byte`), and
renders step-ca's default templates (`templates/values.go`) from the data the client sends:

* user, for `step ssh config` (it sends `StepPath`, `StepBasePath`, `GOOS`, `Context`,
  `User`, `Console`, `StepSSHTemplateVersion`, and `--set` pairs such as `Provisioner`):
  `config.tpl`, a `Host *` snippet for `~/.ssh/config` that includes step's
  `ssh/includes`; `step_includes.tpl`, the line of that file that includes step's
  `ssh/config`; `step_config.tpl`, that file: a `Match exec "step ssh check-host %h"`
  block naming step's `known_hosts` and `ProxyCommand step ssh proxycommand %r %h %p`;
  and `known_hosts.tpl`, one `@cert-authority` line per host CA key. Only the hosts the
  CA says it knows (`/ssh/check-host`) get the CA's settings; every other host keeps the
  user's own.
* user, for `ledgerca ssh config` (`Client=ledgerca` and its `LedgercaHome`): the same
  files under that home, matched by `ledgerca ssh check-host` and without a ProxyCommand.
* host, for `step ssh config --host --set Certificate=.. --set Key=..`: `sshd_config.tpl`,
  a snippet that starts with `Match all` (so it may follow any `Match` block) naming the
  user CA keys, the host certificate and key, and the KRL; `ca.tpl`, the user CA keys.

Every value that lands in a file is checked against a pattern of what it may be (no
quotes, newlines, `%` tokens or `$` variables), else a 400 names it. Pure: the keys and
the request's data are arguments.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ca.errors import BadRequest
from ca.keys.files import PublicKey
from ca.ssh.keys import openssh_line

__all__ = [
    "KRL_PATH",
    "USER_CA_PATH",
    "Template",
    "host_templates",
    "known_hosts_lines",
    "user_templates",
]

USER_CA_PATH = "/etc/ssh/ledgerca_user_ca.pub"
KRL_PATH = "/etc/ssh/ledgerca_revoked.krl"

# Host patterns as ssh_config and known_hosts read them: no spaces, commas only as separators.
_PATTERN = re.compile(r"[A-Za-z0-9.*?!\[\]:_-]+(,[A-Za-z0-9.*?!\[\]:_-]+)*")
# An absolute directory (POSIX, or a Windows drive): always written between double quotes,
# so spaces are fine; never a quote, `%` (ssh's tokens) or `$` (its environment variables).
_STEP_PATH = re.compile(r"(/|[A-Za-z]:[\\/])[A-Za-z0-9_.~@+ /\\-]*")
# Written unquoted into a shell command (Match exec), so: no spaces either.
_HOME = re.compile(r"/[A-Za-z0-9_.~@+/-]*")
# Names written unquoted into ssh_config or a shell command line; never an option (`-x`).
_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.@+-]*")
_GOOS = re.compile(r"[a-z0-9]+")
_VERSION = re.compile(r"v[0-9]+")
_FLAG = re.compile(r"true|false")
# sshd_config values: a file name in /etc/ssh, or an absolute path; no spaces.
_HOST_FILE = re.compile(r"/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_ABSOLUTE_FILE = re.compile(r"/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_CLIENT = re.compile(r"step|ledgerca")
_LONGEST = 1024


@dataclass(frozen=True)
class Template:
    """One rendered template, as step-ca's `templates.Output`; `type` says how step writes
    it: `snippet` (a marked block, replaced in place), `prepend-line`, or `file`."""

    name: str
    type: str
    path: str
    content: str
    comment: str = "#"

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "type": self.type,
            "comment": self.comment,
            "path": self.path,
            "content": base64.b64encode(self.content.encode()).decode(),
        }


class _Data:
    """The request's `data` (step-ca's `map[string]string`), each value read against the
    pattern of what it may be. Keys no template uses are ignored, as step-ca does."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        for key, value in data.items():
            if not isinstance(value, str):
                raise BadRequest(f"data.{str(key)[:40]} must be a string")
        self._data = data

    def get(self, name: str, pattern: re.Pattern[str], default: str = "") -> str:
        """The value, or `default` when it is absent or empty (step sends "" for unset)."""
        value: str = self._data.get(name) or default
        if not value:
            return ""
        if len(value) > _LONGEST or not pattern.fullmatch(value):
            raise BadRequest(f"data.{name} {value[:60]!r} is not acceptable here")
        return value

    def required(self, name: str, pattern: re.Pattern[str]) -> str:
        if not self._data.get(name):
            raise BadRequest(
                f"required variable '{name}' is missing, please use `--set <key=value>` flag"
            )
        return self.get(name, pattern)


def known_hosts_lines(host_keys: Sequence[PublicKey], pattern: str = "*") -> str:
    """`@cert-authority PATTERN KEY` lines: ssh then trusts any host certificate they sign."""
    return "".join(f"@cert-authority {pattern} {openssh_line(key)}\n" for key in host_keys)


def user_templates(host_keys: Sequence[PublicKey], data: Mapping[str, Any]) -> list[Template]:
    values = _Data(data)
    client = values.get("Client", _CLIENT, "step")
    pattern = values.get("hostPattern", _PATTERN, "*")
    known_hosts = known_hosts_lines(host_keys, pattern)
    if client == "ledgerca":
        return _ledgerca_user_templates(values, known_hosts)
    return _step_user_templates(values, known_hosts)


def _step_user_templates(values: _Data, known_hosts: str) -> list[Template]:
    step_path = values.required("StepPath", _STEP_PATH)
    base_path = values.get("StepBasePath", _STEP_PATH) or step_path
    windows = values.get("GOOS", _GOOS) == "windows"
    version = values.get("StepSSHTemplateVersion", _VERSION)
    context = values.get("Context", _NAME)
    user = values.get("User", _NAME)
    console = values.get("Console", _FLAG) == "true"
    provisioner = values.get("Provisioner", _NAME)

    def include(path: str) -> str:
        # On Windows, ssh reads `Include C:\...` as a relative path.
        return path.replace("\\", "/").removeprefix("C:") if windows else path

    flags = f" --context {context}" if context else ""
    proxy_flags = flags + (" --console" if console else "")
    proxy_flags += f" --provisioner {provisioner}" if provisioner else ""
    if windows:
        known_hosts_file = f'"{step_path}\\ssh\\known_hosts"'
        proxy = "C:\\Windows\\System32\\cmd.exe /c step ssh proxycommand"
    else:
        known_hosts_file = f'"{step_path}/ssh/known_hosts"'
        proxy = "step ssh proxycommand"
    step_config = (
        f'Match exec "step ssh check-host{flags} %h"\n'
        + (f"\tUser {user}\n" if user else "")
        + f"\tUserKnownHostsFile {known_hosts_file}\n"
        + f"\tProxyCommand {proxy}{proxy_flags} %r %h %p\n"
    )
    includes = Template(
        "step_includes.tpl",
        "prepend-line",
        "${STEPPATH}/ssh/includes",
        f'Include "{include(step_path)}/ssh/config"',
    )
    if not version:
        # step-ca's reading for a step older than v0.18, which sends no version.
        includes = Template(includes.name, "file", "ssh/includes", includes.content)
    return [
        Template(
            "config.tpl",
            "snippet",
            "~/.ssh/config",
            f'Host *\n\tInclude "{include(base_path)}/ssh/includes"',
        ),
        includes,
        Template("step_config.tpl", "file", "ssh/config", step_config),
        Template("known_hosts.tpl", "file", "ssh/known_hosts", known_hosts),
    ]


def _ledgerca_user_templates(values: _Data, known_hosts: str) -> list[Template]:
    """The same scoping for a ledgerca client home: `ledgerca ssh check-host` decides which
    hosts are the CA's. Without a bastion: ledgerca has no proxy command."""
    home = values.required("LedgercaHome", _HOME).rstrip("/")
    user = values.get("User", _NAME)
    config = (
        f'Match exec "ledgerca --home {home} ssh check-host %h"\n'
        + (f"\tUser {user}\n" if user else "")
        + f'\tUserKnownHostsFile "{home}/ssh/known_hosts"\n'
    )
    include = f'Host *\n\tInclude "{home}/ssh/config"\n'
    return [
        Template("config.tpl", "snippet", "~/.ssh/config", include),
        Template("step_config.tpl", "file", f"{home}/ssh/config", config),
        Template("known_hosts.tpl", "file", f"{home}/ssh/known_hosts", known_hosts),
    ]


def host_templates(user_keys: Sequence[PublicKey], data: Mapping[str, Any]) -> list[Template]:
    values = _Data(data)
    certificate = _in_etc_ssh(values.required("Certificate", _HOST_FILE))
    key = _in_etc_ssh(values.required("Key", _HOST_FILE))
    user_ca = values.get("userCAPath", _ABSOLUTE_FILE, USER_CA_PATH)
    krl = values.get("krlPath", _ABSOLUTE_FILE, KRL_PATH)
    sshd_config = (
        # `Match all` ends any Match block before it: HostKey and HostCertificate are not
        # allowed inside one, and `sshd -t` would refuse the file.
        "Match all\n"
        f"\tTrustedUserCAKeys {user_ca}\n"
        f"\tHostCertificate {certificate}\n"
        f"\tHostKey {key}\n"
        # sshd refuses every public key while this file is missing: fetch it first.
        f"\t# before reloading sshd, and then regularly: ledgerca ssh krl --out {krl}\n"
        f"\tRevokedKeys {krl}\n"
    )
    return [
        Template("sshd_config.tpl", "snippet", "/etc/ssh/sshd_config", sshd_config),
        Template("ca.tpl", "file", user_ca, "".join(openssh_line(k) + "\n" for k in user_keys)),
    ]


def _in_etc_ssh(name: str) -> str:
    """step-ca's template prefixes `/etc/ssh/` to the names step sends; a path stays."""
    return name if name.startswith("/") else f"/etc/ssh/{name}"
