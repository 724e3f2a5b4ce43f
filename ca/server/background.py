"""The one way a serving process runs background work: `periodic(check, interval, wake)`.

CRL publication, checkpoints, server-certificate renewal, client-CA refresh and the follower
projections all do the same thing: a blocking check in a thread, again after an interval or
as soon as something wakes it, logged and retried more slowly when it fails, without ever
taking the worker down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger("ledgerca.background")

MAX_BACKOFF = 60.0

Interval = float | Callable[[], float]


@dataclass(frozen=True)
class Job:
    """One background job: `check` runs in a thread; the next run is `interval` seconds
    later (a number, or asked of a function after each run), or as soon as `wake` is set."""

    name: str
    check: Callable[[], object]
    interval: Interval
    wake: asyncio.Event | None = None
    start_after: Interval = 0.0
    """How long to wait before the first run (for jobs whose first check is already done
    at start, such as the server certificate the supervisor made sure of)."""

    def next_delay(self, failures: int) -> float:
        base = self.interval() if callable(self.interval) else self.interval
        return base if failures == 0 else min(MAX_BACKOFF, max(base, 1.0) * 2**failures)


async def periodic(job: Job) -> None:
    """Run `job` forever (until cancelled)."""
    failures = 0
    first = job.start_after() if callable(job.start_after) else job.start_after
    if first > 0:
        await asyncio.sleep(first)
    while True:
        try:
            await asyncio.to_thread(job.check)
            failures = 0
        except Exception as exc:  # keep the worker serving; the job is retried, slower
            failures += 1
            log.error(f"{job.name} failed", error=str(exc), failures=failures)
        delay = job.next_delay(failures)
        if job.wake is None:
            await asyncio.sleep(delay)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.wake.wait(), delay)
        job.wake.clear()
