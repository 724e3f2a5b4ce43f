"""`wait_until`: poll a condition until it holds, or fail saying what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.05
"""Seconds between two looks: short, because every look is cheap next to what it waits for."""


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Return `predicate()`'s first true value, as soon as it has one; AssertionError naming
    `what` after `timeout` seconds. The poll is the synchronisation: the condition itself is
    what the caller waits for, never an amount of time."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(POLL)
    return value
