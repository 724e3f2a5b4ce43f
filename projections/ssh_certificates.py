"""`ssh_certificates`: one row per issued SSH certificate, with its revocation.

Like `certificates` for X.509, this inline projection is where the SSH invariants are
checked atomically with the append, on every instance: a serial is issued once, revoked at
most once (and only if it was issued), and a revoked certificate never renews or rekeys,
even when the revocation committed through another instance a moment before.
Expiry is not stored: it depends on the clock, which handlers may not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ledger import RecordedEvent, canonical_json, is_unique_violation
from ledger import catalogue as ev
from projections.base import Mode, Position, Projection, metadata
from projections.certificates import issuance_columns
from projections.errors import ProjectionConflict

ssh_certificates = Table(
    "ssh_certificates",
    metadata,
    Column("serial", String(20), primary_key=True),
    Column("cert_type", String(10), nullable=False),
    Column("key_id", Text, nullable=False),
    Column("principals", Text, nullable=False),
    Column("valid_after", String(27), nullable=False),
    Column("valid_before", String(27), nullable=False),
    Column("status", String(10), nullable=False),
    Column("provisioner_id", String(64), nullable=True),
    Column("provisioner_name", String(200), nullable=True),
    Column("issuer_key_id", String(64), nullable=False),
    Column("token_id", String(200), nullable=True),
    Column("renewed_from", String(20), nullable=True),
    Column("rekeyed_from", String(20), nullable=True),
    Column("certificate", Text, nullable=False),
    Column("issued_position", Position, nullable=False),
    Column("revoked_at", String(27), nullable=True),
    Column("revocation_reason_code", Integer, nullable=True),
    Column("revocation_reason", Text, nullable=True),
    Column("revoked_position", Position, nullable=True),
    Index("ix_ssh_certificates_valid_before", "valid_before"),
)


class SSHCertificateRevoked(ProjectionConflict):
    """A renewal or rekey names an SSH certificate that is revoked."""


class UnknownSSHCertificate(ProjectionConflict):
    """The event names an SSH serial that was never issued."""


class SSHAlreadyRevoked(ProjectionConflict):
    """A revocation names an SSH certificate that is revoked already."""


_INSERT = ssh_certificates.insert()
_REVOKE = (
    update(ssh_certificates)
    .where(ssh_certificates.c.serial == bindparam("target"), ssh_certificates.c.status == "valid")
    .values(
        status="revoked",
        revoked_at=bindparam("new_revoked_at"),
        revocation_reason_code=bindparam("new_reason_code"),
        revocation_reason=bindparam("new_reason"),
        revoked_position=bindparam("new_position"),
    )
)
_STATUS = select(ssh_certificates.c.status).where(ssh_certificates.c.serial == bindparam("source"))


def _check_source(connection: Connection, data: Mapping[str, Any]) -> None:
    for field in ("renewed_from", "rekeyed_from"):
        source = data.get(field)
        if not source:
            continue
        status = connection.execute(_STATUS, {"source": str(source)}).scalar_one_or_none()
        if status is None:
            raise UnknownSSHCertificate(
                f"{field} names SSH certificate {source}, which was never issued"
            )
        if status == "revoked":
            raise SSHCertificateRevoked(f"SSH certificate {source} has been revoked")


def _issued(connection: Connection, event: RecordedEvent) -> None:
    data = event.data
    serial = str(data["serial"])
    _check_source(connection, data)
    try:
        connection.execute(
            _INSERT,
            {
                "serial": serial,
                "cert_type": data["cert_type"],
                "key_id": data["key_id"],
                "principals": canonical_json(list(data["principals"])),
                "valid_after": data["valid_after"],
                "valid_before": data["valid_before"],
                **issuance_columns(event),
            },
        )
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise ProjectionConflict(f"SSH serial {serial} was already issued") from None


def _revoked(connection: Connection, event: RecordedEvent) -> None:
    data = event.data
    serial = str(data["serial"])
    result = connection.execute(
        _REVOKE,
        {
            "target": serial,
            "new_revoked_at": data["revoked_at"],
            "new_reason_code": int(data.get("reason_code", 0)),
            "new_reason": data.get("reason", ""),
            "new_position": event.position,
        },
    )
    if result.rowcount == 1:
        return
    status = connection.execute(_STATUS, {"source": serial}).scalar_one_or_none()
    if status is None:
        raise UnknownSSHCertificate(f"SSH certificate {serial} was never issued")
    raise SSHAlreadyRevoked(f"SSH certificate with serial number '{serial}' is already revoked")


projection = Projection(
    name="ssh_certificates",
    mode=Mode.INLINE,
    tables=(ssh_certificates,),
    handlers={ev.SSH_ISSUED: _issued, ev.SSH_REVOKED: _revoked},
)
