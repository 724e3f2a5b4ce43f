"""`ssh_certificates`: one row per issued SSH certificate, with its revocation; and
`ssh_revoked_unissued`: one row per SSH serial revoked without ever being issued here.

Like `certificates` for X.509 — with the same implementation of what the two share
(`projections.certificate_rows`) — this inline projection is where the SSH invariants are
checked atomically with the append, on every instance: a serial is issued once, revoked at
most once (as an issued certificate, or in `ssh_revoked_unissued` if it never was), and a
revoked certificate never renews or rekeys, even when the revocation committed through
another instance a moment before.
Expiry is not stored: it depends on the clock, which handlers may not read.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, Index, String, Table, Text

from ledger import RecordedEvent, canonical_json
from projections.base import Mode, Projection, metadata
from projections.certificate_rows import CertificateRows, lifecycle_columns, unissued_columns
from projections.errors import ProjectionConflict
from projections.events import SSHIssued, SSHRevoked, SSHRevokedUnissued

ssh_certificates = Table(
    "ssh_certificates",
    metadata,
    Column("serial", String(20), primary_key=True),
    Column("cert_type", String(10), nullable=False),
    Column("key_id", Text, nullable=False),
    Column("principals", Text, nullable=False),
    Column("valid_after", String(27), nullable=False),
    Column("valid_before", String(27), nullable=False),
    *lifecycle_columns(20),
    Index("ix_ssh_certificates_valid_before", "valid_before"),
)

ssh_revoked_unissued = Table(
    "ssh_revoked_unissued",
    metadata,
    *unissued_columns(20),
    Index("ix_ssh_revoked_unissued_position", "revoked_position"),
)
"""SSH serials revoked by `ssh.revoked_unissued`: the KRL lists them for any CA key."""


class SSHCertificateRevoked(ProjectionConflict):
    """A renewal or rekey names an SSH certificate that is revoked."""


class UnknownSSHCertificate(ProjectionConflict):
    """The event names an SSH serial that was never issued."""


class SSHAlreadyRevoked(ProjectionConflict):
    """A revocation names an SSH certificate that is revoked already."""


class SSHCertificateIssued(ProjectionConflict):
    """A revocation of a never-issued SSH serial names one this ledger issued."""


rows = CertificateRows(
    ssh_certificates,
    ssh_revoked_unissued,
    kind="SSH ",
    source_revoked=SSHCertificateRevoked,
    unknown=UnknownSSHCertificate,
    already_revoked=SSHAlreadyRevoked,
    issued=SSHCertificateIssued,
)


def _issued(connection: Connection, event: RecordedEvent) -> None:
    issued = SSHIssued.from_recorded(event)
    rows.check_source(connection, issued)
    row = {
        "serial": issued.serial,
        "cert_type": issued.cert_type,
        "key_id": issued.key_id,
        "principals": canonical_json(list(issued.principals)),
        "valid_after": issued.valid_after,
        "valid_before": issued.valid_before,
        **rows.columns(issued, event.position),
    }
    rows.insert(connection, [row])


def _revoked(connection: Connection, event: RecordedEvent) -> None:
    rows.revoke(connection, SSHRevoked.from_recorded(event), event.position)


def _revoked_unissued(connection: Connection, event: RecordedEvent) -> None:
    rows.revoke_unissued(connection, SSHRevokedUnissued.from_recorded(event), event.position)


projection = Projection(
    name="ssh_certificates",
    mode=Mode.INLINE,
    tables=(ssh_certificates, ssh_revoked_unissued),
    handlers={
        SSHIssued.TYPE: _issued,
        SSHRevoked.TYPE: _revoked,
        SSHRevokedUnissued.TYPE: _revoked_unissued,
    },
)
