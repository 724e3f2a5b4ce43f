"""`wait_until`: poll a condition until it holds, or fail saying what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Return as soon as `predicate()` is true; AssertionError naming `what` after `timeout`
    seconds. The poll is the synchronisation: the condition itself is what the caller waits
    for, never an amount of time."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)
