"""Each rendering has a budget: loop steps, CPU time, and the size of what it builds.

Each case here ran unbounded before the budget existed (seconds of CPU, or gigabytes), and
each is now a 400 naming the bound, found before the expensive value is built.
"""

from __future__ import annotations

from typing import Any

import pytest

from ca.errors import BadRequest
from ca.templates import render_json
from ca.templates.sandbox import MAX_LOOP_STEPS, Budget

DATA: dict[str, Any] = {
    "items": list(range(20_000)),
    "text": "a" * 1000,
    "name": "svc",
}


def _refused(template: str, match: str, budget: Budget | None = None) -> None:
    with pytest.raises(BadRequest, match=match):
        render_json(template, DATA, budget)


def test_a_loop_over_requester_data_stops_at_the_step_budget() -> None:
    _refused("[{% for i in items %}{{ i }},{% endfor %}0]", f"loops ran more than {MAX_LOOP_STEPS}")


def test_nested_loops_share_one_budget() -> None:
    _refused(
        "[{% for i in range(200) %}{% for j in range(200) %}{% endfor %}{% endfor %}0]",
        "loops ran more than",
    )


def test_loops_within_the_budget_render() -> None:
    rendered = render_json("[{% for i in range(100) %}{{ i }},{% endfor %}100]", DATA)
    assert rendered == list(range(101))


def test_a_filtered_loop_counts_every_item_it_looks_at() -> None:
    _refused("[{% for i in items if i < 0 %}{{ i }},{% endfor %}0]", "loops ran more than")


def test_recursive_loops_are_refused_at_compile_time() -> None:
    _refused("[{% for i in [[1]] recursive %}{{ loop(i) }}{% endfor %}]", "recursive loops")


def test_cpu_time_is_bounded() -> None:
    # A budget with no time left: the first charged operation is refused. (The standard
    # budget is 1 s of the thread's CPU; this exercises the same check deterministically.)
    _refused("{{ items|length }}", "ran for more than 0 s of CPU", Budget(seconds=0))


@pytest.mark.parametrize(
    "template",
    [
        '{{ "a" * 1000000000 }}',
        "{{ [1] * 1000000000 }}",
        "{% set s = text %}" + "{% set s = s ~ s %}" * 12 + "{{ 1 }}",
        '{% set ns = namespace(s="a") %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}'
        "{% endfor %}{{ 1 }}",
        "{{ text.replace('a', text) }}",
        "{{ text|replace('a', text) }}",
    ],
    ids=["repeat-string", "repeat-list", "concat", "doubling", "replace-method", "replace-filter"],
)
def test_values_longer_than_the_output_could_hold_are_refused(template: str) -> None:
    _refused(template, "would be longer than 262144 characters")


@pytest.mark.parametrize(
    "template",
    [
        '{{ "a"|center(1000000000) }}',
        '{{ "a".ljust(1000000000) }}',
        '{{ "a".zfill(1000000000) }}',
        "{{ [1]|slice(1000000000)|list }}",
    ],
)
def test_huge_counts_and_widths_are_refused_before_use(template: str) -> None:
    _refused(template, "the number 1000000000 is too large")


@pytest.mark.parametrize(
    "template",
    [
        '{{ "%0999999999d" % 1 }}',
        '{{ "%0999999999d"|format(1) }}',
        '{{ "{:>999999999}".format(1) }}',
    ],
)
def test_huge_format_widths_are_refused(template: str) -> None:
    _refused(template, "a formatted value would be longer")


@pytest.mark.parametrize(
    "template, match",
    [("{{ 2 ** 100000 }}", "a power larger than 4096 bits"),
     ("{{ (2 ** 4000) * (2 ** 4000) }}", "a product larger than 4096 bits")],
)  # fmt: skip
def test_numbers_are_bounded(template: str, match: str) -> None:
    _refused(template, match)


def test_ordinary_templates_still_have_their_tools() -> None:
    template = (
        '{"n": {{ items|length }}, "padded": {{ "%05d"|format(42) }},'
        ' "right": {{ "{:>5}".format(7) }}, "joined": {{ name ~ "-" ~ name|upper }},'
        ' "power": {{ 2 ** 64 }}, "sum": {{ [1, 2] + [3] }}, "repeat": {{ "ab" * 3 }}}'
    )
    assert render_json(template, DATA) == {
        "n": 20_000,
        "padded": "00042",
        "right": "    7",
        "joined": "svc-SVC",
        "power": 2**64,
        "sum": [1, 2, 3],
        "repeat": "ababab",
    }
