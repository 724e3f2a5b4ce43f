"""Deprecated: event type and stream names, kept only for modules not yet moved to the typed
events of `projections.events`, which are their source of truth (payloads, schemas and the
catalogue in `docs/EVENTS.md` come from there). The ledger itself knows no event type; a
test checks that these names agree with the classes. Delete this module once nothing
imports it.
"""

from __future__ import annotations

AUTHORITY_INITIALIZED = "authority.initialized"
KEY_ACTIVATED = "authority.key_activated"
KEY_RETIRED = "authority.key_retired"
PROVISIONER_ADDED = "provisioner.added"
PROVISIONER_UPDATED = "provisioner.updated"
PROVISIONER_REMOVED = "provisioner.removed"
POLICY_SET = "policy.set"
ADMIN_ADDED = "admin.added"
ADMIN_REMOVED = "admin.removed"
X509_ISSUED = "x509.issued"
X509_REVOKED = "x509.revoked"
CRL_PUBLISHED = "crl.published"
LEDGER_CHECKPOINT = "ledger.checkpoint"
SSH_ISSUED = "ssh.issued"
SSH_REVOKED = "ssh.revoked"
TOKEN_SPENT = "token.spent"  # noqa: S105 - an event type, not a password

AUTHORITY_STREAM = "authority"
CHECKPOINT_STREAM = "ledger/checkpoint"
ADMINS_STREAM = "admins"


def provisioner_stream(provisioner_id: str) -> str:
    return f"provisioner/{provisioner_id}"


def policy_stream(scope: str) -> str:
    return f"policy/{scope}"


def x509_stream(serial: str) -> str:
    return f"x509/{serial}"


def crl_stream(issuer_key_id: str) -> str:
    return f"crl/{issuer_key_id}"


def ssh_stream(serial: str) -> str:
    return f"ssh/{serial}"


def token_stream(token_id: str) -> str:
    return f"token/{token_id}"
