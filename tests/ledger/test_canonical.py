from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ledger import canonical_json

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
