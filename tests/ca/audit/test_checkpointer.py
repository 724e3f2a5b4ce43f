"""When a checkpoint is due, and that two checkpointers never record one number twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from support.audit import PASSWORD, Ledger

from ca.audit import checkpoints
from ca.audit.checkpointer import Checkpointer, due
from ca.audit.checkpoints import Checkpoint
from ca.config import CheckpointSettings
from ledger import format_time

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def recorded(position: int, age: timedelta) -> Checkpoint:
    return Checkpoint(position - 1, "0" * 64, format_time(NOW - age), "0" * 64, "", 1, position)


def test_due_after_every_n_events_or_after_the_interval_if_anything_was_appended() -> None:
    assert due(None, head=0, now=NOW, every=10, interval=HOUR) is None
    assert due(None, head=3, now=NOW, every=10, interval=HOUR, started=NOW) is None
    assert due(None, head=3, now=NOW, every=10, interval=HOUR, started=NOW - 2 * HOUR)
    assert due(None, head=10, now=NOW, every=10, interval=HOUR, started=NOW)
    last = recorded(20, timedelta(minutes=5))
    assert due(last, head=20, now=NOW, every=10, interval=HOUR) is None  # only itself
    assert due(last, head=25, now=NOW, every=10, interval=HOUR) is None
    assert due(last, head=30, now=NOW, every=10, interval=HOUR) == "10 events"
    stale = recorded(20, 2 * HOUR)
    assert due(stale, head=20, now=NOW, every=10, interval=HOUR) is None
    assert due(stale, head=21, now=NOW, every=10, interval=HOUR) == "interval"


def test_a_checkpointer_that_lost_the_race_records_nothing(ledger: Ledger) -> None:
    ledger.fill(3)

    def checkpointer() -> Checkpointer:
        return Checkpointer(
            store=ledger.store,
            home=ledger.home,
            password=PASSWORD,
            settings=CheckpointSettings(every=1),
            actor={"test": "race"},
            pkcs11=None,
        )

    first, second = checkpointer(), checkpointer()
    with ledger.engine.connect() as connection:
        seen = checkpoints.latest(connection)  # both decided on the same view
    won = first.record(seen)
    assert won is not None and won.number == 1 and won.tree_size == won.position - 1
    assert second.record(seen) is None
    ledger.fill(1, start=3)
    again = second.check()
    assert again is not None and again.number == 2 and again.tree_size == again.position - 1
