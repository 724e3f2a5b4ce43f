"""Durations and times read and written the way step-ca (and Go) do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ca.durations import format_go_duration, parse_go_duration, parse_time_duration
from ca.errors import BadRequest

# Go's Duration is an int64 of nanoseconds.
MAX_SECONDS = ((1 << 63) - 1) // 1_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("-5m", timedelta(minutes=-5)),
        ("+5m", timedelta(minutes=5)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("300ms", timedelta(milliseconds=300)),
        ("2h45m3.5s", timedelta(hours=2, minutes=45, seconds=3.5)),
        ("1.s", timedelta(seconds=1)),
        (".5s", timedelta(milliseconds=500)),
        ("10us", timedelta(microseconds=10)),
        ("10\u00b5s", timedelta(microseconds=10)),
        ("10\u03bcs", timedelta(microseconds=10)),
        ("1500ns", timedelta(microseconds=1)),
        ("0", timedelta(0)),
        ("-0", timedelta(0)),
        ("720h", timedelta(days=30)),
    ],
)
def test_go_durations_parse_as_go_parses_them(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        *("", "1", "h", ".s", ".", "-", "1d", "1h 30m", " 1h", "1H", "--1h", "1..5s"),
        "\u0661h",  # ARABIC-INDIC DIGIT ONE: a Unicode digit, not a Go one
        "9223372036854775808ns",  # int64 overflow
        "2562048h",
    ],
)
def test_anything_else_is_an_invalid_duration(text: str) -> None:
    with pytest.raises(BadRequest, match=r"invalid duration"):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("delta", "printed"),
    [
        (timedelta(hours=24), "24h0m0s"),
        (timedelta(minutes=5), "5m0s"),
        (timedelta(hours=1, minutes=30), "1h30m0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(seconds=5), "5s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=300), "300ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=7), "7\u00b5s"),
        (timedelta(0), "0s"),
        (timedelta(minutes=-5), "-5m0s"),
        (timedelta(days=30), "720h0m0s"),
    ],
)
def test_durations_print_as_go_prints_them(delta: timedelta, printed: str) -> None:
    assert format_go_duration(delta) == printed


@given(st.integers(min_value=-MAX_SECONDS, max_value=MAX_SECONDS))
def test_whole_seconds_round_trip(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_go_duration(format_go_duration(delta)) == delta


@given(st.integers(min_value=-MAX_SECONDS * 1_000_000, max_value=MAX_SECONDS * 1_000_000))
def test_microseconds_round_trip(microseconds: int) -> None:
    delta = timedelta(microseconds=microseconds)
    assert parse_go_duration(format_go_duration(delta)) == delta


def test_an_empty_time_duration_is_unset() -> None:
    assert parse_time_duration("") is None


def test_an_rfc3339_time_duration_is_an_aware_utc_time() -> None:
    assert parse_time_duration("2026-03-01T14:00:00.25+02:00") == datetime(
        2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC
    )
    assert parse_time_duration("2026-03-01T12:00:00Z") == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_any_other_time_duration_is_a_relative_go_duration() -> None:
    assert parse_time_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_time_duration("-5m") == timedelta(minutes=-5)


@pytest.mark.parametrize(
    "text", ["tomorrow", "2026-03-01", "2026-03-01T12:00:00", "2026-03-01 12:00:00Z", "1d"]
)
def test_a_time_duration_that_is_neither_is_refused(text: str) -> None:
    with pytest.raises(BadRequest, match=r"invalid time or duration"):
        parse_time_duration(text)


def test_an_impossible_date_is_refused() -> None:
    with pytest.raises(BadRequest, match=r"invalid time '2026-02-30T12:00:00Z'"):
        parse_time_duration("2026-02-30T12:00:00Z")
