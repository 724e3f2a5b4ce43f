"""The authority: what every use case runs on, and nothing of any one use case.

The state snapshot and its cache, the signing keys, the recorder over the group
committer, the preparers' thread pool, and the provisioners: `provisioner_for_token`,
`provisioner_by_id` and the `Context` they authorize in. The use cases are modules of
their own: `x509_issuance`, `lifecycle`, `ssh_issuance`, `ssh_lifecycle`, and the admin
ones. `sign_async` and `issue_server_certificate` are kept here as the two entry points
the HTTP layer and the server's certificate renewal call.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ca.authority import x509_issuance
from ca.authority.recorder import Recorder, RequestInfo
from ca.authority.state import ActiveKey, ProvisionerRecord, Snapshot, StateCache
from ca.authority.x509_issuance import Issued, SignRequest
from ca.crl.urls import leaf_urls
from ca.errors import AuthError, ConfigError, SignerError
from ca.keys.files import PrivateKey, PublicKey
from ca.keys.ids import key_id
from ca.keys.refs import load_signer
from ca.pki.issuer import Issuer
from ca.pki.leaf_rules import LeafRules
from ca.provisioners.base import Context, Provisioner, Unprovisioned
from ca.provisioners.jwk import JWKProvisioner, VerifiedToken
from ca.provisioners.sshpop import SSHPOP
from ca.runtime import Runtime
from ca.tokens import peek
from ledger import GroupCommitter

log = structlog.get_logger("ledgerca.authority")
T = TypeVar("T")

UNPROVISIONED = Unprovisioned()


def utcnow() -> datetime:
    return datetime.now(UTC)


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
        self.server_cert_lifetime = runtime.config.server_cert_lifetime
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
        return self.fresh_state()[0]

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
            return _sshpop_provisioner(snapshot, unverified.claims)
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
        if record.implementation is None:
            raise AuthError(f"provisioner type {record.type} cannot authorize this request")
        return record.implementation

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

    async def off_loop(self, work: Callable[..., T], *args: Any) -> T:
        context = contextvars.copy_context()  # the request's log context goes along
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._preparers, context.run, work, *args)

    def fresh_state(self) -> tuple[Snapshot, int]:
        try:
            return self.state.current_entry()
        except LookupError as exc:
            raise ConfigError(str(exc)) from exc

    def issuer(self, snapshot: Snapshot) -> Issuer:
        """The active intermediate and its key: what every new certificate is signed with."""
        active = snapshot.intermediate
        if active.certificate is None:
            raise SignerError("the active intermediate has no certificate")
        return Issuer(active.certificate, self.signing_key(active))

    def leaf_rules(self, snapshot: Snapshot | None = None) -> LeafRules:
        """What no leaf may carry: the CA's subjects and configured OCSP responders."""
        snapshot = snapshot or self.snapshot()
        keys = (*snapshot.roots, *snapshot.intermediates)
        return LeafRules.of(tuple(k.certificate for k in keys), leaf_urls(self.runtime.config)[1])

    # -- entry points ------------------------------------------------------------------

    async def sign_async(self, request: SignRequest, info: RequestInfo) -> Issued:
        """`POST /sign` (see `x509_issuance.sign_async`)."""
        return await x509_issuance.sign_async(self, request, info)

    def issue_server_certificate(
        self, public_key: PublicKey, dns_names: tuple[str, ...], lifetime: timedelta
    ) -> list[x509.Certificate]:
        """The CA's own TLS certificate (see `x509_issuance.issue_server_certificate`)."""
        return x509_issuance.issue_server_certificate(self, public_key, dns_names, lifetime)


def _sshpop_provisioner(snapshot: Snapshot, claims: Mapping[str, Any]) -> SSHPOP:
    """The SSHPOP provisioner an SSHPOP token names: by its audience's `#sshpop/<name>`
    fragment (as step mints it), else by its `iss`."""
    audiences = claims.get("aud")
    listed = audiences if isinstance(audiences, list) else [audiences]
    names = [
        a.partition("#")[2].removeprefix("sshpop/")
        for a in listed
        if isinstance(a, str) and a.partition("#")[2].startswith("sshpop/")
    ]
    wanted = names[0] if names else str(claims.get("iss", ""))
    for record in snapshot.provisioners:
        if record.sshpop is not None and record.name == wanted:
            return record.sshpop
    raise AuthError(f"no SSHPOP provisioner named {wanted[:64]!r}")
