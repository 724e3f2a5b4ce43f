"""Administrators as events: who may change provisioners, policies and admins remotely.

An admin is a subject (a certificate's common name or SAN, or a token's `sub`) bound to one
provisioner: a client certificate issued through that provisioner, or a token signed by its
key, authenticates the admin. `SUPER_ADMIN`s may also manage admins; `ADMIN`s manage
provisioners and policies. Every change is an `admin.added|removed` event on the single
`admins` stream, appended with the stream version it was checked against, so two instances
can never both remove "the last but one" super admin or add the same admin twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from ca.errors import AuthError, BadRequest, NotFound, PolicyError
from ledger import EventStore, NewEvent
from projections.events import ADMINS_STREAM, AdminAdded, AdminRemoved

ADMIN = "ADMIN"
SUPER_ADMIN = "SUPER_ADMIN"
TYPES = (ADMIN, SUPER_ADMIN)


@dataclass(frozen=True)
class Admin:
    id: str
    subject: str
    provisioner_id: str
    provisioner_name: str
    type: str

    @property
    def is_super(self) -> bool:
        return self.type == SUPER_ADMIN

    def to_json(self) -> dict[str, str]:
        """step-ca's admin object."""
        return {
            "id": self.id,
            "subject": self.subject,
            "provisionerId": self.provisioner_id,
            "provisionerName": self.provisioner_name,
            "type": self.type,
        }


def fold(events: Iterable[tuple[str, Mapping[str, Any]]]) -> tuple[Admin, ...]:
    """The admins in force after `events` ((type, data) of the `admins` stream, in order)."""
    current: dict[str, Admin] = {}
    for event_type, data in events:
        if event_type == AdminAdded.TYPE:
            added = AdminAdded.from_payload(data)
            current[added.id] = Admin(
                added.id, added.subject, added.provisioner_id, added.provisioner_name, added.type
            )
        elif event_type == AdminRemoved.TYPE:
            current.pop(AdminRemoved.from_payload(data).id, None)
    return tuple(current.values())


def current(store: EventStore) -> tuple[tuple[Admin, ...], int]:
    """The admins now, and the `admins` stream version they reflect."""
    events = store.read_stream(ADMINS_STREAM)
    return fold((e.type, e.data) for e in events), (events[-1].version if events else 0)


def add(
    store: EventStore,
    *,
    subject: str,
    provisioner_id: str,
    provisioner_name: str,
    admin_type: str,
    actor: Mapping[str, Any],
    also: Sequence[NewEvent] = (),
) -> Admin:
    """Bind `subject` to a provisioner as an admin.

    `also`: events appended atomically with the change (the caller's spent admin token).
    """
    subject = subject.strip()
    if not subject:
        raise BadRequest("an admin needs a subject")
    admin_type = admin_type.upper()
    if admin_type not in TYPES:
        raise BadRequest(f"admin type {admin_type!r} is not ADMIN or SUPER_ADMIN")
    admins, version = current(store)
    if any(a.subject == subject and a.provisioner_id == provisioner_id for a in admins):
        raise BadRequest(f"admin {subject!r} of provisioner {provisioner_name!r} already exists")
    admin = Admin(str(uuid.uuid4()), subject, provisioner_id, provisioner_name, admin_type)
    store.append(
        [
            AdminAdded(
                id=admin.id,
                subject=admin.subject,
                provisioner_id=admin.provisioner_id,
                provisioner_name=admin.provisioner_name,
                type=admin.type,
            ).to_new_event(),
            *also,
        ],
        actor=actor,
        expected={ADMINS_STREAM: version},
    )
    return admin


def remove(
    store: EventStore,
    admin_id_or_subject: str,
    *,
    actor: Mapping[str, Any],
    also: Sequence[NewEvent] = (),
) -> Admin:
    admins, version = current(store)
    matches = [a for a in admins if admin_id_or_subject in (a.id, a.subject)]
    if not matches:
        raise NotFound(f"no admin {admin_id_or_subject!r}")
    if len(matches) > 1:
        raise BadRequest(f"{admin_id_or_subject!r} names several admins: give the admin's id")
    (admin,) = matches
    if admin.is_super and sum(a.is_super for a in admins) == 1:
        raise PolicyError("the last super admin cannot be removed")
    store.append(
        [
            AdminRemoved(id=admin.id, subject=admin.subject).to_new_event(),
            *also,
        ],
        actor=actor,
        expected={ADMINS_STREAM: version},
    )
    return admin


def certificate_subjects(certificate: x509.Certificate) -> set[str]:
    """The names a client certificate may be an admin under: its CN and SAN values."""
    names = {
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    }
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    for kind in (x509.DNSName, x509.RFC822Name, x509.UniformResourceIdentifier):
        names.update(str(value) for value in san.get_values_for_type(kind))
    return names


def match(admins: Sequence[Admin], *, provisioner_id: str | None, subjects: set[str]) -> Admin:
    for admin in admins:
        if admin.provisioner_id == provisioner_id and admin.subject in subjects:
            return admin
    raise AuthError("the caller is not an admin")


def check_expiry(certificate: x509.Certificate, now: datetime) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise AuthError("the admin's client certificate is not valid now")
