"""`ssh_hosts`: which host principals hold an unrevoked SSH host certificate, and until when.

One row per (principal, serial). Revocation deletes the certificate's rows; expiry is left
to the query (`valid_after <= now < valid_before`), because a handler may not read the
clock. Every instance reads the same rows, so `/ssh/hosts` answers the same everywhere.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, Index, PrimaryKeyConstraint, String, Table, delete

from ledger import RecordedEvent
from projections.base import Mode, Position, Projection, metadata
from projections.events import SSHIssued, SSHRevoked

ssh_hosts = Table(
    "ssh_hosts",
    metadata,
    Column("principal", String(255), nullable=False),
    Column("serial", String(20), nullable=False),
    Column("valid_after", String(27), nullable=False),
    Column("valid_before", String(27), nullable=False),
    Column("issued_position", Position, nullable=False),
    PrimaryKeyConstraint("principal", "serial", name="pk_ssh_hosts"),
    Index("ix_ssh_hosts_serial", "serial"),
    Index("ix_ssh_hosts_valid_before", "valid_before"),
)


def _issued(connection: Connection, event: RecordedEvent) -> None:
    issued = SSHIssued.from_recorded(event)
    if issued.cert_type != "host":
        return
    # Host names are case-insensitive; one row per distinct name.
    principals = sorted({p.lower() for p in issued.principals})
    if not principals:
        return
    connection.execute(
        ssh_hosts.insert(),
        [
            {
                "principal": principal,
                "serial": issued.serial,
                "valid_after": issued.valid_after,
                "valid_before": issued.valid_before,
                "issued_position": event.position,
            }
            for principal in principals
        ],
    )


def _revoked(connection: Connection, event: RecordedEvent) -> None:
    serial = SSHRevoked.from_recorded(event).serial
    connection.execute(delete(ssh_hosts).where(ssh_hosts.c.serial == serial))


projection = Projection(
    name="ssh_hosts",
    mode=Mode.INLINE,
    tables=(ssh_hosts,),
    handlers={SSHIssued.TYPE: _issued, SSHRevoked.TYPE: _revoked},
)
