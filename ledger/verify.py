"""Verification recomputes; it never trusts a stored hash, a trigger or the head row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Row

from ledger.errors import IntegrityViolation
from ledger.hashing import GENESIS_HASH, hash_parts
from ledger.schema import events, ledger_head

Progress = Callable[[int, int], None]
"""Called with (positions checked, positions to check)."""

Visit = Callable[[Row[Any]], None]
"""Called with each row once its hash and link verified; may raise IntegrityViolation."""


@dataclass(frozen=True)
class Verified:
    events: int
    head_hash: str


def verify_chain(
    engine: Engine,
    *,
    progress: Progress | None = None,
    batch: int = 5000,
    visit: Visit | None = None,
) -> Verified:
    """Walk every event in position order and recompute the chain.

    Raises IntegrityViolation naming the first bad position: a gap (a deleted row), a
    `prev_hash` that does not link, a hash that does not match its record (an edited row),
    or a head row that disagrees with the last event (a deleted tail).
    """
    with engine.connect() as connection:
        total = int(connection.execute(select(func.count()).select_from(events)).scalar_one())
        head = connection.execute(
            select(ledger_head.c.position, ledger_head.c.hash).where(ledger_head.c.id == 1)
        ).one_or_none()
    expected_position = 1
    previous = GENESIS_HASH
    after = 0
    checked = 0
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                select(events)
                .where(events.c.position > after)
                .order_by(events.c.position)
                .limit(batch)
            ).all()
        if not rows:
            break
        for row in rows:
            position = int(row.position)
            if position != expected_position:
                raise IntegrityViolation(
                    f"position {expected_position} is missing (next stored is {position}):"
                    " an event was deleted",
                    position=expected_position,
                )
            if row.prev_hash != previous:
                raise IntegrityViolation(
                    f"position {position}: prev_hash does not link to position {position - 1}",
                    position=position,
                )
            try:
                recomputed = hash_parts(
                    position=position,
                    event_id=row.event_id,
                    stream=row.stream,
                    version=int(row.version),
                    type=row.type,
                    schema=int(row.schema),
                    recorded_at=row.recorded_at,
                    actor_text=row.actor,
                    data_text=row.data,
                    prev_hash=row.prev_hash,
                )
            except (ValueError, TypeError) as exc:
                raise IntegrityViolation(
                    f"position {position}: the stored record cannot be read ({exc})",
                    position=position,
                ) from exc
            if recomputed != row.hash:
                raise IntegrityViolation(
                    f"position {position}: hash mismatch: the event was modified",
                    position=position,
                )
            if visit is not None:
                visit(row)
            previous = row.hash
            expected_position += 1
            checked += 1
        after = int(rows[-1].position)
        if progress is not None:
            progress(checked, total)
    last = expected_position - 1
    if head is not None and (int(head.position) != last or (last and head.hash != previous)):
        if int(head.position) > last:
            raise IntegrityViolation(
                f"position {last + 1} is missing: the head says {int(head.position)} events"
                f" but the table ends at {last} (the tail was deleted)",
                position=last + 1,
            )
        raise IntegrityViolation(
            f"the head row (position {int(head.position)}) disagrees with the last event {last}",
            position=last,
        )
    return Verified(checked, previous)
