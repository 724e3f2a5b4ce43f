"""`docs/EVENTS.md` is rendered from the event classes, so it cannot drift from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections.events import EVENTS
from projections.events.catalogue import COMMAND, field_docs, render

EVENTS_MD = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"


def test_the_documented_catalogue_is_the_one_the_event_classes_render() -> None:
    rendered = render()
    if EVENTS_MD.read_text(encoding="utf-8") != rendered:
        pytest.fail(f"docs/EVENTS.md differs from the event classes: run `{COMMAND}`")


def test_every_event_type_and_every_field_is_described() -> None:
    rendered = render()
    for cls in EVENTS:
        assert f"### {cls.TYPE}\n" in rendered
        assert cls.__doc__, cls.__name__
        for name, text in field_docs(cls).items():
            assert text, f"{cls.__name__}.{name}"
            assert f"| `{name}` |" in rendered
