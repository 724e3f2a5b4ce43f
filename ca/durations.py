"""Durations and times as step-ca writes them on the wire.

Two formats cross the wire (wire reference §2):

* a Go `time.Duration` string ("24h", "1h30m", "-5m", "1.5h", "300ms"), used by claims and
  by the relative forms of `notBefore` / `notAfter`;
* a `TimeDuration`: "" (unset), an RFC 3339 time, or a Go duration.

Python's `timedelta` holds microseconds, Go's `Duration` nanoseconds: parsing truncates
anything below a microsecond (toward zero), which no certificate field can express anyway.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from ca.errors import BadRequest

__all__ = ["format_go_duration", "parse_go_duration", "parse_time_duration"]

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # MICRO SIGN, as Go prints it
    "\u03bcs": 1_000,  # GREEK SMALL LETTER MU, also accepted by Go
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_SECOND_NS = 1_000_000_000
_MICROSECOND = timedelta(microseconds=1)
_MAX_NS = (1 << 63) - 1  # Go's Duration is an int64 of nanoseconds
# Go's unit is "everything up to the next digit or dot"; [0-9], not \d, which matches any
# Unicode digit.
_COMPONENT = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})"
)


def parse_go_duration(text: str) -> timedelta:
    """Parse Go's `time.ParseDuration` syntax ("1h30m", "-5m", "1.5h", "300ms", "0")."""
    return timedelta(microseconds=_int_div_toward_zero(_parse_ns(text), 1_000))


def format_go_duration(delta: timedelta) -> str:
    """Print a duration as Go's `Duration.String` does ("24h0m0s", "5m0s", "1.5s", "0s")."""
    ns = (delta // _MICROSECOND) * 1_000
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u == 0:
        return "0s"
    if u < _SECOND_NS:
        # Below one second Go switches to the largest sub-second unit: "1.5ms", "300µs".
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            return f"{sign}{_with_fraction(u, 3)}\u00b5s"
        return f"{sign}{_with_fraction(u, 6)}ms"
    text = f"{_with_fraction(u % (60 * _SECOND_NS), 9)}s"
    minutes = u // (60 * _SECOND_NS)
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def parse_time_duration(text: str) -> datetime | timedelta | None:
    """Parse a step-ca `TimeDuration`: "" → None, RFC 3339 → aware UTC datetime, else a
    Go duration → timedelta, left relative so the caller chooses what it is relative to."""
    if text == "":
        return None
    moment = _parse_rfc3339(text)
    if moment is not None:
        return moment
    try:
        return parse_go_duration(text)
    except BadRequest:
        raise BadRequest(
            f"invalid time or duration {text!r}: use an RFC 3339 time such as "
            "2006-01-02T15:04:05Z or a duration such as 1h30m"
        ) from None


def _parse_ns(text: str) -> int:
    rest = text
    negative = rest.startswith("-")
    if rest[:1] in ("-", "+"):
        rest = rest[1:]
    if rest == "0":  # the only number allowed without a unit
        return 0
    if not rest:
        raise _invalid(text)
    total = 0
    pos = 0
    while pos < len(rest):
        match = _COMPONENT.match(rest, pos)
        assert match is not None  # every group may be empty, so it always matches
        whole, fraction, unit = match.group(1), match.group(2) or "", match.group(3)
        scale = _NS_PER_UNIT.get(unit)
        # len(whole) > 19 overflows int64 whatever the unit; the bound also keeps int() cheap.
        if (not whole and not fraction) or scale is None or len(whole) > 19:
            raise _invalid(text)
        total += int(whole or "0") * scale
        if fraction:
            # Digits past the 18th are worth less than a nanosecond even in hours.
            fraction = fraction[:18]
            total += int(fraction) * scale // 10 ** len(fraction)
        pos = match.end()
    # int64: one more nanosecond is representable below zero than above.
    if total > _MAX_NS + (1 if negative else 0):
        raise _invalid(text)
    return -total if negative else total


def _invalid(text: str) -> BadRequest:
    return BadRequest(
        f"invalid duration {text!r}: use a number and a unit among h, m, s, ms, us, ns, "
        "such as 24h, 1h30m or 300ms"
    )


def _int_div_toward_zero(value: int, divisor: int) -> int:
    quotient = abs(value) // divisor
    return -quotient if value < 0 else quotient


def _with_fraction(value: int, digits: int) -> str:
    whole, fraction = divmod(value, 10**digits)
    fraction_text = f"{fraction:0{digits}d}".rstrip("0")
    return f"{whole}.{fraction_text}" if fraction_text else str(whole)


def _parse_rfc3339(text: str) -> datetime | None:
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    zone = match.group(8)
    try:
        if zone == "Z":
            tz = UTC
        else:
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            tz = timezone(-offset if zone[0] == "-" else offset)
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as err:
        raise BadRequest(f"invalid time {text!r}: {err}") from None
    return moment.astimezone(UTC)
