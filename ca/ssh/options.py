"""What an SSH sign request may ask for: the token's `step.ssh` claims and the name policies.

step's CLI puts the certificate options in the one-time token
(`{"step": {"ssh": {certType, keyID, principals, validAfter, validBefore}}}`) and repeats
them in the request body. The token's values bind: a request may narrow the principals to
a subset, and otherwise must agree with every option the token sets.

Principals are governed by the existing name policies (`policy set`), read for SSH:

* host certificates — each principal is a host name or IP address, checked against the
  policies' `dns` and `ip` entries (and `allowWildcardNames`);
* user certificates — each principal is checked against the `principal` entries (a
  principal with an `@` against the `email` entries). A policy with none of those entries
  leaves user principals alone, so an X.509 DNS policy does not lock users out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ca.errors import AuthError, BadRequest, PolicyError
from ca.pki.sans import split_sans
from ca.policy import NamePolicy, NameRules, combine
from ca.ssh.certificates import CertType

__all__ = ["SSHOptions", "check_principals", "merge_options", "token_options"]

MAX_PRINCIPALS = 256


@dataclass(frozen=True)
class SSHOptions:
    """Certificate options as step writes them (token `step.ssh` or the request body)."""

    cert_type: str = ""
    key_id: str = ""
    principals: tuple[str, ...] = ()
    valid_after: str = ""
    valid_before: str = ""


def _text(source: Mapping[str, Any], name: str, where: str) -> str:
    value = source.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{where} {name} must be a string")
    return value


def read_options(source: Mapping[str, Any], where: str) -> SSHOptions:
    principals = source.get("principals") or []
    if not isinstance(principals, list) or not all(isinstance(p, str) for p in principals):
        raise BadRequest(f"{where} principals must be a list of strings")
    return SSHOptions(
        cert_type=_text(source, "certType", where),
        key_id=_text(source, "keyID", where),
        principals=tuple(principals),
        valid_after=_text(source, "validAfter", where),
        valid_before=_text(source, "validBefore", where),
    )


def token_options(claims: Mapping[str, Any]) -> SSHOptions:
    """The `step.ssh` claim of a verified token; a token without one is not an SSH token."""
    step = claims.get("step")
    ssh = step.get("ssh") if isinstance(step, Mapping) else None
    if not isinstance(ssh, Mapping):
        raise AuthError("the token has no 'step.ssh' claim: it is not an SSH sign token")
    try:
        return read_options(ssh, "token step.ssh")
    except BadRequest as exc:
        raise AuthError(exc.message) from None


def _agree(name: str, requested: str, granted: str) -> str:
    if requested and granted and requested != granted:
        raise PolicyError(f"requested {name} {requested!r} does not match the token's {granted!r}")
    return requested or granted


def merge_options(request: SSHOptions, token: SSHOptions, *, subject: str) -> SSHOptions:
    """The options to certify: the request's, within what the token grants.

    As in step-ca, a token that leaves a field empty still grants something definite: a
    user certificate, the token's subject as its only principal and as its key id. A request
    may narrow that (a subset of the principals) but never widen it.
    """
    for asked in (request.cert_type, token.cert_type):
        if asked not in ("", "user", "host"):
            raise BadRequest(f"unknown certificate type {asked[:40]!r}: use 'user' or 'host'")
    granted = token.principals or ((subject,) if subject else ())
    _check_principal_syntax(granted)
    principals = request.principals or granted
    _check_principal_syntax(principals)
    extra = sorted(set(principals) - set(granted))
    if extra:
        raise PolicyError(f"principals {', '.join(extra)} are not granted by the token")
    key_id = _agree("keyID", request.key_id, token.key_id or subject)
    check_key_id(key_id)
    return SSHOptions(
        cert_type=_agree("certType", request.cert_type, token.cert_type or "user"),
        key_id=key_id,
        principals=tuple(dict.fromkeys(principals)),
        valid_after=_agree("validAfter", request.valid_after, token.valid_after),
        valid_before=_agree("validBefore", request.valid_before, token.valid_before),
    )


def check_key_id(key_id: str) -> None:
    """A key id is logged by sshd and shown to operators: printable text only."""
    if len(key_id) > 255 or not key_id.isprintable():
        raise BadRequest(f"invalid key id {key_id[:40]!r}: it must be printable text")


def _check_principal_syntax(principals: Sequence[str]) -> None:
    if not principals:
        # An empty list makes OpenSSH accept the certificate for *any* user or host.
        raise BadRequest("ssh certificate principals cannot be empty")
    if len(principals) > MAX_PRINCIPALS:
        raise BadRequest(f"at most {MAX_PRINCIPALS} principals are allowed")
    for principal in principals:
        # OpenSSH reads `principals="a,b"` in authorized_keys as a list, so a comma inside
        # one principal would grant two.
        if (
            not principal
            or len(principal) > 255
            or not principal.isprintable()
            or " " in principal
            or "," in principal
        ):
            raise BadRequest(f"invalid principal {principal[:40]!r}")


def _only(policy: NamePolicy | None, kinds: tuple[str, ...]) -> NamePolicy | None:
    if policy is None:
        return None

    def rules(side: NameRules) -> NameRules:
        return NameRules(**{kind: side.entries(cast(Any, kind)) for kind in kinds})

    reduced = NamePolicy(
        allow=rules(policy.allow),
        deny=rules(policy.deny),
        allow_wildcard_names=policy.allow_wildcard_names,
    )
    return None if reduced.is_empty else reduced


def check_principals(
    cert_type: CertType,
    principals: Sequence[str],
    *,
    authority_policy: NamePolicy | None,
    provisioner_policy: NamePolicy | None,
    provisioner_name: str,
) -> None:
    """Raise PolicyError naming the first principal a policy refuses."""
    kinds = ("dns", "ip") if cert_type == "host" else ("principal", "email")
    chain = combine(
        _only(authority_policy, kinds),
        _only(provisioner_policy, kinds),
        provisioner_scope=f"provisioner {provisioner_name!r} policy",
    )
    if not chain.levels:
        return
    if cert_type == "host":
        names = split_sans(principals)
        chain.evaluate(
            dns=[n.value for n in names if n.type not in ("ip",)],
            ips=[n.value for n in names if n.type == "ip"],
        )
    else:
        chain.evaluate(
            principals=[p for p in principals if "@" not in p],
            emails=[p for p in principals if "@" in p],
        )
