"""Recorded times: one fixed-width text form, read back exactly and strictly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import format_time, parse_time


@given(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)))
def test_a_recorded_time_reads_back_as_the_same_moment(moment: datetime) -> None:
    text = format_time(moment)
    assert len(text) == 27
    assert parse_time(text) == moment
    assert parse_time(text).utcoffset() == timedelta(0)


def test_other_zones_are_recorded_in_utc() -> None:
    moment = datetime(2026, 3, 1, 14, 0, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(moment) == "2026-03-01T12:00:00.250000Z"


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27",
        "2026-11-27T17:35:24Z",
        "2026-11-27T17:35:24.123456+00:00",
        "2026-11-27 17:35:24.123456Z",
        "2026-13-27T17:35:24.123456Z",
        "2026-11-27T17:35:24.1234567",
    ],
)
def test_anything_but_the_recorded_form_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)
