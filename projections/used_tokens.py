"""`used_tokens`: one-time tokens already spent, shared by every instance.

The row is written in the same transaction as the event that spent the token, so a replay
is refused even when it reaches another process on the same database at the same moment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import Column, Connection, String, Table
from sqlalchemy.exc import IntegrityError

from ledger import RecordedEvent, is_unique_violation
from ledger.fastsql import Prepared
from projections.base import Mode, Position, Projection, metadata
from projections.errors import ProjectionConflict
from projections.events import (
    ProvisionerRef,
    SSHIssued,
    SSHRevoked,
    SSHRevokedUnissued,
    TokenSpent,
    X509Issued,
    X509Revoked,
    X509RevokedUnissued,
)

used_tokens = Table(
    "used_tokens",
    metadata,
    Column("token_id", String(200), primary_key=True),
    Column("provisioner_id", String(64), nullable=True),
    Column("stream", String(200), nullable=False),
    Column("used_position", Position, nullable=False),
)


_INSERT = Prepared(used_tokens.insert())


class TokenAlreadyUsed(ProjectionConflict):
    """The token's id is already in `used_tokens`."""


class SpendsToken(Protocol):
    """An event that may spend a one-time token."""

    @property
    def token_id(self) -> str | None: ...
    @property
    def provisioner(self) -> ProvisionerRef | None: ...


def _row(event: RecordedEvent) -> dict[str, Any] | None:
    spending = _SPENDING[event.type](event)
    if not spending.token_id:
        return None
    provisioner = spending.provisioner
    return {
        "token_id": spending.token_id,
        "provisioner_id": provisioner.id if provisioner else None,
        "stream": event.stream,
        "used_position": event.position,
    }


def _insert(connection: Connection, rows: list[dict[str, Any]]) -> None:
    try:
        _INSERT.executemany(connection, rows)
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        # The primary key is the check, atomic with the append on every backend.
        raise TokenAlreadyUsed("token already used") from None


def _spend(connection: Connection, event: RecordedEvent) -> None:
    row = _row(event)
    if row is not None:
        _insert(connection, [row])


def _apply_batch(connection: Connection, events: Sequence[RecordedEvent]) -> None:
    rows = [row for event in events if event.type in _SPENDING and (row := _row(event)) is not None]
    if rows:
        _insert(connection, rows)


_SPENDING: dict[str, Callable[[RecordedEvent], SpendsToken]] = {
    X509Issued.TYPE: X509Issued.from_recorded,
    X509Revoked.TYPE: X509Revoked.from_recorded,
    X509RevokedUnissued.TYPE: X509RevokedUnissued.from_recorded,
    SSHIssued.TYPE: SSHIssued.from_recorded,
    SSHRevoked.TYPE: SSHRevoked.from_recorded,
    SSHRevokedUnissued.TYPE: SSHRevokedUnissued.from_recorded,
    TokenSpent.TYPE: TokenSpent.from_recorded,
}


projection = Projection(
    name="used_tokens",
    mode=Mode.INLINE,
    tables=(used_tokens,),
    handlers=dict.fromkeys(_SPENDING, _spend),
    batch=_apply_batch,
)
