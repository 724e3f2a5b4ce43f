"""The event catalogue, rendered from the event classes: `docs/EVENTS.md`.

    python -m projections.events.catalogue > docs/EVENTS.md

A test renders it and compares, so the documented payloads are the ones the code writes.
The text comes from the classes: each class's docstring, and the docstring under each field.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import sys
import typing
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from projections.events import streams
from projections.events.base import Event, payload_fields, without_none
from projections.events.registry import EVENTS
from projections.events.values import VALUES

COMMAND = "python -m projections.events.catalogue > docs/EVENTS.md"

_INTRO = f"""\
# Event catalogue

Every event type the CA writes: its stream, its payload schema number and each field of the
payload. Generated from the event classes in `projections/events/` — do not edit it here;
change the classes and run `{COMMAND}`
(`tests/projections/test_event_catalogue.py` fails while the two differ).

Type names are stable forever: they are in the hash chain. A payload change bumps the
class's `SCHEMA` and registers an upcaster from the previous number
(`projections.events.upcaster`); stored payloads are never rewritten, only upcast when read.
Times are UTC strings as `ledger.format_time` writes them (`2031-03-01T09:00:00.000000Z`).
A field with an *if absent* value may be missing from a stored payload and reads as that
value; every other field is always present.
"""


def render() -> str:
    return "\n".join(_lines()) + "\n"


def _lines() -> Iterator[str]:
    yield _INTRO
    yield "## Streams"
    yield ""
    yield "| stream | holds |"
    yield "|---|---|"
    for stream in streams.ALL:
        yield f"| `{stream.pattern}` | {_cell(stream.description)} |"
    yield ""
    yield "## Event types"
    yield ""
    yield "| type | class | stream | schema |"
    yield "|---|---|---|---|"
    for cls in EVENTS:
        yield (
            f"| [`{cls.TYPE}`](#{_anchor(cls.TYPE)}) | `{cls.__name__}` "
            f"| `{cls.STREAM.pattern}` | {cls.SCHEMA} |"
        )
    for cls in EVENTS:
        yield from _event(cls)
    yield ""
    yield "## Values"
    yield ""
    yield "Objects nested in payloads."
    for value in VALUES:
        yield ""
        yield f"### {value.__name__}"
        yield ""
        yield _paragraph(value)
        yield ""
        yield "| field | type | description |"
        yield "|---|---|---|"
        docs = field_docs(value)
        hints = typing.get_type_hints(value)
        for name in hints:
            yield f"| `{name}` | {describe(hints[name])} | {_cell(docs[name])} |"


def _event(cls: type[Event]) -> Iterator[str]:
    yield ""
    yield f"### {cls.TYPE}"
    yield ""
    yield (
        f"`{cls.__module__}.{cls.__name__}`, schema {cls.SCHEMA}, stream `{cls.STREAM.pattern}`."
    )
    yield ""
    yield _paragraph(cls)
    yield ""
    yield "| field | type | if absent | description |"
    yield "|---|---|---|---|"
    docs = field_docs(cls)
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for field in payload_fields(cls):
        absent = "" if field.required else f"`{json.dumps(defaults[field.name])}`"
        yield (
            f"| `{field.name}` | {describe(field.hint)} | {absent} | {_cell(docs[field.name])} |"
        )


def describe(hint: Any) -> str:
    """A field's type in JSON words: `string or null`, `array of SAN`."""
    inner, optional = without_none(hint)
    text = _describe(inner)
    return f"{text} or null" if optional else text


def _describe(hint: Any) -> str:
    named = {str: "string", int: "integer", bool: "boolean"}
    if hint in named:
        return named[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return f"array of {_plural(_describe(args[0]))}"
    if origin is Mapping:
        return "object" if args[1] is Any else f"object of {_plural(_describe(args[1]))}"
    if hint in VALUES:
        return f"[{hint.__name__}](#{hint.__name__.lower()})"
    raise TypeError(f"{hint!r}: no description")


def _plural(text: str) -> str:
    return f"{text}s" if text in ("string", "integer", "boolean") else text


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of `cls`, on one line; a field without one is an
    error (the catalogue would have nothing to say about it)."""
    module: ModuleType = sys.modules[cls.__module__]
    tree = ast.parse(inspect.getsource(module))
    (node,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
    docs: dict[str, str] = {}
    for statement, following in zip(node.body, [*node.body[1:], None], strict=True):
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        name = statement.target.id
        if name.isupper():  # TYPE, SCHEMA, STREAM
            continue
        if not (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            raise ValueError(f"{cls.__name__}.{name} has no docstring under it")
        docs[name] = " ".join(following.value.value.split())
    return docs


def _paragraph(cls: type) -> str:
    return " ".join(inspect.cleandoc(cls.__doc__ or "").split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _anchor(event_type: str) -> str:
    return event_type.replace(".", "")


if __name__ == "__main__":
    sys.stdout.write(render())
