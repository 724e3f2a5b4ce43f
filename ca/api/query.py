"""Query parameters, read strictly: a number is ASCII digits only, and bounded."""

from __future__ import annotations

from starlette.requests import Request

from ca.errors import BadRequest

MAX_DIGITS = 18
"""Enough for any position or page size (10**18 events would be a very old ledger)."""


def query_int(request: Request, name: str, *, signed: bool = False) -> int | None:
    """`?name=N` as an int (None when absent or empty); 400 for anything but 1-18 ASCII digits
    (after one leading `-` when `signed`: step-ca reads `limit=-3` as "the default").

    `str.isdigit` and `int` also accept other scripts' digits ("٣", "³") and padding; those
    are refused here rather than reaching a 500 or a surprising number.
    """
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    digits = text[1:] if signed and text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_DIGITS:
        kind = "an integer" if signed else "a non-negative integer"
        raise BadRequest(f"{name} must be {kind} of at most {MAX_DIGITS} digits")
    return int(text)
