"""`/ssh/config`: the files a client or a host needs to trust this SSH CA.

Answers in step-ca's shape, `{"userTemplates": [...], "hostTemplates": [...]}`, each entry
`{"name","type","comment","path","content"}` with `content` base64 (Go's `[]byte`):

* user: a `known_hosts` file with one `@cert-authority` line per host CA key, and an
  `ssh_config` snippet that points `UserKnownHostsFile` at it;
* host: the user CA keys for `TrustedUserCAKeys`, and an `sshd_config` snippet naming
  them, the host certificate and the KRL.

Pure: the keys and the request's data are arguments.
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

__all__ = ["Template", "host_templates", "known_hosts_lines", "user_templates"]

KNOWN_HOSTS_PATH = "~/.ssh/ledgerca_known_hosts"
USER_CA_PATH = "/etc/ssh/ledgerca_user_ca.pub"
KRL_PATH = "/etc/ssh/ledgerca_revoked.krl"
# Host patterns as ssh_config and known_hosts read them: no spaces, commas only as separators.
_PATTERN = re.compile(r"[A-Za-z0-9.*?!\[\]:_-]+(,[A-Za-z0-9.*?!\[\]:_-]+)*")
_PATH = re.compile(r"[A-Za-z0-9_./~-]+")


@dataclass(frozen=True)
class Template:
    name: str
    type: str
    comment: str
    path: str
    content: str

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "type": self.type,
            "comment": self.comment,
            "path": self.path,
            "content": base64.b64encode(self.content.encode()).decode(),
        }


def _option(data: Mapping[str, Any], name: str, default: str, pattern: re.Pattern[str]) -> str:
    value = data.get(name, default)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(f"data.{name} {str(value)[:60]!r} is not acceptable here")
    return value


def known_hosts_lines(host_keys: Sequence[PublicKey], pattern: str = "*") -> str:
    """`@cert-authority PATTERN KEY` lines: ssh then trusts any host certificate they sign."""
    return "".join(f"@cert-authority {pattern} {openssh_line(key)}\n" for key in host_keys)


def user_templates(host_keys: Sequence[PublicKey], data: Mapping[str, Any]) -> list[Template]:
    pattern = _option(data, "hostPattern", "*", _PATTERN)
    known_hosts = _option(data, "knownHostsPath", KNOWN_HOSTS_PATH, _PATH)
    return [
        Template(
            "known_hosts",
            "file",
            "host CAs trusted for host certificates",
            known_hosts,
            known_hosts_lines(host_keys, pattern),
        ),
        Template(
            "config",
            "snippet",
            "add to ~/.ssh/config",
            "~/.ssh/config",
            f"Host {pattern.replace(',', ' ')}\n"
            f"    UserKnownHostsFile {known_hosts}\n"
            "    StrictHostKeyChecking yes\n",
        ),
    ]


def host_templates(user_keys: Sequence[PublicKey], data: Mapping[str, Any]) -> list[Template]:
    certificate = _option(data, "Certificate", "/etc/ssh/ssh_host_ecdsa_key-cert.pub", _PATH)
    key = _option(data, "Key", "/etc/ssh/ssh_host_ecdsa_key", _PATH)
    user_ca = _option(data, "userCAPath", USER_CA_PATH, _PATH)
    krl = _option(data, "krlPath", KRL_PATH, _PATH)
    return [
        Template(
            "ca.pub",
            "file",
            "user CAs trusted for user certificates",
            user_ca,
            "".join(openssh_line(k) + "\n" for k in user_keys),
        ),
        Template(
            "sshd_config",
            "snippet",
            "add to sshd_config; refresh the KRL from GET /ssh/krl",
            "/etc/ssh/sshd_config",
            f"TrustedUserCAKeys {user_ca}\n"
            f"HostKey {key}\n"
            f"HostCertificate {certificate}\n"
            f"RevokedKeys {krl}\n",
        ),
    ]
