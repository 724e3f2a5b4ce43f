"""The CRL publisher: a follower of the ledger that signs and records CRLs.

Every worker of every instance runs one. Each pass costs one indexed read while nothing
changed; a CRL is published when the active intermediate has none yet, when its renewal
time has come (`renew_period` after thisUpdate, 2/3 of its lifetime by default), or — with
`generate_on_revoke` — when the issuer revoked a certificate after the position the latest
CRL reflects (`revoked_through`).

The CRL number is the version of the stream `crl/<issuer key id>`, and the event is appended
expecting the previous number: when two instances race, one commits and the other gets a
`ConcurrencyConflict`, drops its CRL, and looks again. So no number is ever used twice,
numbers increase across instances, and a restart (or a crash mid-publication) needs no
recovery: the state is whatever the ledger says.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine

from ca.config import CRLSettings
from ca.crl.builder import EXPIRED_GRACE, build_crl
from ca.crl.records import (
    PublishedCRL,
    head_position,
    latest_crl,
    newest_revocation,
    revocation_state,
)
from ca.errors import SignerError
from ca.keys.files import PrivateKey
from ledger import ConcurrencyConflict, NewEvent, RecordedEvent, format_time
from projections.events import CRLPublished

__all__ = ["CRLPublisher", "due"]

log = structlog.get_logger("ledgerca.crl")


class Appender(Protocol):
    def append(
        self,
        events: Sequence[NewEvent],
        *,
        actor: Mapping[str, Any] | None = None,
        expected: Mapping[str, int] | None = None,
    ) -> list[RecordedEvent]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def due(
    latest: PublishedCRL | None,
    *,
    now: datetime,
    renew_after: timedelta,
    newest_revocation: int | None,
) -> str | None:
    """Why a new CRL is needed now, or None. `newest_revocation` None: not on revocation."""
    if latest is None:
        return "none published yet"
    if now >= min(latest.this_update + renew_after, latest.next_update):
        return "renewal"
    if newest_revocation is not None and newest_revocation > latest.revoked_through:
        return "revocation"
    return None


@dataclass
class _Seen:
    """What the last pass read, valid while the ledger head and the issuer stay put."""

    issuer_key_id: str
    head: int
    latest: PublishedCRL | None
    newest_revocation: int


class IssuerKey(Protocol):
    """What the publisher needs of the key a CRL is signed with (the CA's `ActiveKey`)."""

    @property
    def key_id(self) -> str: ...

    @property
    def certificate(self) -> x509.Certificate | None: ...


K = TypeVar("K", bound=IssuerKey)


class CRLPublisher(Generic[K]):
    """Publishes the active intermediate's CRL into the ledger when one is due.

    `idp_url` is `ca.crl.urls.idp_url`: None (the default) for a complete CRL without an
    Issuing Distribution Point, a URI only for the scoped CRL `[crl] idp_url` asks for.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        appender: Appender,
        active_issuer: Callable[[], K],
        signing_key: Callable[[K], PrivateKey],
        settings: CRLSettings,
        idp_url: str | None,
        actor: Mapping[str, Any],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.appender = appender
        self.active_issuer = active_issuer
        self.signing_key = signing_key
        self.settings = settings
        self.idp_url = idp_url
        self.actor = dict(actor)
        self.clock = clock
        self._seen: _Seen | None = None

    # -- one pass ------------------------------------------------------------------------

    def check(self) -> RecordedEvent | None:
        """Publish if a CRL is due; return the `crl.published` event this call recorded."""
        issuer = self.active_issuer()
        seen = self._look(issuer.key_id)
        reason = due(
            seen.latest,
            now=self.clock(),
            renew_after=self.settings.renew,
            newest_revocation=seen.newest_revocation if self.settings.generate_on_revoke else None,
        )
        if reason is None:
            return None
        return self.publish(issuer, seen.latest, reason=reason)

    def _look(self, issuer_key_id: str) -> _Seen:
        with self.engine.connect() as connection:
            head = head_position(connection)
            seen = self._seen
            if seen is not None and seen.issuer_key_id == issuer_key_id and seen.head == head:
                return seen
            latest = latest_crl(connection, issuer_key_id, with_der=False)
            newest = newest_revocation(connection, issuer_key_id)
        self._seen = _Seen(issuer_key_id, head, latest, newest)
        return self._seen

    def publish(
        self, issuer: K, latest: PublishedCRL | None, *, reason: str = "requested"
    ) -> RecordedEvent | None:
        """Sign the next CRL and record it; None if another instance took the number first."""
        if issuer.certificate is None:
            raise SignerError(f"issuer {issuer.key_id[:16]} has no certificate to sign a CRL")
        number = (latest.number if latest is not None else 0) + 1
        now = self.clock()
        with self.engine.connect() as connection, connection.begin():
            state = revocation_state(connection, issuer.key_id, expired_before=now - EXPIRED_GRACE)
        crl = build_crl(
            issuer=issuer.certificate,
            issuer_key=self.signing_key(issuer),
            entries=state.entries,
            number=number,
            now=now,
            lifetime=self.settings.cache,
            idp_url=self.idp_url,
        )
        published = CRLPublished(
            issuer_key_id=issuer.key_id,
            number=number,
            this_update=format_time(crl.last_update_utc),
            next_update=format_time(crl.next_update_utc or crl.last_update_utc),
            revoked_through=state.through,
            entries=len(crl),
            der=base64.b64encode(crl.public_bytes(serialization.Encoding.DER)).decode(),
        )
        stream, event = published.stream, published.to_new_event()
        self._seen = None  # whatever happens, the next pass reads afresh
        try:
            (recorded,) = self.appender.append(
                [event], actor={**self.actor, "reason": reason}, expected={stream: number - 1}
            )
        except ConcurrencyConflict:
            log.info("crl number taken by another instance", number=number, issuer=stream)
            return None
        log.info(
            "crl published",
            number=number,
            entries=len(crl),
            reason=reason,
            revoked_through=state.through,
            position=recorded.position,
        )
        return recorded
