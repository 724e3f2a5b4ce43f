"""Group commit: many callers, one transaction; each caller's fate is its own."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, text

from ledger import ConcurrencyConflict, EventStore, GroupCommitter, NewEvent, verify_chain


def _wait_for(condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_callers_queued_behind_a_commit_share_the_next_one(store: EventStore) -> None:
    committer = GroupCommitter(store)
    blocker = store.transaction()  # holds the ledger lock, as a slow commit would
    tx = blocker.__enter__()
    released = False
    try:
        with ThreadPoolExecutor(20) as pool:
            first = pool.submit(committer.append, [NewEvent("s/0", "test.a", {"n": 0})])
            # The committer takes the first caller alone and waits for the lock with it...
            _wait_for(lambda: committer._queue.qsize() == 0)
            rest = [
                pool.submit(committer.append, [NewEvent(f"s/{n}", "test.a", {"n": n})])
                for n in range(1, 20)
            ]
            # ...while the other 19 queue up behind it.
            _wait_for(lambda: committer._queue.qsize() == 19)
            tx.finish()
            blocker.__exit__(None, None, None)
            released = True
            results = [f.result(timeout=60) for f in [first, *rest]]
    finally:
        if not released:
            blocker.__exit__(None, None, None)
        committer.close()
    assert sorted(r[0].position for r in results) == list(range(1, 21))
    assert committer.units == 20
    assert committer.batches == 2
    assert committer.retried == 0  # nothing refused: each batch went in at once
    assert verify_chain(store.engine).events == 20


def test_a_refusal_in_a_queued_batch_fails_alone_after_the_batch_is_retried(
    store: EventStore,
) -> None:
    store.append([NewEvent("taken", "test.a", {})])
    committer = GroupCommitter(store)
    blocker = store.transaction()
    tx = blocker.__enter__()
    released = False
    try:
        with ThreadPoolExecutor(12) as pool:
            first = pool.submit(committer.append, [NewEvent("s/0", "test.a", {})])
            _wait_for(lambda: committer._queue.qsize() == 0)
            queued = {
                n: pool.submit(
                    committer.append,
                    [NewEvent("taken" if n == 5 else f"s/{n}", "test.a", {"n": n})],
                    expected={"taken": 0} if n == 5 else None,
                )
                for n in range(1, 11)
            }
            _wait_for(lambda: committer._queue.qsize() == 10)
            tx.finish()
            blocker.__exit__(None, None, None)
            released = True
            first.result(timeout=60)
            with pytest.raises(ConcurrencyConflict):
                queued[5].result(timeout=60)
            committed = [queued[n].result(timeout=60)[0] for n in queued if n != 5]
    finally:
        if not released:
            blocker.__exit__(None, None, None)
        committer.close()
    assert committer.retried == 1
    assert sorted(e.position for e in committed) == list(range(3, 12))
    assert sorted(e.stream for e in store.read()) == sorted(
        ["taken", "s/0", *(f"s/{n}" for n in range(1, 11) if n != 5)]
    )
    assert verify_chain(store.engine).events == 11


def test_a_refused_unit_fails_alone_and_its_neighbours_commit(store: EventStore) -> None:
    store.append([NewEvent("taken", "test.a", {})])
    committer = GroupCommitter(store)
    barrier = threading.Barrier(3)

    def append(stream: str, expected: dict[str, int] | None) -> object:
        barrier.wait()
        try:
            return committer.append([NewEvent(stream, "test.b", {})], expected=expected)
        except ConcurrencyConflict as exc:
            return exc

    try:
        with ThreadPoolExecutor(3) as pool:
            ok1 = pool.submit(append, "x", None)
            bad = pool.submit(append, "taken", {"taken": 0})
            ok2 = pool.submit(append, "y", None)
            outcomes = [ok1.result(), bad.result(), ok2.result()]
    finally:
        committer.close()
    assert isinstance(outcomes[1], ConcurrencyConflict)
    assert {e.stream for e in store.read()} == {"taken", "x", "y"}
    assert store.count() == 3
    assert verify_chain(store.engine).events == 3


def _fail_head_updates(engine: Engine) -> None:
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            c.execute(
                text(
                    "CREATE TRIGGER fail_head BEFORE UPDATE ON ledger_head "
                    "BEGIN SELECT RAISE(ABORT, 'test: commit refused'); END"
                )
            )
        else:
            c.execute(
                text(
                    "CREATE FUNCTION fail_head() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION 'test: commit refused'; END $$"
                )
            )
            c.execute(
                text(
                    "CREATE TRIGGER fail_head BEFORE UPDATE ON ledger_head "
                    "FOR EACH ROW EXECUTE FUNCTION fail_head()"
                )
            )


def test_when_the_commit_fails_every_caller_gets_the_error_and_nothing_is_written(
    store: EventStore,
) -> None:
    _fail_head_updates(store.engine)
    committer = GroupCommitter(store)
    try:
        with ThreadPoolExecutor(5) as pool:
            futures = [
                pool.submit(committer.append, [NewEvent(f"s/{n}", "test.a", {})]) for n in range(5)
            ]
            errors = []
            for future in futures:
                with pytest.raises(Exception, match="commit refused"):
                    future.result(timeout=60)
                errors.append(future.exception())
    finally:
        committer.close()
    assert len(errors) == 5
    assert store.count() == 0
    assert store.head().position == 0
