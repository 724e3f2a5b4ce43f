"""Typed domain events: one frozen dataclass per event type the CA writes.

Each class has its stable `TYPE` and payload `SCHEMA`, its `stream`, `to_new_event()` for
appending, and `from_payload` / `from_recorded` for reading (older schemas are upcast).
`decode` picks the class of any recorded event. The layer between `ledger` (which knows no
domain words) and the projections: it imports only `ledger`. `docs/EVENTS.md` is rendered
from these classes (`python -m projections.events.catalogue > docs/EVENTS.md`).
"""

from projections.events.admins import AdminAdded, AdminRemoved
from projections.events.authority import AuthorityInitialized, KeyActivated, KeyRetired
from projections.events.base import UPCASTERS, Event, MalformedEvent, upcaster
from projections.events.checkpoints import LedgerCheckpoint
from projections.events.policies import PolicySet
from projections.events.provisioners import (
    ProvisionerAdded,
    ProvisionerRemoved,
    ProvisionerUpdated,
)
from projections.events.registry import BY_TYPE, EVENTS, decode, event_class
from projections.events.ssh import SSHIssued, SSHRevoked, SSHRevokedUnissued
from projections.events.streams import (
    ADMINS_STREAM,
    AUTHORITY_STREAM,
    CHECKPOINT_STREAM,
    Stream,
    crl_stream,
    policy_stream,
    provisioner_stream,
    ssh_stream,
    token_stream,
    x509_stream,
)
from projections.events.tokens import TokenSpent
from projections.events.values import SAN, ProvisionerRef
from projections.events.x509 import CRLPublished, X509Issued, X509Revoked, X509RevokedUnissued

__all__ = [
    "ADMINS_STREAM",
    "AUTHORITY_STREAM",
    "BY_TYPE",
    "CHECKPOINT_STREAM",
    "EVENTS",
    "SAN",
    "UPCASTERS",
    "AdminAdded",
    "AdminRemoved",
    "AuthorityInitialized",
    "CRLPublished",
    "Event",
    "KeyActivated",
    "KeyRetired",
    "LedgerCheckpoint",
    "MalformedEvent",
    "PolicySet",
    "ProvisionerAdded",
    "ProvisionerRef",
    "ProvisionerRemoved",
    "ProvisionerUpdated",
    "SSHIssued",
    "SSHRevoked",
    "SSHRevokedUnissued",
    "Stream",
    "TokenSpent",
    "X509Issued",
    "X509Revoked",
    "X509RevokedUnissued",
    "crl_stream",
    "decode",
    "event_class",
    "policy_stream",
    "provisioner_stream",
    "ssh_stream",
    "token_stream",
    "upcaster",
    "x509_stream",
]
