"""The authority: one issuance pipeline, and the keys and state it runs on.

authenticate (token) → authorize (CSR against token, claims) → build (template, profile)
→ check → sign → record (append `x509.issued`, spending the token in the same transaction)
→ respond. A certificate is handed back only after its event committed: if the append
fails, the signed certificate is dropped here and the caller gets the error.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from ca.authority.recorder import Actor, Recorder, RequestInfo
from ca.authority.state import STATE, ActiveKey, ProvisionerRecord, Snapshot, StateCache
from ca.crl.urls import leaf_urls
from ca.durations import parse_go_duration
from ca.errors import AuthError, BadRequest, CAError, ConfigError, SignerError, Unavailable
from ca.keys.files import KeyType, PrivateKey, PublicKey
from ca.keys.ids import key_id
from ca.keys.refs import load_signer
from ca.pki.claims import validity
from ca.pki.csr import parse_csr
from ca.pki.issuer import Issuer, TemplateProfile, issue, prepare
from ca.pki.leaf_rules import LeafRules
from ca.pki.provisioner_extension import ProvisionerExtension
from ca.pki.sans import split_sans
from ca.policy import combine
from ca.provisioners.base import Context, Provisioner, ProvisionerRef, Unprovisioned
from ca.provisioners.jwk import JWKProvisioner, VerifiedToken
from ca.provisioners.sshpop import SSHPOP
from ca.runtime import Runtime
from ca.templates.x509 import SAN as TemplateSAN
from ca.templates.x509 import (
    CertificateTemplate,
    Subject,
    default_leaf,
    render,
    template_data,
)
from ca.tokens import audiences, peek
from ledger import ChangedSince, GroupCommitter, NewEvent, Unchanged, format_time
from ledger import catalogue as ev

log = structlog.get_logger("ledgerca.authority")
T = TypeVar("T")

SSHPOP_PROVISIONER = SSHPOP()
UNPROVISIONED = Unprovisioned()

GO_CIPHER_NAMES = {
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


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


def certificates_of(keys: Sequence[ActiveKey]) -> tuple[x509.Certificate, ...]:
    return tuple(k.certificate for k in keys if k.certificate is not None)


class Authority:
    """Signs certificates for one CA; safe to share between threads of one process."""

    def __init__(
        self,
        runtime: Runtime,
        password: bytes,
        *,
        clock: Callable[[], datetime] = utcnow,
        started_at: datetime | None = None,
    ) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.password = password
        self.clock = clock
        # Tokens issued before the CA started are refused (step-ca's rule); all workers of
        # one `serve` share the supervisor's start, or a worker that came up a moment later
        # would refuse tokens its siblings accept.
        self.started_at = started_at or clock()
        self.instance = f"{socket.gethostname()}:{os.getpid()}"
        self.state = StateCache(runtime.engine)
        # Concurrent requests' events share commits (see ledger.group_commit).
        self.appender = GroupCommitter(runtime.store)
        self.recorder = Recorder(self.appender)
        self.sign_audiences = audiences(runtime.config.dns_names, "sign")
        self.server_cert_lifetime = parse_go_duration(runtime.config.tls_cert_lifetime)
        if self.server_cert_lifetime < timedelta(seconds=10):
            raise ConfigError("tls_cert_lifetime must be at least 10s")
        self._keys: dict[str, PrivateKey] = {}
        self._keys_lock = threading.Lock()
        # Issuance's CPU work (token, policy, template, signature) runs here, never on the
        # event loop, and in a pool of its own: a burst of heavy requests queues for these
        # threads without taking the ones that reads (CRL, OCSP, roots) run on.
        self._preparers = ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="ledgerca-prepare"
        )
        # Load the signing key now: a wrong password stops `serve` before it binds.
        self.signing_key(self.snapshot().intermediate)

    def close(self) -> None:
        self._preparers.shutdown(wait=True, cancel_futures=True)
        self.appender.close()
        self.runtime.close()

    # -- state and keys ----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """What the ledger says now (one indexed query; reloaded only after a change)."""
        return self._fresh_state()[0]

    def signing_key(self, key: ActiveKey) -> PrivateKey:
        cached = self._keys.get(key.key_id)
        if cached is not None:
            return cached
        with self._keys_lock:
            if key.key_id not in self._keys:
                self._keys[key.key_id] = self._load_key(key)
            return self._keys[key.key_id]

    def _load_key(self, key: ActiveKey) -> PrivateKey:
        what = f"{key.role.replace('x509_', '')} key"
        private = load_signer(
            self.runtime.home,
            key.key_ref,
            self.password,
            what=what,
            pkcs11=self.runtime.config.pkcs11,
        )
        if key.certificate is not None and key_id(private.public_key()) != key.key_id:
            raise ConfigError(f"the key at {key.key_ref} is not the key of the active {key.role}")
        return private

    def intermediate_fingerprint(self) -> str:
        certificate = self.snapshot().intermediate.certificate
        return certificate.fingerprint(hashes.SHA256()).hex() if certificate else ""

    def tls_options(self) -> dict[str, Any]:
        tls = self.runtime.config.tls
        return {
            "cipherSuites": [GO_CIPHER_NAMES.get(name, name) for name in tls.cipher_suites],
            "minVersion": float(tls.min_version),
            "maxVersion": float(tls.max_version),
            "renegotiation": False,
        }

    # -- issuance ----------------------------------------------------------------------

    def context(self, snapshot: Snapshot, now: datetime) -> Context:
        """What provisioners may know when they authorize a request."""
        return Context(
            now=now,
            ca_started=self.started_at,
            dns_names=self.runtime.config.dns_names,
            roots=certificates_of(snapshot.roots),
            intermediates=certificates_of(snapshot.intermediates),
        )

    def provisioner_for_token(self, snapshot: Snapshot, token: str) -> Provisioner:
        """The provisioner a token names: SSHPOP by its header, else the one whose name and
        key id are the token's `iss` and `kid`; AuthError if there is none. Nothing about
        the token is trusted yet: the provisioner verifies it."""
        unverified = peek(token)
        if "sshpop" in unverified.header:
            return SSHPOP_PROVISIONER
        record = snapshot.by_issuer_kid.get(
            (str(unverified.claims.get("iss", "")), str(unverified.header.get("kid", "")))
        )
        if record is None or record.jwk is None:
            raise AuthError("no provisioner for the token's issuer and key id")
        return record.jwk

    def provisioner_by_id(self, snapshot: Snapshot, provisioner_id: str | None) -> Provisioner:
        """The provisioner the ledger recorded for a certificate (only the id counts: a name
        is a label, and a provisioner removed and re-added under it is another one)."""
        if not provisioner_id:
            return UNPROVISIONED
        record = next((p for p in snapshot.provisioners if p.id == provisioner_id), None)
        if record is None:
            raise AuthError("the provisioner of the certificate no longer exists")
        if record.jwk is None:
            raise AuthError(f"provisioner type {record.type} cannot authorize this request")
        return record.jwk

    def verify_jwk_token(
        self, snapshot: Snapshot, token: str, accepted: frozenset[str], *, now: datetime
    ) -> tuple[ProvisionerRecord, VerifiedToken]:
        """A JWK provisioner's one-time token for one of the `accepted` audiences (the admin
        API's); AuthError otherwise."""
        provisioner = self.provisioner_for_token(snapshot, token)
        if not isinstance(provisioner, JWKProvisioner):
            raise AuthError("the token is not a JWK provisioner's one-time token")
        record = next(p for p in snapshot.provisioners if p.id == provisioner.id)
        return record, provisioner.verify(token, accepted, self.context(snapshot, now))

    def sign(self, request: SignRequest, info: RequestInfo) -> Issued:
        """Authenticate, authorize, build, check and sign; return once the event committed."""
        prepared = self.prepare_sign(request, info)
        return prepared.issued(self._commit(prepared.append))

    async def sign_async(self, request: SignRequest, info: RequestInfo) -> Issued:
        """`sign` for an event loop: the CPU work runs in the preparers' pool, the commit
        is awaited (no thread is held while the group committer writes), and the loop
        stays free for every other request meanwhile.

        It decides from the cached snapshot without asking the database first, and makes
        that safe at both ends: the append carries the snapshot's state position as a
        precondition (`Unchanged`), so a provisioner, key or policy change committed by any
        instance in the meantime refuses it; and a refusal is re-checked against the
        current state before the client sees it. Either way the request is decided again
        on the new state, so every instance honours a change on its next request.
        """
        snapshot, position = self.state.cached()
        for _ in range(3):
            try:
                prepared = await self._off_loop(self.prepare_sign, request, info, snapshot)
            except CAError:
                fresh = await self._off_loop(self._fresh_state)
                if fresh[1] == position:
                    raise
                snapshot, position = fresh
                continue
            try:
                (recorded,) = await self.recorder.record_async(
                    prepared.append.events,
                    prepared.append.actor,
                    expected=prepared.append.expected,
                    unchanged=Unchanged(STATE, position),
                )
            except ChangedSince:
                snapshot, position = await self._off_loop(self._fresh_state)
                continue
            return prepared.issued(recorded.position)
        raise Unavailable("the authority's configuration kept changing during the request")

    async def _off_loop(self, work: Callable[..., T], *args: Any) -> T:
        context = contextvars.copy_context()  # the request's log context goes along
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._preparers, context.run, work, *args)

    def _fresh_state(self) -> tuple[Snapshot, int]:
        try:
            return self.state.current_entry()
        except LookupError as exc:
            raise ConfigError(str(exc)) from exc

    def prepare_sign(
        self, request: SignRequest, info: RequestInfo, snapshot: Snapshot | None = None
    ) -> PreparedIssue:
        """Everything of issuance but the commit: a signed certificate and its event."""
        now = self.clock()
        snapshot = snapshot or self.snapshot()
        csr = parse_csr(request.csr)
        if not request.ott:
            raise BadRequest("missing ott")
        provisioner = self.provisioner_for_token(snapshot, request.ott)
        grant = provisioner.authorize_sign(request.ott, csr, self.context(snapshot, now))
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
        template = self._with_revocation_urls(template)
        check_names(snapshot, grant.provisioner, template)
        certificate = self._sign_leaf(
            snapshot,
            template,
            cast(PublicKey, csr.public_key()),
            not_before,
            not_after,
            list(grant.extensions),
        )
        issuer = snapshot.intermediate
        append = self._issued_event(
            certificate,
            issuer,
            sans=[{"type": s.type, "value": s.value} for s in template.sans],
            provisioner=grant.provisioner.payload(),
            token_id=grant.token_id,
            info=info,
        )
        name = grant.provisioner.name
        return PreparedIssue(certificate, self.chain_pems(certificate, issuer), name, append)

    def _with_revocation_urls(self, template: CertificateTemplate) -> CertificateTemplate:
        """The configured CRL and OCSP URLs, unless the template chose its own."""
        crl_urls, ocsp_urls = leaf_urls(self.runtime.config)
        return dataclasses.replace(
            template,
            crl_distribution_points=template.crl_distribution_points or crl_urls,
            ocsp_server=template.ocsp_server or ocsp_urls,
        )

    def issue_server_certificate(
        self, public_key: PublicKey, dns_names: tuple[str, ...], lifetime: timedelta
    ) -> list[x509.Certificate]:
        """The CA's own TLS certificate, recorded like any other issuance."""
        now = self.clock()
        snapshot = self.snapshot()
        sans = split_sans(dns_names)
        template = CertificateTemplate(
            subject=Subject(common_name=dns_names[0]),
            sans=tuple(TemplateSAN(s.type, s.value) for s in sans),  # type: ignore[arg-type]
            key_usage=("digitalSignature",),
            ext_key_usage=("serverAuth", "clientAuth"),
        )
        issuer = snapshot.intermediate
        certificate = self._sign_leaf(
            snapshot, template, public_key, now - timedelta(minutes=1), now + lifetime, []
        )
        self.record_issued(
            certificate,
            issuer,
            sans=[{"type": s.type, "value": s.value} for s in sans],
            provisioner=None,
            token_id=None,
            info=RequestInfo(request_id="server-tls"),
        )
        assert issuer.certificate is not None
        return [certificate, issuer.certificate]

    def issuer(self, snapshot: Snapshot) -> Issuer:
        """The active intermediate and its key: what every new certificate is signed with."""
        active = snapshot.intermediate
        if active.certificate is None:
            raise SignerError("the active intermediate has no certificate")
        return Issuer(active.certificate, self.signing_key(active))

    def _sign_leaf(
        self,
        snapshot: Snapshot,
        template: Any,
        public_key: PublicKey,
        not_before: datetime,
        not_after: datetime,
        extensions: list[ProvisionerExtension],
    ) -> x509.Certificate:
        profile = TemplateProfile(template, [e.to_extension() for e in extensions])
        validity = (not_before, not_after)
        rules = self.leaf_rules(snapshot)
        return issue(prepare(profile, public_key, validity, self.issuer(snapshot), rules))

    def leaf_rules(self, snapshot: Snapshot | None = None) -> LeafRules:
        """What no leaf may carry: the CA's subjects and configured OCSP responders."""
        snapshot = snapshot or self.snapshot()
        keys = (*snapshot.roots, *snapshot.intermediates)
        return LeafRules.of(tuple(k.certificate for k in keys), leaf_urls(self.runtime.config)[1])

    def record_issued(self, certificate: x509.Certificate, issuer: ActiveKey, **fields: Any) -> int:
        """Append the `x509.issued` event (`fields` as for `_issued_event`); its position."""
        return self._commit(self._issued_event(certificate, issuer, **fields))

    def _commit(self, append: PendingAppend) -> int:
        (recorded,) = self.recorder.record(append.events, append.actor, expected=append.expected)
        return recorded.position

    def _issued_event(
        self,
        certificate: x509.Certificate,
        issuer: ActiveKey,
        *,
        sans: list[dict[str, str]],
        provisioner: dict[str, str] | None,
        token_id: str | None,
        info: RequestInfo,
        renewed_from: str | None = None,
        rekeyed_from: str | None = None,
        actor_extra: Mapping[str, Any] | None = None,
    ) -> PendingAppend:
        serial = str(certificate.serial_number)
        stream = ev.x509_stream(serial)
        event = NewEvent(
            stream,
            ev.X509_ISSUED,
            {
                "serial": serial,
                "certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
                "subject": certificate.subject.rfc4514_string(),
                "sans": sans,
                "not_before": format_time(certificate.not_valid_before_utc),
                "not_after": format_time(certificate.not_valid_after_utc),
                "provisioner": provisioner,
                "issuer_key_id": issuer.key_id,
                "token_id": token_id,
                "renewed_from": renewed_from,
                "rekeyed_from": rekeyed_from,
            },
        )
        actor = Actor.of(self.instance, info, provisioner, token_id, actor_extra)
        return PendingAppend([event], actor, {stream: 0})

    def chain_pems(self, certificate: x509.Certificate, issuer: ActiveKey) -> list[str]:
        chain = [certificate.public_bytes(serialization.Encoding.PEM).decode()]
        if issuer.certificate_pem:
            chain.append(issuer.certificate_pem)
        return chain
