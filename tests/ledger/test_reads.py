"""Reads of the ledger's tables for code outside the ledger, against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, select
from sqlalchemy.pool import StaticPool

from ledger import EventStore, NewEvent, format_time, reads
from ledger.rows import hashes_between, rows_between
from ledger.schema import events, ledger_head
from ledger.transfer import create_partial_copy

START = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)


def ticking(store: EventStore) -> list[datetime]:
    """Give `store` a clock that moves a minute per append; returns the times it handed out."""
    handed: list[datetime] = []

    def clock() -> datetime:
        handed.append(START + timedelta(minutes=len(handed)))
        return handed[-1]

    store.clock = clock
    return handed


def test_an_empty_ledger_has_head_zero_no_first_time_and_no_positions(store: EventStore) -> None:
    with store.engine.connect() as connection:
        assert reads.head_position(connection) == 0
        assert reads.first_recorded_at(connection) is None
        assert reads.last_position_at(connection, START) == 0
        assert reads.latest_position(connection, ["test.a"]) == 0
        assert reads.event_at(connection, 1) is None
        assert reads.stream_rows(connection, "s") == []
        assert reads.last_of_stream(connection, "s") is None


def test_head_position_follows_appends_and_sees_the_callers_transaction(
    store: EventStore,
) -> None:
    store.append([NewEvent("s", "test.a", {}), NewEvent("s", "test.b", {})])
    with store.engine.connect() as connection:
        assert reads.head_position(connection) == 2
    with store.transaction() as tx:
        tx.append([NewEvent("s", "test.c", {})])
        assert reads.head_position(tx.connection) == 2  # the head moves at commit
    with store.engine.connect() as connection:
        assert reads.head_position(connection) == 3


def test_event_at_returns_the_row_as_stored(store: EventStore) -> None:
    (recorded,) = store.append([NewEvent("s/1", "test.a", {"b": 2, "a": 1})], actor={"who": "x"})
    with store.engine.connect() as connection:
        row = reads.event_at(connection, 1)
        assert reads.event_at(connection, 2) is None
    assert row is not None
    assert (row.position, row.stream, row.version, row.type) == (1, "s/1", 1, "test.a")
    assert row.data == '{"a":1,"b":2}' and row.actor == '{"who":"x"}'
    assert row.recorded_at == format_time(recorded.recorded_at)
    assert (row.prev_hash, row.hash) == (recorded.prev_hash, recorded.hash)


def test_stream_reads_in_position_order_up_to_a_position(store: EventStore) -> None:
    for n in range(6):
        store.append([NewEvent(f"s/{n % 2}", "test.opened" if n < 2 else "test.moved", {"n": n})])
    with store.engine.connect() as connection:
        assert [r.position for r in reads.stream_rows(connection, "s/0")] == [1, 3, 5]
        assert [r.position for r in reads.stream_rows(connection, "s/0", until=4)] == [1, 3]
        version_two = reads.stream_row(connection, "s/1", 2)
        assert version_two is not None and version_two.position == 4
        assert reads.stream_row(connection, "s/1", 9) is None
        newest = reads.last_of_stream(connection, "s/1")
        assert newest is not None and newest.position == 6
        after_three = reads.first_of_stream_after(connection, "s/1", 3)
        assert after_three is not None and after_three.position == 4
        assert reads.first_of_stream_after(connection, "s/1", 6) is None
        assert reads.position_of(connection, "s/1", "test.moved") == 4
        assert reads.position_of(connection, "s/1", "test.closed") is None


def test_latest_position_of_any_of_several_types(store: EventStore) -> None:
    store.append([NewEvent("s", t, {}) for t in ("test.a", "test.b", "test.a", "test.c")])
    with store.engine.connect() as connection:
        assert reads.latest_position(connection, ["test.a"]) == 3
        assert reads.latest_position(connection, ("test.a", "test.b", "test.c")) == 4
        assert reads.latest_position(connection, frozenset({"test.b", "test.z"})) == 2
        assert reads.latest_position(connection, ["test.z"]) == 0


def test_positions_by_recorded_time_and_the_first_time(store: EventStore) -> None:
    times = ticking(store)
    for _ in range(3):
        store.append([NewEvent("s", "test.a", {})])
    with store.engine.connect() as connection:
        assert reads.first_recorded_at(connection) == times[0]
        assert reads.last_position_at(connection, times[0] - timedelta(seconds=1)) == 0
        assert reads.last_position_at(connection, times[1]) == 2
        assert reads.last_position_at(connection, times[1] + timedelta(seconds=30)) == 2
        assert reads.last_position_at(connection, times[2] + timedelta(days=1)) == 3


def test_hashes_between_are_the_stored_chain_hashes_of_a_range(store: EventStore) -> None:
    store.append([NewEvent("s", "test.a", {"n": n}) for n in range(7)])
    with store.engine.connect() as connection:
        stored = [(r.position, r.hash) for r in rows_between(connection, 0, 7, 100)]
        assert hashes_between(connection, 0, 7, 100) == stored
        assert hashes_between(connection, 2, 5, 100) == stored[2:5]
        assert hashes_between(connection, 2, 7, 2) == stored[2:4]
        assert hashes_between(connection, 7, 9, 100) == []


def test_a_partial_copy_holds_the_head_given_and_only_the_rows_given(store: EventStore) -> None:
    store.append([NewEvent("keep", "test.a", {}), NewEvent("other", "test.a", {})])
    store.append([NewEvent("keep", "test.b", {"n": 1})])
    scratch = create_engine("sqlite://", poolclass=StaticPool)
    try:
        with store.engine.connect() as source:
            kept = reads.stream_rows(source, "keep", until=2)
        with scratch.begin() as target:
            create_partial_copy(target, head=2, rows=kept)
        with scratch.connect() as connection:
            assert reads.head_position(connection) == 2
            assert reads.stream_rows(connection, "keep") == kept
            assert connection.execute(select(events.c.position)).scalars().all() == [1]
            assert connection.execute(select(ledger_head.c.hash)).scalar_one() == ""
    finally:
        scratch.dispose()
