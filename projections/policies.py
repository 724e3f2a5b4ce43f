"""`policies`: the name policies in force, at authority and provisioner level."""

from __future__ import annotations

from sqlalchemy import Column, Connection, String, Table, Text, delete

from ledger import RecordedEvent, canonical_json
from ledger import catalogue as ev
from projections.base import Mode, Position, Projection, metadata

policies = Table(
    "policies",
    metadata,
    Column("scope", String(100), primary_key=True),
    Column("provisioner_id", String(64), nullable=True),
    Column("policy", Text, nullable=False),
    Column("set_position", Position, nullable=False),
)

_INSERT = policies.insert()


def _set(connection: Connection, event: RecordedEvent) -> None:
    data = event.data
    connection.execute(delete(policies).where(policies.c.scope == data["scope"]))
    if data.get("policy") is not None:
        connection.execute(
            _INSERT,
            {
                "scope": data["scope"],
                "provisioner_id": data.get("provisioner_id"),
                "policy": canonical_json(data["policy"]),
                "set_position": event.position,
            },
        )


projection = Projection(
    name="policies",
    mode=Mode.INLINE,
    tables=(policies,),
    handlers={ev.POLICY_SET: _set},
)
