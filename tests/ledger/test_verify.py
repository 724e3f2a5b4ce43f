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
