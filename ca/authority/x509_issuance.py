"""X.509 issuance, the use case: authenticate and authorize (the token's provisioner) →
build (template, profile) → check and sign (`ca.pki.issuer`) → record (`x509.issued`,
spending the token in the same transaction) → respond. A certificate is handed back only
after its event committed: if the append fails, the signed certificate is dropped here and
the caller gets the error. The CA's own TLS certificate is issued the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ca.authority.recorder import Actor, RequestInfo
from ca.authority.state import STATE, ActiveKey, Snapshot
from ca.crl.urls import leaf_urls
from ca.errors import BadRequest, CAError, Unavailable
from ca.keys.files import KeyType, PublicKey
from ca.pki.claims import validity
from ca.pki.csr import parse_csr
from ca.pki.issuer import TemplateProfile, issue, prepare
from ca.pki.provisioner_extension import ProvisionerExtension
from ca.pki.sans import split_sans
from ca.policy import combine
from ca.templates.x509 import SAN as TemplateSAN
from ca.templates.x509 import (
    CertificateTemplate,
    Subject,
    default_leaf,
    render,
    template_data,
)
from ledger import ChangedSince, NewEvent, Unchanged, format_time
from projections.events import SAN, ProvisionerRef, X509Issued

if TYPE_CHECKING:
    from ca.authority.authority import Authority

__all__ = [
    "Issued",
    "PreparedIssue",
    "SignRequest",
    "chain_pems",
    "issue_server_certificate",
    "key_type_of",
    "prepare_sign",
    "record_issued",
    "sign_async",
]


@dataclass(frozen=True)
class SignRequest:
    csr: str
    ott: str
    not_before: str = ""
    not_after: str = ""
    template_data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    chain_pems: list[str]
    serial: str
    provisioner: str | None
    position: int


@dataclass(frozen=True)
class PendingAppend:
    """An `x509.issued` event ready to append, with its actor and expected version."""

    events: list[NewEvent]
    actor: Actor
    expected: dict[str, int]


@dataclass(frozen=True)
class PreparedIssue:
    """A signed certificate that must not leave the CA until `append` has committed."""

    certificate: x509.Certificate
    chain_pems: list[str]
    provisioner: str | None
    append: PendingAppend

    def issued(self, position: int) -> Issued:
        return Issued(
            self.certificate,
            self.chain_pems,
            str(self.certificate.serial_number),
            self.provisioner,
            position,
        )


def key_type_of(public_key: object) -> KeyType:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "OKP"
    return "EC"


def check_names(snapshot: Snapshot, record: ProvisionerRef, template: CertificateTemplate) -> None:
    """The authority's and the provisioner's name policies, on the names being certified."""
    authority_policy = snapshot.policies.get("authority")
    provisioner_policy = snapshot.policies.get(f"provisioner/{record.id}")
    if authority_policy is None and provisioner_policy is None:
        return
    chain = combine(
        authority_policy,
        provisioner_policy,
        provisioner_scope=f"provisioner {record.name!r} policy",
    )
    by_type: dict[str, list[str]] = {"dns": [], "ip": [], "email": [], "uri": []}
    for san in template.sans:
        by_type[san.type].append(san.value)
    common_names = [template.subject.common_name] if template.subject.common_name else []
    chain.evaluate(
        dns=by_type["dns"],
        ips=by_type["ip"],
        emails=by_type["email"],
        uris=by_type["uri"],
        common_names=common_names,
    )


async def sign_async(authority: Authority, request: SignRequest, info: RequestInfo) -> Issued:
    """`POST /sign`: authenticate, authorize, build, check and sign; return once the event
    committed. The CPU work runs in the preparers' pool, the commit
    is awaited (no thread is held while the group committer writes), and the loop
    stays free for every other request meanwhile.

    It decides from the cached snapshot without asking the database first, and makes
    that safe at both ends: the append carries the snapshot's state position as a
    precondition (`Unchanged`), so a provisioner, key or policy change committed by any
    instance in the meantime refuses it; and a refusal is re-checked against the
    current state before the client sees it. Either way the request is decided again
    on the new state, so every instance honours a change on its next request.
    """
    snapshot, position = authority.state.cached()
    for _ in range(3):
        try:
            prepared = await authority.off_loop(prepare_sign, authority, request, info, snapshot)
        except CAError:
            fresh = await authority.off_loop(authority.fresh_state)
            if fresh[1] == position:
                raise
            snapshot, position = fresh
            continue
        try:
            (recorded,) = await authority.recorder.record_async(
                prepared.append.events,
                prepared.append.actor,
                expected=prepared.append.expected,
                unchanged=Unchanged(STATE, position),
            )
        except ChangedSince:
            snapshot, position = await authority.off_loop(authority.fresh_state)
            continue
        return prepared.issued(recorded.position)
    raise Unavailable("the authority's configuration kept changing during the request")


def prepare_sign(
    authority: Authority, request: SignRequest, info: RequestInfo, snapshot: Snapshot | None = None
) -> PreparedIssue:
    """Everything of issuance but the commit: a signed certificate and its event."""
    now = authority.clock()
    snapshot = snapshot or authority.snapshot()
    csr = parse_csr(request.csr)
    if not request.ott:
        raise BadRequest("missing ott")
    provisioner = authority.provisioner_for_token(snapshot, request.ott)
    grant = provisioner.authorize_sign(request.ott, csr, authority.context(snapshot, now))
    not_before, not_after = validity(
        grant.claims, now=now, not_before=request.not_before, not_after=request.not_after
    )
    names = [san.value for san in grant.sans]
    key_type = key_type_of(csr.public_key())
    if grant.template is not None:
        template = render(
            grant.template,
            template_data(
                subject_cn=grant.subject,
                sans=names,
                token_claims=grant.token_claims,
                csr=csr,
                user_data=request.template_data,  # only custom templates see user data
                key_type=key_type,
            ),
        )
    else:
        template = default_leaf(grant.subject, names, key_type)
    template = with_revocation_urls(authority, template)
    check_names(snapshot, grant.provisioner, template)
    certificate = sign_leaf(
        authority,
        snapshot,
        template,
        cast(PublicKey, csr.public_key()),
        not_before,
        not_after,
        list(grant.extensions),
    )
    issuer = snapshot.intermediate
    append = issued_event(
        authority,
        certificate,
        issuer,
        sans=tuple(SAN(s.type, s.value) for s in template.sans),
        provisioner=grant.provisioner,
        token_id=grant.token_id,
        info=info,
    )
    name = grant.provisioner.name
    return PreparedIssue(certificate, chain_pems(certificate, issuer), name, append)


def with_revocation_urls(
    authority: Authority, template: CertificateTemplate
) -> CertificateTemplate:
    """The configured CRL and OCSP URLs (`ca.crl.urls.leaf_urls`), unless the template chose
    its own. None by default: the CA's complete CRL covers leaves without a CDP."""
    crl_urls, ocsp_urls = leaf_urls(authority.runtime.config)
    return dataclasses.replace(
        template,
        crl_distribution_points=template.crl_distribution_points or crl_urls,
        ocsp_server=template.ocsp_server or ocsp_urls,
    )


def issue_server_certificate(
    authority: Authority, public_key: PublicKey, dns_names: tuple[str, ...], lifetime: timedelta
) -> list[x509.Certificate]:
    """The CA's own TLS certificate, recorded like any other issuance."""
    now = authority.clock()
    snapshot = authority.snapshot()
    sans = split_sans(dns_names)
    template = CertificateTemplate(
        subject=Subject(common_name=dns_names[0]),
        sans=tuple(TemplateSAN(s.type, s.value) for s in sans),  # type: ignore[arg-type]
        key_usage=("digitalSignature",),
        ext_key_usage=("serverAuth", "clientAuth"),
    )
    issuer = snapshot.intermediate
    certificate = sign_leaf(
        authority, snapshot, template, public_key, now - timedelta(minutes=1), now + lifetime, []
    )
    record_issued(
        authority,
        certificate,
        issuer,
        sans=tuple(SAN(s.type, s.value) for s in sans),
        provisioner=None,
        token_id=None,
        info=RequestInfo(request_id="server-tls"),
    )
    assert issuer.certificate is not None
    return [certificate, issuer.certificate]


def sign_leaf(
    authority: Authority,
    snapshot: Snapshot,
    template: Any,
    public_key: PublicKey,
    not_before: datetime,
    not_after: datetime,
    extensions: list[ProvisionerExtension],
) -> x509.Certificate:
    profile = TemplateProfile(template, [e.to_extension() for e in extensions])
    validity = (not_before, not_after)
    rules = authority.leaf_rules(snapshot)
    return issue(prepare(profile, public_key, validity, authority.issuer(snapshot), rules))


def record_issued(
    authority: Authority, certificate: x509.Certificate, issuer: ActiveKey, **fields: Any
) -> int:
    """Append the `x509.issued` event (`fields` as for `issued_event`); its position."""
    return _commit(authority, issued_event(authority, certificate, issuer, **fields))


def _commit(authority: Authority, append: PendingAppend) -> int:
    (recorded,) = authority.recorder.record(append.events, append.actor, expected=append.expected)
    return recorded.position


def issued_event(
    authority: Authority,
    certificate: x509.Certificate,
    issuer: ActiveKey,
    *,
    sans: tuple[SAN, ...],
    provisioner: ProvisionerRef | None,
    token_id: str | None,
    info: RequestInfo,
    renewed_from: str | None = None,
    rekeyed_from: str | None = None,
    actor_extra: Mapping[str, Any] | None = None,
) -> PendingAppend:
    event = X509Issued(
        serial=str(certificate.serial_number),
        certificate=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        subject=certificate.subject.rfc4514_string(),
        sans=sans,
        not_before=format_time(certificate.not_valid_before_utc),
        not_after=format_time(certificate.not_valid_after_utc),
        provisioner=provisioner,
        issuer_key_id=issuer.key_id,
        token_id=token_id,
        renewed_from=renewed_from,
        rekeyed_from=rekeyed_from,
    )
    actor = Actor.of(authority.instance, info, provisioner, token_id, actor_extra)
    return PendingAppend([event.to_new_event()], actor, {event.stream: 0})


def chain_pems(certificate: x509.Certificate, issuer: ActiveKey) -> list[str]:
    chain = [certificate.public_bytes(serialization.Encoding.PEM).decode()]
    if issuer.certificate_pem:
        chain.append(issuer.certificate_pem)
    return chain
