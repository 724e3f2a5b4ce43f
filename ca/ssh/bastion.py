"""`/ssh/bastion`: which jump host step's `ssh proxycommand` goes through for a host.

step-ca configures one bastion for every host (`ssh.bastion`); ledgerca one per group of
host patterns (`[[ssh_bastions]]` in `ca.toml`), the first that matches winning. As in
step-ca, the bastion itself is reached directly: it never gets a bastion of its own.

Pure: the configured bastions and the request's host name are arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from ca.config import SSHBastion

__all__ = ["bastion_for", "bastion_json"]


def bastion_for(bastions: Sequence[SSHBastion], hostname: str) -> SSHBastion | None:
    """The first bastion with a pattern matching `hostname` (without case), unless the
    host is that bastion."""
    host = hostname.lower()
    for bastion in bastions:
        # The patterns hold no `[`: `fnmatchcase` reads only `*` and `?` in them.
        if any(fnmatchcase(host, pattern.lower()) for pattern in bastion.hosts):
            if host == bastion.hostname.lower():
                return None
            return bastion
    return None


def bastion_json(bastion: SSHBastion) -> dict[str, str]:
    """step-ca's `config.Bastion`: `hostname`, then `user`, `port`, `cmd`, `flags` when set
    (the port as a string, as step-ca's JSON has it)."""
    body = {"hostname": bastion.hostname}
    if bastion.user:
        body["user"] = bastion.user
    if bastion.port:
        body["port"] = str(bastion.port)
    if bastion.cmd:
        body["cmd"] = bastion.cmd
    if bastion.flags:
        body["flags"] = bastion.flags
    return body
