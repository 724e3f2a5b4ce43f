"""`provisioners`: the provisioners in force, as every instance must see them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, String, Table, Text, delete, select, update
from sqlalchemy.exc import IntegrityError

from ledger import RecordedEvent, canonical_json, is_unique_violation
from ledger import catalogue as ev
from projections.base import Mode, Position, Projection, metadata
from projections.errors import ProjectionConflict

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
    data = event.data
    taken = connection.execute(
        select(provisioners.c.id).where(provisioners.c.name == data["name"])
    ).first()
    if taken is not None:
        raise ProjectionConflict(f"a provisioner named {data['name']!r} already exists")
    key = data.get("key") or {}
    try:
        _insert(connection, event, key)
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        kid = key.get("kid")
        raise ProjectionConflict(f"a provisioner with key id {kid!r} already exists") from None


def _insert(connection: Connection, event: RecordedEvent, key: dict[str, Any]) -> None:
    data = event.data
    connection.execute(
        provisioners.insert().values(
            id=data["id"],
            name=data["name"],
            type=data["type"],
            kid=key.get("kid"),
            key=canonical_json(key),
            encrypted_key=data.get("encrypted_key"),
            claims=canonical_json(data.get("claims", {})),
            options=canonical_json(data.get("options", {})),
            added_position=event.position,
            updated_position=event.position,
        )
    )


def _updated(connection: Connection, event: RecordedEvent) -> None:
    values: dict[str, Any] = {"updated_position": event.position}
    for field, value in event.data["changes"].items():
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
            update(provisioners).where(provisioners.c.id == event.data["id"]).values(**values)
        )
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise ProjectionConflict(
            f"a provisioner named {values.get('name')!r} already exists"
        ) from None
    if result.rowcount != 1:
        raise ProjectionConflict(f"provisioner {event.data['id']} does not exist")


def _removed(connection: Connection, event: RecordedEvent) -> None:
    result = connection.execute(delete(provisioners).where(provisioners.c.id == event.data["id"]))
    if result.rowcount != 1:
        raise ProjectionConflict(f"provisioner {event.data['id']} does not exist")


projection = Projection(
    name="provisioners",
    mode=Mode.INLINE,
    tables=(provisioners,),
    handlers={
        ev.PROVISIONER_ADDED: _added,
        ev.PROVISIONER_UPDATED: _updated,
        ev.PROVISIONER_REMOVED: _removed,
    },
)
