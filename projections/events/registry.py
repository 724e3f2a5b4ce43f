"""Every event class, by its type name: decoding what the ledger stores."""

from __future__ import annotations

from ledger import RecordedEvent
from projections.events.admins import AdminAdded, AdminRemoved
from projections.events.authority import AuthorityInitialized, KeyActivated, KeyRetired
from projections.events.base import Event, MalformedEvent
from projections.events.checkpoints import LedgerCheckpoint
from projections.events.policies import PolicySet
from projections.events.provisioners import (
    ProvisionerAdded,
    ProvisionerRemoved,
    ProvisionerUpdated,
)
from projections.events.ssh import SSHIssued, SSHRevoked, SSHRevokedUnissued
from projections.events.tokens import TokenSpent
from projections.events.x509 import CRLPublished, X509Issued, X509Revoked, X509RevokedUnissued

EVENTS: tuple[type[Event], ...] = (
    AuthorityInitialized,
    KeyActivated,
    KeyRetired,
    ProvisionerAdded,
    ProvisionerUpdated,
    ProvisionerRemoved,
    PolicySet,
    AdminAdded,
    AdminRemoved,
    X509Issued,
    X509Revoked,
    X509RevokedUnissued,
    CRLPublished,
    LedgerCheckpoint,
    SSHIssued,
    SSHRevoked,
    SSHRevokedUnissued,
    TokenSpent,
)
"""Every event type the CA writes, in the order the catalogue lists them."""

BY_TYPE: dict[str, type[Event]] = {cls.TYPE: cls for cls in EVENTS}
if len(BY_TYPE) != len(EVENTS):
    raise RuntimeError("two event classes share a type name")


def event_class(event_type: str) -> type[Event]:
    try:
        return BY_TYPE[event_type]
    except KeyError:
        raise MalformedEvent(f"no event class for type {event_type!r}") from None


def decode(event: RecordedEvent) -> Event:
    """The typed form of any recorded event, its payload upcast to the newest schema."""
    return event_class(event.type).from_payload(event.data, event.schema)
