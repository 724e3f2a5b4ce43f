"""`authority` and `authority_keys`: who the CA is and which keys it signs with."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Connection, Integer, String, Table, Text, update

from ledger import RecordedEvent, canonical_json, format_time
from projections.base import Mode, Position, Projection, metadata
from projections.errors import ProjectionConflict
from projections.events import AuthorityInitialized, KeyActivated, KeyRetired

authority = Table(
    "authority",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("root_fingerprint", String(64), nullable=False),
    Column("initialized_at", String(27), nullable=False),
    Column("initialized_position", Position, nullable=False),
)

authority_keys = Table(
    "authority_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("role", String(30), nullable=False),
    Column("certificate", Text, nullable=True),
    Column("public_key", Text, nullable=False),
    Column("key_ref", Text, nullable=False),
    Column("fingerprint", String(64), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("activated_position", Position, nullable=False),
    Column("retired_position", Position, nullable=True),
)


def _initialized(connection: Connection, event: RecordedEvent) -> None:
    initialized = AuthorityInitialized.from_recorded(event)
    if connection.execute(authority.select()).first() is not None:
        raise ProjectionConflict("the authority is already initialized")
    connection.execute(
        authority.insert().values(
            id=1,
            name=initialized.name,
            root_fingerprint=initialized.root_fingerprint,
            initialized_at=format_time(event.recorded_at),
            initialized_position=event.position,
        )
    )


def _activated(connection: Connection, event: RecordedEvent) -> None:
    activated = KeyActivated.from_recorded(event)
    connection.execute(
        authority_keys.insert().values(
            key_id=activated.key_id,
            role=activated.role,
            certificate=activated.certificate,
            public_key=activated.public_key,
            key_ref=canonical_json(dict(activated.key_ref)),
            fingerprint=activated.fingerprint,
            active=True,
            activated_position=event.position,
        )
    )


def _retired(connection: Connection, event: RecordedEvent) -> None:
    retired = KeyRetired.from_recorded(event)
    result = connection.execute(
        update(authority_keys)
        .where(authority_keys.c.key_id == retired.key_id, authority_keys.c.active.is_(True))
        .values(active=False, retired_position=event.position)
    )
    if result.rowcount != 1:
        raise ProjectionConflict(f"key {retired.key_id} is not active")


projection = Projection(
    name="authority_keys",
    mode=Mode.INLINE,
    tables=(authority, authority_keys),
    handlers={
        AuthorityInitialized.TYPE: _initialized,
        KeyActivated.TYPE: _activated,
        KeyRetired.TYPE: _retired,
    },
)
