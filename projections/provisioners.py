"""`provisioners`: the provisioners in force, as every instance must see them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, String, Table, Text, delete, select, update
from sqlalchemy.exc import IntegrityError

from ledger import RecordedEvent, canonical_json, is_unique_violation
from projections.base import Mode, Position, Projection, metadata
from projections.errors import ProjectionConflict
from projections.events import ProvisionerAdded, ProvisionerRemoved, ProvisionerUpdated

provisioners = Table(
    "provisioners",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("type", String(20), nullable=False),
    Column("kid", String(100), nullable=True, unique=True),
    Column("key", Text, nullable=False),
    Column("encrypted_key", Text, nullable=True),
    Column("claims", Text, nullable=False),
    Column("options", Text, nullable=False),
    Column("added_position", Position, nullable=False),
    Column("updated_position", Position, nullable=False),
)

# Fields `provisioner.updated` may change, and how each is stored.
_JSON_FIELDS = {"key", "claims", "options"}
_TEXT_FIELDS = {"name", "encrypted_key"}


def _added(connection: Connection, event: RecordedEvent) -> None:
    added = ProvisionerAdded.from_recorded(event)
    taken = connection.execute(
        select(provisioners.c.id).where(provisioners.c.name == added.name)
    ).first()
    if taken is not None:
        raise ProjectionConflict(f"a provisioner named {added.name!r} already exists")
    try:
        _insert(connection, added, event.position)
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        kid = added.key.get("kid")
        raise ProjectionConflict(f"a provisioner with key id {kid!r} already exists") from None


def _insert(connection: Connection, added: ProvisionerAdded, position: int) -> None:
    connection.execute(
        provisioners.insert().values(
            id=added.id,
            name=added.name,
            type=added.type,
            kid=added.key.get("kid"),
            key=canonical_json(dict(added.key)),
            encrypted_key=added.encrypted_key,
            claims=canonical_json(dict(added.claims)),
            options=canonical_json(dict(added.options)),
            added_position=position,
            updated_position=position,
        )
    )


def _updated(connection: Connection, event: RecordedEvent) -> None:
    updated = ProvisionerUpdated.from_recorded(event)
    values: dict[str, Any] = {"updated_position": event.position}
    for field, value in updated.changes.items():
        if field in _JSON_FIELDS:
            values[field] = canonical_json(value)
            if field == "key":
                values["kid"] = value.get("kid")
        elif field in _TEXT_FIELDS:
            values[field] = value
        else:
            raise ProjectionConflict(f"provisioner field {field!r} cannot be updated")
    try:
        result = connection.execute(
            update(provisioners).where(provisioners.c.id == updated.id).values(**values)
        )
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise ProjectionConflict(
            f"a provisioner named {values.get('name')!r} already exists"
        ) from None
    if result.rowcount != 1:
        raise ProjectionConflict(f"provisioner {updated.id} does not exist")


def _removed(connection: Connection, event: RecordedEvent) -> None:
    removed = ProvisionerRemoved.from_recorded(event)
    result = connection.execute(delete(provisioners).where(provisioners.c.id == removed.id))
    if result.rowcount != 1:
        raise ProjectionConflict(f"provisioner {removed.id} does not exist")


projection = Projection(
    name="provisioners",
    mode=Mode.INLINE,
    tables=(provisioners,),
    handlers={
        ProvisionerAdded.TYPE: _added,
        ProvisionerUpdated.TYPE: _updated,
        ProvisionerRemoved.TYPE: _removed,
    },
)
