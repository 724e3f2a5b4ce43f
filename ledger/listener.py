"""Wake-ups when the ledger head moves: PostgreSQL `LISTEN/NOTIFY`, nothing on SQLite.

Every append on PostgreSQL sends `NOTIFY ledgerca_head, '<position>'` with its commit
(`ledger.store`). A `HeadListener` holds one connection in `LISTEN` on a thread of its own
and calls its callbacks with the notified position — from that thread, so callbacks must be
quick and thread-safe (set an event, schedule on a loop). A notification is only a hint:
whoever wakes must still read `position > last` from the ledger, and a lost notification (a
reconnect) only delays the next read until the caller's own poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine

from ledger.database import is_sqlite
from ledger.store import NOTIFY_CHANNEL

log = logging.getLogger("ledgerca.ledger.listener")

Callback = Callable[[int], None]

RECONNECT_DELAY = 1.0
"""Seconds between attempts to re-establish the LISTEN connection."""


class HeadListener:
    """Calls `callbacks` with each notified head position until `close()`."""

    def __init__(self, engine: Engine, *, timeout: float = 1.0) -> None:
        self.enabled = not is_sqlite(engine)
        self._conninfo = (
            engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            if self.enabled
            else ""
        )
        self._timeout = timeout
        self._callbacks: list[Callback] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()
        """Set while a LISTEN connection is established (tests wait on it)."""

    def subscribe(self, callback: Callback) -> None:
        self._callbacks.append(callback)

    def start(self) -> HeadListener:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-listen", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:
                log.warning("ledger LISTEN connection lost: %s", str(exc).strip())
            self.listening.clear()
            self._stop.wait(RECONNECT_DELAY)

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.listening.set()
            # Anything committed while we were not listening is picked up by the callers'
            # own reads; say so once, with position 0 ("look now").
            self._notify(0)
            while not self._stop.is_set():
                for notification in connection.notifies(timeout=self._timeout):
                    try:
                        position = int(notification.payload)
                    except ValueError:
                        continue
                    self._notify(position)

    def _notify(self, position: int) -> None:
        for callback in self._callbacks:
            try:
                callback(position)
            except Exception:  # a callback's bug must not stop the listener
                log.exception("ledger head callback failed")
