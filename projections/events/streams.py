"""Stream names: which events share an aggregate, and so a version sequence.

A stream's version is the optimistic-concurrency check of the events on it (an append names
the version it read), so the grouping is part of each event type's contract, stable like
its type name.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

_KEYS = string.Formatter()


@dataclass(frozen=True)
class Stream:
    """A stream name template such as `x509/{serial}`, filled from an event's fields."""

    template: str
    description: str

    @property
    def keys(self) -> tuple[str, ...]:
        """The event fields the name is made of, in order."""
        return tuple(key for _, key, _, _ in _KEYS.parse(self.template) if key)

    @property
    def pattern(self) -> str:
        """The template as the catalogue writes it: `x509/<serial>`."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.template)

    def name(self, **keys: str) -> str:
        return self.template.format(**keys)

    def of(self, event: object) -> str:
        """The stream of `event`, whose attributes supply the template's keys."""
        return self.template.format(**{key: getattr(event, key) for key in self.keys})


AUTHORITY = Stream("authority", "the CA itself: its initialisation and every key it signs with")
PROVISIONER = Stream("provisioner/{id}", "one provisioner: added, changed, removed")
POLICY = Stream(
    "policy/{scope}", "one name policy: the authority's (`authority`) or a provisioner's"
)
ADMINS = Stream("admins", "every admin: one stream, so each change is checked against all")
X509 = Stream("x509/{serial}", "one X.509 certificate: its issuance and its revocation")
CRL = Stream("crl/{issuer_key_id}", "the CRLs of one issuer key; the version is the CRL number")
CHECKPOINT = Stream("ledger/checkpoint", "signed checkpoints; the version is the number")
SSH = Stream("ssh/{serial}", "one SSH certificate (serial: uint64 as a decimal string)")
TOKEN = Stream("token/{token_id}", "a one-time token spent by a request that writes no event")

ALL = (AUTHORITY, PROVISIONER, POLICY, ADMINS, X509, CRL, CHECKPOINT, SSH, TOKEN)

AUTHORITY_STREAM = AUTHORITY.template
ADMINS_STREAM = ADMINS.template
CHECKPOINT_STREAM = CHECKPOINT.template


def provisioner_stream(provisioner_id: str) -> str:
    return PROVISIONER.name(id=provisioner_id)


def policy_stream(scope: str) -> str:
    return POLICY.name(scope=scope)


def x509_stream(serial: str) -> str:
    return X509.name(serial=serial)


def crl_stream(issuer_key_id: str) -> str:
    return CRL.name(issuer_key_id=issuer_key_id)


def ssh_stream(serial: str) -> str:
    return SSH.name(serial=serial)


def token_stream(token_id: str) -> str:
    return TOKEN.name(token_id=token_id)
