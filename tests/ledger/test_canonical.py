from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import canonical_bytes, canonical_json
from ledger.canonical import MalformedJSON, NotCanonical, parse_untrusted

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_canonical_form_round_trips_and_is_a_fixed_point(value: object) -> None:
    text = canonical_json(value)
    assert json.loads(text) == value
    assert canonical_json(json.loads(text)) == text


@given(st.dictionaries(st.text(max_size=8), st.integers(), min_size=2, max_size=6))
def test_key_order_does_not_change_the_bytes(mapping: dict[str, int]) -> None:
    reversed_order = dict(reversed(list(mapping.items())))
    assert canonical_json(mapping) == canonical_json(reversed_order)


def test_canonical_form_has_no_whitespace_and_keeps_unicode() -> None:
    assert canonical_json({"b": [1, 2], "a": "é"}) == '{"a":"é","b":[1,2]}'


# -- values without a canonical form -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [1.5, {"a": [0.1]}, {1: "integer key"}, b"bytes", "lone \ud800 surrogate", {"k\udfff": 1}],
    ids=["float", "nested float", "int key", "bytes", "surrogate", "surrogate key"],
)
def test_a_value_without_a_canonical_form_is_not_canonical(value: object) -> None:
    with pytest.raises(NotCanonical):
        canonical_bytes(value)
    # Still a TypeError, as before NotCanonical had its own class.
    with pytest.raises(TypeError):
        canonical_json(value)


# -- parse_untrusted: JSON from clients --------------------------------------------------


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_untrusted_json_parses_like_json() -> None:
    text = '{"csr": "é", "n": [1, 2.5, true, null], "o": {}}'
    assert parse_untrusted(text.encode()) == json.loads(text)
    assert parse_untrusted(text) == json.loads(text)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"reason": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"\\udc00": 1}', "lone UTF-16 surrogate"),
        (b'["\\ud800\\ud800"]', "lone UTF-16 surrogate"),
        (nested(33).encode(), "nested deeper than 32 levels"),
        (nested(100_000).encode(), "nested deeper than 32 levels"),
        (b'{"sub": "a", "sub": "b"}', "appears twice"),
        (b'{"exp": NaN}', "NaN is not JSON"),
        (b'{"exp": -Infinity}', "-Infinity is not JSON"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b"\xef\xbb\xbf{}", "BOM"),
        (b"[" + b"9" * 5000 + b"]", "digits"),
        (b"{", "Expecting"),
    ],
)
def test_untrusted_json_refuses_what_cannot_be_recorded_or_walked(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedJSON, match=reason):
        parse_untrusted(data)


def test_untrusted_json_admits_32_levels_and_a_surrogate_pair() -> None:
    assert parse_untrusted(nested(32)) is not None
    assert parse_untrusted(b'["\\ud83d\\ude00"]') == ["\U0001f600"]
    assert parse_untrusted(b'{"exp": 1.5}') == {"exp": 1.5}  # NumericDate may have a fraction
