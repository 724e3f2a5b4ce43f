"""HeadListener: every instance hears an append on PostgreSQL (LISTEN/NOTIFY) at once."""

from __future__ import annotations

import queue

from sqlalchemy import Engine

from ledger import EventStore, NewEvent, is_sqlite
from ledger.listener import HeadListener


def test_an_append_is_heard_with_its_position(engine: Engine, store: EventStore) -> None:
    heard: queue.SimpleQueue[int] = queue.SimpleQueue()
    listener = HeadListener(engine)
    listener.subscribe(heard.put)
    listener.start()
    try:
        if is_sqlite(engine):
            # SQLite has no notifications: callers poll the head (a cheap indexed read).
            assert not listener.enabled
            return
        assert listener.listening.wait(10)
        assert heard.get(timeout=10) == 0  # "look now", sent once on (re)connect
        (event,) = store.append([NewEvent("test/1", "test.happened", {"n": 1})])
        assert heard.get(timeout=10) == event.position
        events = store.append([NewEvent("test/2", "test.happened", {"n": i}) for i in range(3)])
        assert heard.get(timeout=10) == events[-1].position
    finally:
        listener.close()
