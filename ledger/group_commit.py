"""Group commit: concurrent appends share one transaction, and so one commit.

A commit (an fsync on SQLite, a WAL flush on PostgreSQL) is the cost of an append; taken
once per request it caps throughput at a few hundred to a thousand appends a second. Here
callers hand their events to one committer thread and wait. While it commits a batch the
next callers queue up, and it takes them all at once: batches grow with load, and a lone
request is never delayed waiting for company.

A batch is first appended whole, with one insert per table and no savepoints. If any unit
is refused (a used token, a version conflict, a stale state position) that transaction is
rolled back and the batch appended again with each unit in its own savepoint, so the
refused unit fails only its own caller. If the commit itself fails, every caller in the
batch gets the error and none of their events exist.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ledger.database import is_unavailable
from ledger.events import NewEvent, RecordedEvent, Unchanged
from ledger.store import AppendUnit, EventStore


@dataclass
class _Pending:
    unit: AppendUnit
    future: Future[list[RecordedEvent]] = field(default_factory=Future)


class GroupCommitter:
    """Appends through a single committer thread that batches concurrent callers."""

    def __init__(self, store: EventStore, *, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
        self._closed = False
        self._thread.start()
        self.batches = 0
        self.units = 0
        self.retried = 0
        """Batches appended again one unit at a time because one of them was refused."""

    def append(
        self,
        events: Sequence[NewEvent],
        *,
        actor: Mapping[str, Any] | None = None,
        expected: Mapping[str, int] | None = None,
        unchanged: Unchanged | None = None,
    ) -> list[RecordedEvent]:
        """Like `EventStore.append`: returns once the events are committed, or raises."""
        return self.submit(events, actor=actor, expected=expected, unchanged=unchanged).result()

    def submit(
        self,
        events: Sequence[NewEvent],
        *,
        actor: Mapping[str, Any] | None = None,
        expected: Mapping[str, int] | None = None,
        unchanged: Unchanged | None = None,
    ) -> Future[list[RecordedEvent]]:
        """Queue the events and return at once: the future resolves when they are committed
        (or fails with the reason they are not). An event loop awaits it without a thread."""
        if self._closed:
            raise RuntimeError("the group committer is closed")
        pending = _Pending(AppendUnit(events, actor, expected, unchanged))
        self._queue.put(pending)
        return pending.future

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(item)
            self._commit(batch)

    def _commit(self, batch: list[_Pending]) -> None:
        # The cheap path: every unit in one go, no savepoints. A refusal (rare: a used
        # token, a stale state position) sends the batch down the careful path.
        try:
            with self.store.transaction() as tx:
                results = tx.append_all([pending.unit for pending in batch])
        except Exception as exc:
            if len(batch) > 1 and not is_unavailable(exc):
                self.retried += 1
                self._commit_one_by_one(batch)
                return
            # Its own refusal, or nothing can commit: nothing of the batch exists.
            self._fail(batch, exc)
            return
        except BaseException as exc:
            self._fail(batch, exc)
            raise
        self.batches += 1
        self.units += len(batch)
        for pending, recorded in zip(batch, results, strict=True):
            pending.future.set_result(recorded)

    def _commit_one_by_one(self, batch: list[_Pending]) -> None:
        """Each unit in its own savepoint: a refused one fails alone."""
        outcomes: list[tuple[_Pending, list[RecordedEvent] | None, BaseException | None]] = []
        try:
            with self.store.transaction() as tx:
                for pending in batch:
                    unit = pending.unit
                    try:
                        recorded = tx.append(
                            unit.events,
                            actor=unit.actor,
                            expected=unit.expected,
                            unchanged=unit.unchanged,
                        )
                        outcomes.append((pending, recorded, None))
                    except Exception as exc:  # this unit only; its savepoint rolled back
                        outcomes.append((pending, None, exc))
        except BaseException as exc:
            # Nothing of the batch committed: every caller learns it, none gets a result.
            self._fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.units += len(batch)
        for pending, result, error in outcomes:
            if error is not None:
                pending.future.set_exception(error)
            elif result is not None:
                pending.future.set_result(result)

    @staticmethod
    def _fail(batch: list[_Pending], exc: BaseException) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(exc)
