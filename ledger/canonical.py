"""Canonical JSON: the one byte form of a payload that is hashed and stored.

Keys sorted, no insignificant whitespace, UTF-8, and no floats: a float's text form is
not stable across languages and versions, so a payload that needs a fraction carries it
as a string. Two equal payloads always produce the same bytes, which is what lets
`verify` recompute a hash from a parsed row instead of trusting the stored text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

JSONValue = Any


_SCALARS = frozenset({type(None), bool, str, int})


def _valid(value: object) -> bool:
    """True for a JSON value without floats (the fast walk: no paths built)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is dict:
        return all(type(k) is str and _valid(v) for k, v in value.items())  # type: ignore[attr-defined]
    if kind is list:
        return all(_valid(item) for item in value)  # type: ignore[attr-defined]
    return False


def _check(value: object, path: str) -> None:
    """Raise TypeError naming the first thing in `value` that has no canonical form."""
    if type(value) in _SCALARS:
        return
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        raise TypeError(f"{path}: floats are not allowed in ledger payloads; use a string")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: object keys must be strings, got {type(key).__name__}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise TypeError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_json(value: JSONValue) -> str:
    """Return the canonical text of `value`, refusing anything without one."""
    if not _valid(value):
        # Other mappings and sequences (tuples, frozen views) are fine too; this slower walk
        # accepts them and names the path of anything that is not.
        _check(value, "$")
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_bytes(value: JSONValue) -> bytes:
    return canonical_json(value).encode("utf-8")


def parse_json(text: str) -> JSONValue:
    return json.loads(text)
