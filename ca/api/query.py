"""Query parameters, read strictly: a number is ASCII digits only, and bounded."""

from __future__ import annotations

from starlette.requests import Request

from ca.errors import BadRequest

MAX_DIGITS = 18
"""Enough for any position or page size (10**18 events would be a very old ledger)."""


def query_int(request: Request, name: str) -> int | None:
    """`?name=N` as an int (None when absent or empty); 400 for anything but 1-18 ASCII digits.

    `str.isdigit` and `int` also accept other scripts' digits ("٣", "³") and padding; those
    are refused here rather than reaching a 500 or a surprising number.
    """
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS:
        raise BadRequest(f"{name} must be a non-negative integer of at most {MAX_DIGITS} digits")
    return int(text)
