"""The certificate inventory: `certificates` rows with the time their issuance was recorded.

A read, not a projection: it joins the projection to the ledger's `events` on the issuance
position, since a certificate's row does not store when it was issued.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, select

from ledger import format_time
from ledger.schema import events
from projections.certificates import certificates


class InventoryRow(NamedTuple):
    """One issued certificate as `certificates` stores it, and when it was issued."""

    serial: str
    subject: str
    sans: str
    """The SANs as canonical JSON text."""
    not_before: str
    not_after: str
    status: str
    """As stored: `valid` or `revoked` (expiry depends on the clock)."""
    provisioner_name: str | None
    revoked_at: str | None
    issued_at: str
    """When the issuance event was recorded (ledger time text)."""


def issued_certificates(
    connection: Connection,
    *,
    now: datetime,
    provisioner: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 1000,
) -> Iterator[InventoryRow]:
    """Certificates in issuance order, streamed `batch` at a time: of `provisioner`, with
    `status` (`revoked`, `valid` or `expired` as of `now`), issued between `since` and `until`."""
    query = (
        select(
            certificates.c.serial, certificates.c.subject, certificates.c.sans,
            certificates.c.not_before, certificates.c.not_after, certificates.c.status,
            certificates.c.provisioner_name, certificates.c.revoked_at,
            events.c.recorded_at.label("issued_at"),
        )
        .join(events, events.c.position == certificates.c.issued_position)
        .order_by(certificates.c.issued_position)
    )  # fmt: skip
    if provisioner is not None:
        query = query.where(certificates.c.provisioner_name == provisioner)
    if since is not None:
        query = query.where(events.c.recorded_at >= format_time(since))
    if until is not None:
        query = query.where(events.c.recorded_at <= format_time(until))
    moment = format_time(now)
    if status == "revoked":
        query = query.where(certificates.c.status == "revoked")
    elif status == "valid":
        query = query.where(certificates.c.status == "valid", certificates.c.not_after >= moment)
    elif status == "expired":
        query = query.where(certificates.c.status == "valid", certificates.c.not_after < moment)
    result = connection.execution_options(yield_per=batch).execute(query)
    try:
        for row in result:
            yield InventoryRow._make(row)
    finally:
        result.close()  # a server-side cursor on PostgreSQL: close it before the connection
