"""The composition root of a serving process: its background jobs, built from its parts.

The CRL publisher and the checkpointer know nothing of `Authority`; they are handed the
engine, keys, settings and commit path they need here. Every job runs through
`background.periodic`: the CRL publisher, checkpoints, server-certificate renewal, the
client-CA refresh after a rotation, and the follower projections (which would otherwise
never advance while the CA serves).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import structlog

from ca.audit.checkpointer import Checkpointer
from ca.authority.authority import Authority
from ca.authority.state import ActiveKey
from ca.crl.publisher import CRLPublisher
from ca.crl.urls import idp_url
from ca.server.background import Job
from ca.server.certificate import ServerCertificate

log = structlog.get_logger("ledgerca.server")

FOLLOWER_POLL_SECONDS = 2.0
"""How often followers look for new events when nothing wakes them (SQLite has no NOTIFY;
on PostgreSQL every append wakes them at once)."""
CLIENT_CA_POLL_SECONDS = 5.0

LiveContext = Callable[[], ssl.SSLContext | None]


def crl_publisher(authority: Authority) -> CRLPublisher[ActiveKey]:
    """The publisher of one serving process, on its authority's keys and commit path."""
    config = authority.runtime.config
    return CRLPublisher(
        engine=authority.runtime.engine,
        appender=authority.appender,
        active_issuer=lambda: authority.snapshot().intermediate,
        signing_key=authority.signing_key,
        settings=config.crl,
        idp_url=idp_url(config),
        actor={"instance": authority.instance, "publisher": "crl"},
        clock=authority.clock,
    )


def checkpointer(authority: Authority) -> Checkpointer:
    """The checkpointer of one serving process, on its authority's password and store."""
    return Checkpointer(
        store=authority.store,
        home=authority.runtime.home,
        password=authority.password,
        settings=authority.runtime.config.checkpoint,
        actor={"instance": authority.instance, "publisher": "checkpoint"},
        pkcs11=authority.runtime.config.pkcs11,
        clock=authority.clock,
    )


class ServerCertificateRenewal:
    """Renew (or pick up a sibling's renewal of) the server certificate and load it into
    the live TLS context; the next check is due when the certificate's renewal time is."""

    def __init__(self, server_cert: ServerCertificate, live_context: LiveContext) -> None:
        self.server_cert = server_cert
        self.live_context = live_context
        self.loaded = server_cert.current()

    def check(self) -> None:
        self.server_cert.ensure()
        current = self.server_cert.current()
        context = self.live_context()
        if current is not None and current != self.loaded and context is not None:
            self.server_cert.load_into(context)
            self.loaded = current
            log.info("server certificate loaded", serial=str(current.serial_number))

    def interval(self) -> float:
        current = self.server_cert.current()
        if current is None:
            return 30.0
        due = (self.server_cert.renew_at(current) - self.server_cert.clock()).total_seconds()
        return max(1.0, min(60.0, due))


class ClientCARefresh:
    """Trust client certificates from intermediates activated after start (a rotation).

    The supervisor writes `certs/client_cas.pem` once; an intermediate activated later is
    added to the live context here, so its certificates can renew over mTLS within seconds.
    """

    def __init__(self, authority: Authority, live_context: LiveContext) -> None:
        self.authority = authority
        self.live_context = live_context
        self.trusted = {key.key_id for key in authority.snapshot().intermediates}

    def check(self) -> None:
        context = self.live_context()
        for key in self.authority.snapshot().intermediates:
            if key.key_id not in self.trusted and key.certificate_pem and context is not None:
                context.load_verify_locations(cadata=key.certificate_pem)
                self.trusted.add(key.key_id)
                log.info("client certificates of a new intermediate trusted", key_id=key.key_id)


def background_jobs(
    authority: Authority,
    server_cert: ServerCertificate,
    live_context: LiveContext,
    *,
    head_moved: Callable[[], asyncio.Event],
) -> list[Job]:
    """Every job of one serving process; `head_moved()` gives a fresh event that is set
    whenever the ledger head moves (so that each job may clear its own)."""
    config = authority.runtime.config
    runtime = authority.runtime
    renewal = ServerCertificateRenewal(server_cert, live_context)
    jobs = [
        Job(
            "server certificate renewal",
            renewal.check,
            renewal.interval,
            start_after=renewal.interval,
        ),
        Job(
            "client CA refresh",
            ClientCARefresh(authority, live_context).check,
            CLIENT_CA_POLL_SECONDS,
            start_after=CLIENT_CA_POLL_SECONDS,
        ),
        Job(
            "follower projections",
            lambda: runtime.projections.catch_up_followers(runtime.store),
            FOLLOWER_POLL_SECONDS,
            wake=head_moved(),
        ),
    ]
    if config.crl.enabled:
        publisher = crl_publisher(authority)
        jobs.append(
            Job("crl publication", publisher.check, config.crl.poll_seconds, wake=head_moved())
        )
    if config.checkpoint.enabled:
        poll = config.checkpoint.poll_seconds
        jobs.append(Job("checkpoint", checkpointer(authority).check, poll))
    return jobs
