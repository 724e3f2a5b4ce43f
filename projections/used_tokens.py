"""`used_tokens`: one-time tokens already spent, shared by every instance.

The row is written in the same transaction as the event that spent the token, so a replay
is refused even when it reaches another process on the same database at the same moment.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, String, Table
from sqlalchemy.exc import IntegrityError

from ledger import RecordedEvent, is_unique_violation
from ledger import catalogue as ev
from ledger.fastsql import Prepared
from projections.base import Mode, Position, Projection, metadata
from projections.errors import ProjectionConflict

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


def _spend(connection: Connection, event: RecordedEvent) -> None:
    token_id = event.data.get("token_id")
    if not token_id:
        return
    provisioner = event.data.get("provisioner") or {}
    try:
        _INSERT.execute(
            connection,
            {
                "token_id": token_id,
                "provisioner_id": provisioner.get("id"),
                "stream": event.stream,
                "used_position": event.position,
            },
        )
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        # The primary key is the check, atomic with the append on every backend.
        raise TokenAlreadyUsed("token already used") from None


projection = Projection(
    name="used_tokens",
    mode=Mode.INLINE,
    tables=(used_tokens,),
    handlers={
        ev.X509_ISSUED: _spend,
        ev.X509_REVOKED: _spend,
        ev.SSH_ISSUED: _spend,
        ev.SSH_REVOKED: _spend,
    },
)
