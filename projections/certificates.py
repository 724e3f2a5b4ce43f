"""`certificates`: one row per issued X.509 certificate, with its revocation; and
`revoked_unissued`: one row per serial revoked without ever being issued here.

"Expired" is not stored: it depends on the clock, and handlers may not read the clock.

Being inline, this projection is where the certificate invariants are checked atomically
with the append, on every instance: a serial is issued once, revoked at most once (as an
issued certificate, or in `revoked_unissued` if it never was), and a revoked certificate is
never renewed or rekeyed, even when the revocation committed through another instance a
moment before. Those rules, and the columns
they work on, are shared with `ssh_certificates` (`projections.certificate_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Index, String, Table, Text

from ledger import RecordedEvent, canonical_json
from projections.base import Mode, Projection, metadata
from projections.certificate_rows import CertificateRows, lifecycle_columns, unissued_columns
from projections.errors import ProjectionConflict
from projections.events import X509Issued, X509Revoked, X509RevokedUnissued

certificates = Table(
    "certificates",
    metadata,
    Column("serial", String(40), primary_key=True),
    Column("subject", Text, nullable=False),
    Column("sans", Text, nullable=False),
    Column("not_before", String(27), nullable=False),
    Column("not_after", String(27), nullable=False),
    *lifecycle_columns(40),
    Index("ix_certificates_not_after", "not_after"),
    Index("ix_certificates_provisioner", "provisioner_name"),
)

revoked_unissued = Table(
    "revoked_unissued",
    metadata,
    *unissued_columns(40),
    Index("ix_revoked_unissued_position", "revoked_position"),
)
"""X.509 serials revoked by `x509.revoked_unissued`: every CRL lists them, and OCSP
answers "revoked" for them under any of our issuers."""


class CertificateRevoked(ProjectionConflict):
    """A renewal or rekey names a certificate that is revoked."""


class UnknownCertificate(ProjectionConflict):
    """The event names a serial that was never issued."""


class AlreadyRevoked(ProjectionConflict):
    """A revocation names a certificate that is revoked already."""


class CertificateIssued(ProjectionConflict):
    """A revocation of a never-issued serial names one this ledger issued."""


rows = CertificateRows(
    certificates,
    revoked_unissued,
    kind="",
    source_revoked=CertificateRevoked,
    unknown=UnknownCertificate,
    already_revoked=AlreadyRevoked,
    issued=CertificateIssued,
)


def _row(issued: X509Issued, position: int) -> dict[str, Any]:
    return {
        "serial": issued.serial,
        "subject": issued.subject,
        "sans": canonical_json([san.to_json() for san in issued.sans]),
        "not_before": issued.not_before,
        "not_after": issued.not_after,
        **rows.columns(issued, position),
    }


def _issue(connection: Connection, issued: X509Issued, position: int) -> None:
    rows.check_source(connection, issued)
    rows.insert(connection, [_row(issued, position)])


def _issued(connection: Connection, event: RecordedEvent) -> None:
    _issue(connection, X509Issued.from_recorded(event), event.position)


def _revoked(connection: Connection, event: RecordedEvent) -> None:
    rows.revoke(connection, X509Revoked.from_recorded(event), event.position)


def _revoked_unissued(connection: Connection, event: RecordedEvent) -> None:
    rows.revoke_unissued(connection, X509RevokedUnissued.from_recorded(event), event.position)


def _apply_batch(connection: Connection, events: Sequence[RecordedEvent]) -> None:
    """Plain issuances in one statement; anything that reads the table first (a renewal's
    source, a revocation) goes alone, after the rows before it are written."""
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if pending:
            rows.insert(connection, pending)
            pending.clear()

    for event in events:
        if event.type == X509Issued.TYPE:
            issued = X509Issued.from_recorded(event)
            if issued.renewed_from or issued.rekeyed_from:
                flush()
                _issue(connection, issued, event.position)
            else:
                pending.append(_row(issued, event.position))
        elif event.type == X509Revoked.TYPE:
            flush()
            _revoked(connection, event)
        elif event.type == X509RevokedUnissued.TYPE:
            flush()
            _revoked_unissued(connection, event)
    flush()


projection = Projection(
    name="certificates",
    mode=Mode.INLINE,
    tables=(certificates, revoked_unissued),
    handlers={
        X509Issued.TYPE: _issued,
        X509Revoked.TYPE: _revoked,
        X509RevokedUnissued.TYPE: _revoked_unissued,
    },
    batch=_apply_batch,
)
