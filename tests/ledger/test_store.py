"""The store's contract, run against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection

from ledger import (
    ChangedSince,
    ConcurrencyConflict,
    EventStore,
    NewEvent,
    RecordedEvent,
    Unchanged,
    Upcasters,
    verify_chain,
)


def test_append_assigns_dense_positions_versions_and_a_hash_chain(store: EventStore) -> None:
    first = store.append([NewEvent("s/1", "test.a", {"n": 1}), NewEvent("s/2", "test.a", {"n": 2})])
    second = store.append([NewEvent("s/1", "test.b", {"n": 3})], actor={"admin": "alice"})
    assert [e.position for e in first + second] == [1, 2, 3]
    assert [(e.stream, e.version) for e in first + second] == [("s/1", 1), ("s/2", 1), ("s/1", 2)]
    assert first[1].prev_hash == first[0].hash and second[0].prev_hash == first[1].hash
    assert store.head().position == 3 and store.head().hash == second[0].hash
    assert verify_chain(store.engine).events == 3
    assert [e.actor for e in store.read()] == [{}, {}, {"admin": "alice"}]


def test_read_after_a_position_and_by_stream_type_and_time(store: EventStore) -> None:
    for n in range(10):
        store.append([NewEvent(f"s/{n % 3}", "test.even" if n % 2 == 0 else "test.odd", {"n": n})])
    assert [e.data["n"] for e in store.read(after=7)] == [7, 8, 9]
    assert [e.data["n"] for e in store.read(after=0, limit=4, batch=3)] == [0, 1, 2, 3]
    assert [e.data["n"] for e in store.read_stream("s/1")] == [1, 4, 7]
    assert [e.data["n"] for e in store.read(types=["test.odd"])] == [1, 3, 5, 7, 9]
    later = datetime.now(UTC) + timedelta(hours=1)
    assert list(store.read(since=later)) == []


def test_expected_version_mismatch_raises_one_conflict_and_writes_nothing(
    store: EventStore,
) -> None:
    store.append([NewEvent("acct/1", "test.opened", {})], expected={"acct/1": 0})
    with pytest.raises(ConcurrencyConflict) as caught:
        store.append(
            [NewEvent("acct/1", "test.credited", {}), NewEvent("acct/2", "test.opened", {})],
            expected={"acct/1": 0},
        )
    assert caught.value.stream == "acct/1"
    assert store.head().position == 1
    assert store.count() == 1


def test_recorded_at_never_goes_backwards_even_when_the_clock_does(store: EventStore) -> None:
    times = iter([datetime(2030, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC)])
    store.clock = lambda: next(times)
    store.append([NewEvent("s", "test.a", {})])
    store.append([NewEvent("s", "test.a", {})])
    stamps = [e.recorded_at for e in store.read()]
    assert stamps == [datetime(2030, 1, 1, tzinfo=UTC)] * 2


def test_a_failing_inline_applier_aborts_the_append(store: EventStore) -> None:
    store.append([NewEvent("s", "test.ok", {})])

    def refuse(connection: Connection, events: object) -> None:
        raise RuntimeError("projection refused")

    store.inline = refuse
    with pytest.raises(RuntimeError):
        store.append([NewEvent("s", "test.bad", {})])
    assert store.count() == 1
    assert store.head().position == 1
    assert verify_chain(store.engine).events == 1


def test_a_failing_append_in_a_shared_transaction_does_not_fail_its_neighbours(
    store: EventStore,
) -> None:
    store.append([NewEvent("taken", "test.a", {})])
    with store.transaction() as tx:
        ok1 = tx.append([NewEvent("x", "test.a", {"n": 1})])
        with pytest.raises(ConcurrencyConflict):
            tx.append([NewEvent("taken", "test.a", {})], expected={"taken": 0})
        ok2 = tx.append([NewEvent("y", "test.a", {"n": 2})])
    assert [e.position for e in ok1 + ok2] == [2, 3]
    assert [e.stream for e in store.read()] == ["taken", "x", "y"]
    assert verify_chain(store.engine).events == 3


def test_an_append_that_read_state_before_a_change_is_refused_and_writes_nothing(
    store: EventStore,
) -> None:
    config = frozenset({"test.config"})
    store.append([NewEvent("other", "test.a", {})])
    (seen,) = store.append([NewEvent("config", "test.config", {"v": 1})])
    # Unrelated events after the reading do not matter...
    store.append([NewEvent("noise", "test.a", {})])
    store.append([NewEvent("x", "test.a", {})], unchanged=Unchanged(config, seen.position))
    # ...a newer event of a watched type does, and says where it is.
    (newer,) = store.append([NewEvent("config", "test.config", {"v": 2})])
    with pytest.raises(ChangedSince) as refused:
        store.append([NewEvent("y", "test.a", {})], unchanged=Unchanged(config, seen.position))
    assert refused.value.position == newer.position
    assert [e.stream for e in store.read()] == ["other", "config", "noise", "x", "config"]
    # Nothing of that type yet: position 0 is the reading of an empty set.
    store.append([NewEvent("z", "test.a", {})], unchanged=Unchanged(frozenset({"none"}), 0))


def test_a_change_earlier_in_the_same_transaction_refuses_a_later_unit(store: EventStore) -> None:
    config = frozenset({"test.config"})
    with store.transaction() as tx:
        before = tx.latest_position(config)
        tx.append([NewEvent("a", "test.a", {})], unchanged=Unchanged(config, before))
        tx.append([NewEvent("config", "test.config", {})])
        with pytest.raises(ChangedSince):
            tx.append([NewEvent("b", "test.a", {})], unchanged=Unchanged(config, before))
        # A unit that rolled back leaves the reading as it was: its own change is gone.
        with pytest.raises(ConcurrencyConflict):
            tx.append(
                [NewEvent("config", "test.config", {}), NewEvent("a", "test.a", {})],
                expected={"a": 0},
            )
        assert tx.latest_position(config) == 2
        tx.append([NewEvent("c", "test.a", {})], unchanged=Unchanged(config, 2))
    assert [e.stream for e in store.read()] == ["a", "config", "c"]
    assert verify_chain(store.engine).events == 3


def test_floats_and_non_json_payloads_are_refused_before_anything_is_written(
    store: EventStore,
) -> None:
    with pytest.raises(TypeError, match="floats"):
        store.append([NewEvent("s", "test.a", {"ratio": 0.5})])
    with pytest.raises(TypeError):
        store.append([NewEvent("s", "test.a", {"raw": b"bytes"})])
    assert store.count() == 0


def test_old_payloads_are_upcast_on_read_and_the_stored_row_still_verifies(
    store: EventStore,
) -> None:
    store.append([NewEvent("s", "test.renamed", {"cn": "a.example"}, schema=1)])
    upcasters = Upcasters()

    @upcasters.register("test.renamed", 1)
    def _v1_to_v2(data: dict[str, object]) -> dict[str, object]:
        return {"subject": data["cn"]}

    reader = EventStore(store.engine, upcasters=upcasters)
    (event,) = list(reader.read())
    assert isinstance(event, RecordedEvent)
    assert (event.schema, dict(event.data)) == (2, {"subject": "a.example"})
    assert verify_chain(store.engine).events == 1
