"""Tampering behind the triggers' back is found, and named by position."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ledger import EventStore, IntegrityViolation, NewEvent, verify_chain


def _fill(store: EventStore, count: int = 10) -> None:
    for n in range(count):
        store.append([NewEvent(f"s/{n}", "test.a", {"n": n})])


def _drop_triggers(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER events_reject_update"))
            connection.execute(text("DROP TRIGGER events_reject_delete"))
        else:
            connection.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))


def test_update_and_delete_are_refused_by_the_database(store: EventStore) -> None:
    _fill(store, 3)
    for statement in (
        "UPDATE events SET stream = 'forged' WHERE position = 2",
        "DELETE FROM events WHERE position = 2",
    ):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as c:
            c.execute(text(statement))
    assert verify_chain(store.engine).events == 3


def test_truncate_is_refused_on_postgresql(store: EventStore) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE statement")
    _fill(store, 2)
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as c:
        c.execute(text("TRUNCATE events"))
    assert store.count() == 2


def test_verify_names_an_edited_row(store: EventStore) -> None:
    _fill(store)
    _drop_triggers(store.engine)
    with store.engine.begin() as c:
        c.execute(text("UPDATE events SET data = :d WHERE position = 6"), {"d": '{"n":666}'})
    with pytest.raises(IntegrityViolation) as caught:
        verify_chain(store.engine)
    assert caught.value.position == 6


def test_verify_names_a_row_whose_hash_was_recomputed_to_hide_an_edit(store: EventStore) -> None:
    _fill(store)
    _drop_triggers(store.engine)
    (row,) = list(store.read(after=3, limit=1))
    from ledger import event_hash

    forged = {
        "position": 4, "event_id": str(row.event_id), "stream": row.stream,
        "version": row.version, "type": row.type, "schema": row.schema,
        "recorded_at": row.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": {}, "data": {"n": 777}, "prev_hash": row.prev_hash,
    }  # fmt: skip
    with store.engine.begin() as c:
        c.execute(
            text("UPDATE events SET data = :d, hash = :h WHERE position = 4"),
            {"d": '{"n":777}', "h": event_hash(forged)},
        )
    with pytest.raises(IntegrityViolation) as caught:
        verify_chain(store.engine)
    # Position 4 now hashes correctly, but position 5 no longer links to it.
    assert caught.value.position == 5


def test_verify_names_a_deleted_row(store: EventStore) -> None:
    _fill(store)
    _drop_triggers(store.engine)
    with store.engine.begin() as c:
        c.execute(text("DELETE FROM events WHERE position = 4"))
    with pytest.raises(IntegrityViolation) as caught:
        verify_chain(store.engine)
    assert caught.value.position == 4


def test_verify_names_a_deleted_tail(store: EventStore) -> None:
    _fill(store)
    _drop_triggers(store.engine)
    with store.engine.begin() as c:
        c.execute(text("DELETE FROM events WHERE position >= 9"))
    with pytest.raises(IntegrityViolation) as caught:
        verify_chain(store.engine)
    assert caught.value.position == 9


def _rehash(engine: Engine, position: int, data: str) -> None:
    """Edit a row and recompute its own hash, as a forger without the next rows would."""
    from ledger import event_hash

    with engine.begin() as c:
        row = c.execute(text("SELECT * FROM events WHERE position = :p"), {"p": position}).one()
        forged = {
            "position": position, "event_id": row.event_id, "stream": row.stream,
            "version": row.version, "type": row.type, "schema": row.schema,
            "recorded_at": row.recorded_at, "actor": {}, "data": {"n": 777},
            "prev_hash": row.prev_hash,
        }  # fmt: skip
        c.execute(
            text("UPDATE events SET data = :d, hash = :h WHERE position = :p"),
            {"d": data, "h": event_hash(forged), "p": position},
        )


TAMPERING = {
    "none": [],
    "edits in two ranges": [
        "UPDATE events SET data = '{\"n\":1}' WHERE position = 11",
        "UPDATE events SET data = '{\"n\":2}' WHERE position = 6",
    ],
    "the first row of a range deleted": ["DELETE FROM events WHERE position = 4"],
    "a whole range deleted": ["DELETE FROM events WHERE position BETWEEN 4 AND 6"],
    "the last row of a range rehashed": ["rehash 3"],
    "a rehash and a later edit": ["rehash 9", "UPDATE events SET data = '{}' WHERE position = 12"],
    "the tail deleted": ["DELETE FROM events WHERE position > 10"],
}


@pytest.mark.parametrize("case", TAMPERING)
def test_verifying_ranges_in_parallel_finds_what_one_walk_finds(
    store: EventStore, case: str
) -> None:
    _fill(store, 12)
    _drop_triggers(store.engine)
    for statement in TAMPERING[case]:
        if statement.startswith("rehash"):
            _rehash(store.engine, int(statement.split()[1]), '{"n":777}')
        else:
            with store.engine.begin() as c:
                c.exec_driver_sql(statement)

    def outcome(**options: int) -> object:
        try:
            return verify_chain(store.engine, **options)
        except IntegrityViolation as exc:
            return (exc.position, str(exc))

    one_walk = outcome(workers=1)
    # Ranges of three positions, two processes: every break falls at or near a range edge.
    assert outcome(workers=2, chunk=3) == one_walk
    if case == "none":
        assert one_walk == verify_chain(store.engine)
        assert isinstance(one_walk, tuple) is False
    else:
        assert isinstance(one_walk, tuple), f"{case}: verification passed"
