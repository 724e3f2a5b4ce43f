"""SSH issuance: the X.509 pipeline, for OpenSSH certificates.

authenticate (JWK one-time token with `step.ssh` claims) → authorize (token options,
claims, principal policies) → build and sign with the active user or host CA key → record
(`ssh.issued` through the authority's group committer, the token spent in the same
transaction) → respond. A certificate leaves only after its event committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.serialization import SSHCertificate

from ca.authority.authority import Authority
from ca.authority.recorder import Actor, RequestInfo
from ca.authority.state import ActiveKey, Snapshot
from ca.errors import AuthError, BadRequest, CAError, ConfigError, PolicyError
from ca.keys.files import PrivateKey
from ca.keys.ids import key_id
from ca.ssh.add_user import add_user_request, wants_add_user
from ca.ssh.certificates import (
    DEFAULT_USER_EXTENSIONS,
    CertType,
    SSHRequest,
    cert_type_of,
    certificate_line,
    parse_public_key,
    texts,
    times_of,
)
from ca.ssh.issuer import issue, prepare
from ca.ssh.keys import fingerprint
from ca.ssh.options import SSHOptions, check_principals
from ca.ssh.validity import ssh_validity
from ledger import format_time
from projections import events
from projections.events import ProvisionerRef
from projections.ssh_certificates import SSHCertificateRevoked, UnknownSSHCertificate

__all__ = [
    "SSHIssued",
    "SSHNotEnabled",
    "SSHSignRequest",
    "ca_key_for",
    "record_issued",
    "sign",
]


class SSHNotEnabled(CAError):
    """No SSH CA key of the needed kind is active (`ledgerca ssh init` creates them)."""

    status = 501


@dataclass(frozen=True)
class SSHSignRequest:
    """`POST /ssh/sign`'s body, its types already checked."""

    public_key: str
    ott: str
    options: SSHOptions
    add_user_public_key: str = ""
    """step's `addUserPublicKey` (`--add-user`): also sign the add-user certificate."""


@dataclass(frozen=True)
class SSHIssued:
    certificate: SSHCertificate
    serial: str
    provisioner: str | None
    position: int
    add_user_certificate: SSHCertificate | None = None


def ca_key_for(snapshot: Snapshot, cert_type: CertType) -> ActiveKey:
    keys = snapshot.ssh_user_keys if cert_type == "user" else snapshot.ssh_host_keys
    if not keys:
        raise SSHNotEnabled(
            f"this CA has no SSH {cert_type} key: run `ledgerca ssh init` to create the SSH CA"
        )
    return keys[-1]


def ca_signer(authority: Authority, key: ActiveKey) -> PrivateKey:
    private = authority.signing_key(key)
    if key_id(private.public_key()) != key.key_id:
        raise ConfigError(f"the key at {key.key_ref} is not the active {key.role} key")
    return private


def sign(authority: Authority, request: SSHSignRequest, info: RequestInfo) -> SSHIssued:
    """`POST /ssh/sign`: authorize, check principals, issue, record."""
    now = authority.clock()
    snapshot = authority.snapshot()
    public_key = parse_public_key(request.public_key)
    add_user_key = None
    if request.add_user_public_key:
        try:
            add_user_key = parse_public_key(request.add_user_public_key)
        except BadRequest as exc:
            raise BadRequest(exc.message.replace("publicKey", "addUserPublicKey")) from None
    if not request.ott:
        raise BadRequest("missing ott")
    if not snapshot.ssh_user_keys and not snapshot.ssh_host_keys:
        # Said before any provisioner is asked, whose refusal would hide the real cause.
        raise SSHNotEnabled("this CA has no SSH keys: run `ledgerca ssh init` to create them")
    grant = authority.provisioner_for_token(snapshot, request.ott).authorize_ssh_sign(
        request.ott, request.options, authority.context(snapshot, now)
    )
    options, provisioner = grant.options, grant.provisioner
    cert_type: CertType = "host" if options.cert_type == "host" else "user"
    valid_after, valid_before = ssh_validity(
        grant.claims,
        cert_type,
        now=now,
        valid_after=options.valid_after,
        valid_before=options.valid_before,
    )
    check_principals(
        cert_type,
        options.principals,
        authority_policy=snapshot.policies.get("authority"),
        provisioner_policy=snapshot.policies.get(f"provisioner/{provisioner.id}"),
        provisioner_name=provisioner.name,
    )
    issuer = ca_key_for(snapshot, cert_type)
    wanted = SSHRequest(
        cert_type=cert_type,
        key_id=options.key_id,
        principals=options.principals,
        valid_after=valid_after,
        valid_before=valid_before,
        extensions=DEFAULT_USER_EXTENSIONS if cert_type == "user" else (),
    )
    add_user_wanted = None
    principal = wants_add_user(wanted) if add_user_key is not None else None
    if principal is not None:
        if not grant.claims.enable_ssh_add_user:
            raise PolicyError(
                f"provisioner {provisioner.name!r} does not sign add-user certificates "
                "(its claims do not set enableSSHAddUser)"
            )
        add_user_wanted = add_user_request(wanted, principal)
    signer = ca_signer(authority, issuer)
    certificate = issue(prepare(wanted, public_key, signer))
    add_user = None
    if add_user_wanted is not None and add_user_key is not None:
        add_user = issue(prepare(add_user_wanted, add_user_key, signer))
    position = record_issued(
        authority,
        certificate,
        issuer,
        provisioner=provisioner,
        token_id=grant.token_id,
        info=info,
        also=(add_user,) if add_user is not None else (),
    )
    return SSHIssued(certificate, str(certificate.serial), provisioner.name, position, add_user)


def record_issued(
    authority: Authority,
    certificate: SSHCertificate,
    issuer: ActiveKey,
    *,
    provisioner: ProvisionerRef | None,
    token_id: str | None,
    info: RequestInfo,
    renewed_from: str | None = None,
    rekeyed_from: str | None = None,
    actor_extra: Mapping[str, Any] | None = None,
    also: Sequence[SSHCertificate] = (),
) -> int:
    """Append `ssh.issued` (and one for each of `also`, signed by the same key in the same
    request, in the same append); only once this returns may the certificates leave."""
    issued = [
        _issued_event(certificate, issuer, provisioner, token_id, renewed_from, rekeyed_from),
        *(_issued_event(extra, issuer, provisioner, None, None, None) for extra in also),
    ]
    actor = Actor.of(authority.instance, info, provisioner, token_id, actor_extra)
    recorded, *_ = authority.recorder.record(
        [event.to_new_event() for event in issued],
        actor,
        expected={event.stream: 0 for event in issued},
        refused={
            SSHCertificateRevoked: lambda: AuthError("ssh certificate has been revoked"),
            UnknownSSHCertificate: lambda: AuthError("ssh certificate was not issued by this CA"),
        },
    )
    return recorded.position


def _issued_event(
    certificate: SSHCertificate,
    issuer: ActiveKey,
    provisioner: ProvisionerRef | None,
    token_id: str | None,
    renewed_from: str | None,
    rekeyed_from: str | None,
) -> events.SSHIssued:
    valid_after, valid_before = times_of(certificate)
    return events.SSHIssued(
        serial=str(certificate.serial),
        cert_type=cert_type_of(certificate),
        key_id=certificate.key_id.decode("utf-8", "replace"),
        principals=texts(certificate.valid_principals),
        valid_after=format_time(valid_after),
        valid_before=format_time(valid_before),
        extensions=tuple(sorted(texts(certificate.extensions))),
        certificate=certificate_line(certificate),
        public_key_fingerprint=fingerprint(certificate.public_key()),
        provisioner=provisioner,
        issuer_key_id=issuer.key_id,
        token_id=token_id,
        renewed_from=renewed_from,
        rekeyed_from=rekeyed_from,
    )
