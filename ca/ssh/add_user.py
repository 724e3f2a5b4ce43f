"""The add-user certificate (`step ssh certificate --add-user`), as step-ca signs it.

Beside a user certificate for one principal, step-ca signs a second one for the client's
`addUserPublicKey`: a user certificate for the principal `provisioner`, same validity, no
extensions, whose `force-command` creates the first certificate's user on the host and then
hands the connection to its sshd (`sudo useradd -m <principal>; nc -q0 localhost 22`). A host
that trusts the user CA and has a `provisioner` account with that sudo right thereby creates
accounts on first login.

ledgerca signs it only for provisioners whose claims say `enableSSHAddUser` (step-ca signs
it for any), and only for a principal that is a plain POSIX user name: the principal goes
into a shell command that runs with sudo on the host.

Pure: what to sign is a function of the request it goes with, checked before either is
signed.
"""

from __future__ import annotations

import re

from ca.errors import PolicyError
from ca.ssh.certificates import SSHRequest

__all__ = ["ADD_USER_COMMAND", "ADD_USER_PRINCIPAL", "add_user_request", "wants_add_user"]

ADD_USER_PRINCIPAL = "provisioner"
"""The account that runs the add-user command (step-ca's `SSHAddUserPrincipal`)."""
ADD_USER_COMMAND = "sudo useradd -m <principal>; nc -q0 localhost 22"
"""step-ca's `SSHAddUserCommand`; `<principal>` becomes the user to create."""
# useradd's default NAME_REGEX (shadow-utils), at most 32 characters.
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def wants_add_user(request: SSHRequest) -> str | None:
    """The principal to create, when the certificate `request` describes can carry an
    add-user certificate (a user certificate for one principal, or two where the second is
    an e-mail address, as step-ca's `IsValidForAddUser` reads it); None otherwise, and
    step-ca then signs none."""
    if request.cert_type != "user":
        return None
    principals = request.principals
    if len(principals) == 1 or (len(principals) == 2 and principals[1].find("@") > 0):
        return principals[0]
    return None


def add_user_request(request: SSHRequest, principal: str) -> SSHRequest:
    """The add-user certificate to sign beside the one `request` describes; PolicyError when
    the principal is not a user name a shell command may safely carry."""
    if not _USER_NAME.fullmatch(principal):
        raise PolicyError(
            f"add-user certificates are signed only for plain user names "
            f"(lower-case letters, digits, '_' and '-'), not {principal[:40]!r}"
        )
    return SSHRequest(
        cert_type="user",
        key_id=f"{principal}-{ADD_USER_PRINCIPAL}",
        principals=(ADD_USER_PRINCIPAL,),
        valid_after=request.valid_after,
        valid_before=request.valid_before,
        extensions=(),
        critical_options=(("force-command", ADD_USER_COMMAND.replace("<principal>", principal)),),
    )
