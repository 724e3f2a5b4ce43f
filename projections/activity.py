"""`activity` (a follower): events per day and type — the CA's workload at a glance.

It runs behind the ledger, not inside appends, so a slow or failing follower never
delays issuance; it resumes from its stored position after a restart.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Connection, PrimaryKeyConstraint, String, Table, update

from ledger import RecordedEvent
from projections.base import Mode, Projection, metadata

activity = Table(
    "activity",
    metadata,
    Column("day", String(10), nullable=False),
    Column("type", String(100), nullable=False),
    Column("events", BigInteger, nullable=False),
    PrimaryKeyConstraint("day", "type", name="pk_activity"),
)


def _count(connection: Connection, event: RecordedEvent) -> None:
    day = event.recorded_at.date().isoformat()
    result = connection.execute(
        update(activity)
        .where(activity.c.day == day, activity.c.type == event.type)
        .values(events=activity.c.events + 1)
    )
    if result.rowcount == 0:
        connection.execute(activity.insert().values(day=day, type=event.type, events=1))


projection = Projection(
    name="activity",
    mode=Mode.FOLLOWER,
    tables=(activity,),
    every_event=_count,
)
