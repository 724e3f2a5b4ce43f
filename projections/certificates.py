"""`certificates`: one row per issued X.509 certificate, with its revocation.

"Expired" is not stored: it depends on the clock, and handlers may not read the clock.

Being inline, this projection is where the certificate invariants are checked atomically
with the append, on every instance: a serial is issued once, revoked at most once (and only
if it was issued), and a revoked certificate is never renewed or rekeyed, even when the
revocation committed through another instance a moment before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from ledger.fastsql import Prepared
from projections.base import Mode, Position, Projection, metadata
from projections.errors import ProjectionConflict

certificates = Table(
    "certificates",
    metadata,
    Column("serial", String(40), primary_key=True),
    Column("subject", Text, nullable=False),
    Column("sans", Text, nullable=False),
    Column("not_before", String(27), nullable=False),
    Column("not_after", String(27), nullable=False),
    Column("status", String(10), nullable=False),
    Column("provisioner_id", String(64), nullable=True),
    Column("provisioner_name", String(200), nullable=True),
    Column("issuer_key_id", String(64), nullable=False),
    Column("token_id", String(200), nullable=True),
    Column("renewed_from", String(40), nullable=True),
    Column("rekeyed_from", String(40), nullable=True),
    Column("certificate", Text, nullable=False),
    Column("issued_position", Position, nullable=False),
    Column("revoked_at", String(27), nullable=True),
    Column("revocation_reason_code", Integer, nullable=True),
    Column("revocation_reason", Text, nullable=True),
    Column("revoked_position", Position, nullable=True),
    Index("ix_certificates_not_after", "not_after"),
    Index("ix_certificates_provisioner", "provisioner_name"),
)


class CertificateRevoked(ProjectionConflict):
    """A renewal or rekey names a certificate that is revoked."""


class UnknownCertificate(ProjectionConflict):
    """The event names a serial that was never issued."""


class AlreadyRevoked(ProjectionConflict):
    """A revocation names a certificate that is revoked already."""


# Built once: a construct per event costs more CPU than executing it (issuance, replay);
# the insert runs on the driver's cursor (ledger.fastsql).
_INSERT = Prepared(certificates.insert())
_REVOKE = (
    update(certificates)
    .where(certificates.c.serial == bindparam("target"), certificates.c.status == "valid")
    .values(
        status="revoked",
        revoked_at=bindparam("new_revoked_at"),
        revocation_reason_code=bindparam("new_reason_code"),
        revocation_reason=bindparam("new_reason"),
        revoked_position=bindparam("new_position"),
    )
)
_SOURCE_STATUS = select(certificates.c.status).where(certificates.c.serial == bindparam("source"))


def _check_source(connection: Connection, data: Mapping[str, Any]) -> None:
    for field in ("renewed_from", "rekeyed_from"):
        source = data.get(field)
        if not source:
            continue
        status = connection.execute(_SOURCE_STATUS, {"source": str(source)}).scalar_one_or_none()
        if status is None:
            raise UnknownCertificate(f"{field} names certificate {source}, which was never issued")
        if status == "revoked":
            raise CertificateRevoked(f"certificate {source} has been revoked: it cannot renew")


def issuance_columns(event: RecordedEvent) -> dict[str, Any]:
    """The columns an issued certificate's row shares with an SSH certificate's: who issued
    it, what it renews, the certificate itself, and a revocation not yet recorded."""
    data = event.data
    provisioner = data.get("provisioner") or {}
    return {
        "status": "valid",
        "provisioner_id": provisioner.get("id"),
        "provisioner_name": provisioner.get("name"),
        "issuer_key_id": data["issuer_key_id"],
        "token_id": data.get("token_id"),
        "renewed_from": data.get("renewed_from"),
        "rekeyed_from": data.get("rekeyed_from"),
        "certificate": data["certificate"],
        "issued_position": event.position,
        "revoked_at": None,
        "revocation_reason_code": None,
        "revocation_reason": None,
        "revoked_position": None,
    }


def _row(event: RecordedEvent) -> dict[str, Any]:
    data = event.data
    return {
        "serial": str(data["serial"]),
        "subject": data["subject"],
        "sans": canonical_json(data.get("sans", [])),
        "not_before": data["not_before"],
        "not_after": data["not_after"],
        **issuance_columns(event),
    }


def _insert(connection: Connection, rows: list[dict[str, Any]]) -> None:
    try:
        _INSERT.executemany(connection, rows)
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        # The primary key is the check: no read before the write on the hot path.
        serials = [row["serial"] for row in rows]
        which = serials[0] if len(serials) == 1 else f"among {', '.join(serials[:5])}…"
        raise ProjectionConflict(f"serial {which} was already issued") from None


def _issued(connection: Connection, event: RecordedEvent) -> None:
    _check_source(connection, event.data)
    _insert(connection, [_row(event)])


def _apply_batch(connection: Connection, events: Sequence[RecordedEvent]) -> None:
    """Plain issuances in one statement; anything that reads the table first (a renewal's
    source, a revocation) goes alone, after the rows before it are written."""
    pending: list[dict[str, Any]] = []
    for event in events:
        if event.type == ev.X509_ISSUED:
            if not (event.data.get("renewed_from") or event.data.get("rekeyed_from")):
                pending.append(_row(event))
                continue
        elif event.type != ev.X509_REVOKED:
            continue
        if pending:
            _insert(connection, pending)
            pending = []
        projection.apply(connection, event)
    if pending:
        _insert(connection, pending)


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
    if result.rowcount != 1:
        # Only the refusal pays for a second read, to say which of the two it is.
        revoked_at = connection.execute(
            select(certificates.c.revoked_at).where(certificates.c.serial == serial)
        ).one_or_none()
        if revoked_at is None:
            raise UnknownCertificate(
                f"certificate {serial} is unknown or already revoked: it was never issued"
            )
        raise AlreadyRevoked(
            f"certificate {serial} is unknown or already revoked: it was revoked at {revoked_at[0]}"
        )


projection = Projection(
    name="certificates",
    mode=Mode.INLINE,
    tables=(certificates,),
    handlers={ev.X509_ISSUED: _issued, ev.X509_REVOKED: _revoked},
    batch=_apply_batch,
)
