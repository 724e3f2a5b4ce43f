"""`policies`: the name policies in force, at authority and provisioner level."""

from __future__ import annotations

from sqlalchemy import Column, Connection, String, Table, Text, delete

from ledger import RecordedEvent, canonical_json
from projections.base import Mode, Position, Projection, metadata
from projections.events import PolicySet

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
    policy_set = PolicySet.from_recorded(event)
    connection.execute(delete(policies).where(policies.c.scope == policy_set.scope))
    if policy_set.policy is not None:
        connection.execute(
            _INSERT,
            {
                "scope": policy_set.scope,
                "provisioner_id": policy_set.provisioner_id,
                "policy": canonical_json(dict(policy_set.policy)),
                "set_position": event.position,
            },
        )


projection = Projection(
    name="policies",
    mode=Mode.INLINE,
    tables=(policies,),
    handlers={PolicySet.TYPE: _set},
)
