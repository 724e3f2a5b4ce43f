"""Several processes appending at once: position order must be commit order.

A follower that polls `position > last` is the judge: if a lower position could commit
after a higher one, the follower would skip it and never see it.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ledger import EventStore, verify_chain

WRITERS = 4
EACH = 500
APPENDER = Path(__file__).parent.parent / "support" / "appender.py"


@pytest.mark.slow
def test_concurrent_writer_processes_never_interleave_or_skip(engine: Engine, db_url: str) -> None:
    store = EventStore(engine)
    seen: list[int] = []
    stop = threading.Event()

    def follow() -> None:
        last = 0
        while True:
            done = stop.is_set()
            for event in store.read(after=last):
                seen.append(event.position)
                last = event.position
            if done:
                return

    follower = threading.Thread(target=follow)
    follower.start()
    writers = [
        subprocess.Popen([sys.executable, str(APPENDER), db_url, str(i), str(EACH)])
        for i in range(WRITERS)
    ]
    try:
        codes = [w.wait(timeout=600) for w in writers]
    finally:
        stop.set()
        follower.join()
    assert codes == [0] * WRITERS

    total = WRITERS * EACH
    assert seen == list(range(1, total + 1)), "the follower skipped or repeated a position"
    assert verify_chain(engine).events == total
    for i in range(WRITERS):
        numbers = [e.data["n"] for e in store.read_stream(f"writer/{i}")]
        assert numbers == list(range(EACH))
        versions = [e.version for e in store.read_stream(f"writer/{i}")]
        assert versions == list(range(1, EACH + 1))
    # The writers really did interleave: otherwise this test would prove nothing.
    streams = [e.stream for e in store.read()]
    switches = sum(1 for a, b in itertools.pairwise(streams) if a != b)
    assert switches > WRITERS
