"""What the X.509 and SSH certificate projections share: one row per issued certificate,
with who issued it, what it renews, and its revocation; and one row per serial revoked
without ever being issued here (`*.revoked_unissued`: pre-revocation, or a certificate
from before a migration).

`certificates` and `ssh_certificates` differ only in the columns that describe the
certificate itself (subject and SANs, or principals and key id). The rest — the columns,
the renewal check, the single-issue and single-revocation rules and their refusals — is
this one implementation, parametrised by the tables and the refusals each raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ledger import is_unique_violation
from ledger.fastsql import Prepared
from projections.base import Position
from projections.errors import ProjectionConflict
from projections.events import ProvisionerRef


def lifecycle_columns(serial_length: int) -> list[Column[Any]]:
    """The columns both tables share, after their own, in this order."""
    return [
        Column("status", String(10), nullable=False),
        Column("provisioner_id", String(64), nullable=True),
        Column("provisioner_name", String(200), nullable=True),
        Column("issuer_key_id", String(64), nullable=False),
        Column("token_id", String(200), nullable=True),
        Column("renewed_from", String(serial_length), nullable=True),
        Column("rekeyed_from", String(serial_length), nullable=True),
        Column("certificate", Text, nullable=False),
        Column("issued_position", Position, nullable=False),
        Column("revoked_at", String(27), nullable=True),
        Column("revocation_reason_code", Integer, nullable=True),
        Column("revocation_reason", Text, nullable=True),
        Column("revoked_position", Position, nullable=True),
    ]


def unissued_columns(serial_length: int) -> list[Column[Any]]:
    """The columns of a table of serials revoked without being issued here."""
    return [
        Column("serial", String(serial_length), primary_key=True),
        Column("revoked_at", String(27), nullable=False),
        Column("revocation_reason_code", Integer, nullable=False),
        Column("revocation_reason", Text, nullable=False),
        Column("provisioner_id", String(64), nullable=False),
        Column("provisioner_name", String(200), nullable=False),
        Column("token_id", String(200), nullable=False),
        Column("revoked_position", Position, nullable=False),
    ]


class Issuance(Protocol):
    """What `x509.issued` and `ssh.issued` have in common."""

    @property
    def serial(self) -> str: ...
    @property
    def certificate(self) -> str: ...
    @property
    def provisioner(self) -> ProvisionerRef | None: ...
    @property
    def issuer_key_id(self) -> str: ...
    @property
    def token_id(self) -> str | None: ...
    @property
    def renewed_from(self) -> str | None: ...
    @property
    def rekeyed_from(self) -> str | None: ...


class Revocation(Protocol):
    """What `x509.revoked` and `ssh.revoked` have in common."""

    @property
    def serial(self) -> str: ...
    @property
    def reason_code(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def revoked_at(self) -> str: ...


class UnissuedRevocation(Revocation, Protocol):
    """What `x509.revoked_unissued` and `ssh.revoked_unissued` have in common."""

    @property
    def provisioner(self) -> ProvisionerRef: ...
    @property
    def token_id(self) -> str: ...


class CertificateRows:
    """Issue, renew and revoke rows of `table`, and record serials revoked without being
    issued in `unissued`, refusing what would break the CA.

    `kind` prefixes the refusals' wording ("" for X.509, "SSH " for SSH); the refusal
    classes are the table's own, so callers tell an X.509 refusal from an SSH one.
    """

    def __init__(
        self,
        table: Table,
        unissued: Table,
        *,
        kind: str,
        source_revoked: type[ProjectionConflict],
        unknown: type[ProjectionConflict],
        already_revoked: type[ProjectionConflict],
        issued: type[ProjectionConflict],
    ) -> None:
        self.table = table
        self.unissued = unissued
        self.kind = kind
        self.source_revoked = source_revoked
        self.unknown = unknown
        self.already_revoked = already_revoked
        self.issued = issued
        # Built once: a construct per event costs more CPU than executing it (issuance,
        # replay); the insert runs on the driver's cursor (ledger.fastsql).
        self._insert = Prepared(table.insert())
        self._status = select(table.c.status).where(table.c.serial == bindparam("source"))
        self._revoked_at = select(table.c.revoked_at).where(table.c.serial == bindparam("source"))
        self._revoke = (
            update(table)
            .where(table.c.serial == bindparam("target"), table.c.status == "valid")
            .values(
                status="revoked",
                revoked_at=bindparam("new_revoked_at"),
                revocation_reason_code=bindparam("new_reason_code"),
                revocation_reason=bindparam("new_reason"),
                revoked_position=bindparam("new_position"),
            )
        )

    @staticmethod
    def columns(issued: Issuance, position: int) -> dict[str, Any]:
        """The shared columns of a newly issued certificate's row."""
        provisioner = issued.provisioner
        return {
            "status": "valid",
            "provisioner_id": provisioner.id if provisioner else None,
            "provisioner_name": provisioner.name if provisioner else None,
            "issuer_key_id": issued.issuer_key_id,
            "token_id": issued.token_id,
            "renewed_from": issued.renewed_from,
            "rekeyed_from": issued.rekeyed_from,
            "certificate": issued.certificate,
            "issued_position": position,
            "revoked_at": None,
            "revocation_reason_code": None,
            "revocation_reason": None,
            "revoked_position": None,
        }

    def check_source(self, connection: Connection, issued: Issuance) -> None:
        """A renewal or rekey must name a certificate that was issued and is not revoked."""
        links = {"renewed_from": issued.renewed_from, "rekeyed_from": issued.rekeyed_from}
        for field, source in links.items():
            if not source:
                continue
            status = connection.execute(self._status, {"source": source}).scalar_one_or_none()
            if status is None:
                raise self.unknown(
                    f"{field} names {self.kind}certificate {source}, which was never issued"
                )
            if status == "revoked":
                raise self.source_revoked(
                    f"{self.kind}certificate {source} has been revoked: it cannot renew"
                )

    def insert(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert issued rows; a serial issued before refuses them all."""
        try:
            self._insert.executemany(connection, rows)
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            # The primary key is the check: no read before the write on the hot path.
            serials = [row["serial"] for row in rows]
            which = serials[0] if len(serials) == 1 else f"among {', '.join(serials[:5])}…"
            raise ProjectionConflict(f"{self.kind}serial {which} was already issued") from None

    def revoke(self, connection: Connection, revoked: Revocation, position: int) -> None:
        """Revoke a valid certificate; an unknown or revoked one refuses the event."""
        serial = revoked.serial
        result = connection.execute(
            self._revoke,
            {
                "target": serial,
                "new_revoked_at": revoked.revoked_at,
                "new_reason_code": revoked.reason_code,
                "new_reason": revoked.reason,
                "new_position": position,
            },
        )
        if result.rowcount == 1:
            return
        # Only the refusal pays for a second read, to say which of the two it is.
        revoked_at = connection.execute(self._revoked_at, {"source": serial}).one_or_none()
        prefix = f"{self.kind}certificate {serial} is unknown or already revoked"
        if revoked_at is None:
            raise self.unknown(f"{prefix}: it was never issued")
        raise self.already_revoked(f"{prefix}: it was revoked at {revoked_at[0]}")

    def revoke_unissued(
        self, connection: Connection, revoked: UnissuedRevocation, position: int
    ) -> None:
        """Record a serial revoked without being issued here; refused if this ledger issued
        it (that takes `revoke`) or revoked it before.

        The use case appends on the serial's fresh stream, so the ledger already refuses
        both; these checks keep a replay, or a hand-made append, to the same rules.
        """
        serial = revoked.serial
        issued = connection.execute(self._status, {"source": serial}).scalar_one_or_none()
        if issued is not None:
            raise self.issued(f"{self.kind}serial {serial} was issued here: revoke it as such")
        provisioner = revoked.provisioner
        try:
            connection.execute(
                self.unissued.insert().values(
                    serial=serial,
                    revoked_at=revoked.revoked_at,
                    revocation_reason_code=revoked.reason_code,
                    revocation_reason=revoked.reason,
                    provisioner_id=provisioner.id,
                    provisioner_name=provisioner.name,
                    token_id=revoked.token_id,
                    revoked_position=position,
                )
            )
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            raise self.already_revoked(
                f"{self.kind}serial {serial} is already revoked (it was never issued here)"
            ) from None
