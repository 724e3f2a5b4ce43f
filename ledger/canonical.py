"""Canonical JSON: the one byte form of a payload that is hashed and stored.

Keys sorted, no insignificant whitespace, UTF-8, and no floats: a float's text form is
not stable across languages and versions, so a payload that needs a fraction carries it
as a string. Two equal payloads always produce the same bytes, which is what lets
`verify` recompute a hash from a parsed row instead of trusting the stored text. A value
without a canonical form (a float, a non-string key, a string holding a lone UTF-16
surrogate, which UTF-8 cannot encode) raises `NotCanonical`.

JSON from outside the CA (request bodies, token headers and claims) is read with
`parse_untrusted`, which admits only what can be recorded and walked safely: UTF-8, no lone
surrogates, no NaN or Infinity, no duplicate member names, at most `MAX_DEPTH` levels of
nesting. Everything else is `MalformedJSON` before any handler sees it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ledger.errors import LedgerError

JSONValue = Any

MAX_DEPTH = 32
"""Nesting `parse_untrusted` admits: far more than any step-ca request, policy or template
data needs, and far below the recursion limit of whoever walks the value next."""


class NotCanonical(LedgerError, TypeError):
    """A value has no canonical JSON form, so it cannot be hashed or recorded."""


class MalformedJSON(ValueError):
    """Text from outside is not JSON that `parse_untrusted` admits; the message says why."""


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
        raise NotCanonical(f"{path}: floats are not allowed in ledger payloads; use a string")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"{path}: object keys must be strings, got {type(key).__name__}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise NotCanonical(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_json(value: JSONValue) -> str:
    """Return the canonical text of `value`, refusing anything without one."""
    if not _valid(value):
        # Other mappings and sequences (tuples, frozen views) are fine too; this slower walk
        # accepts them and names the path of anything that is not.
        _check(value, "$")
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    # isascii() is O(1) on CPython: only text with other characters pays for the check.
    if not text.isascii() and not _encodes(text):
        raise NotCanonical("a string holds a lone UTF-16 surrogate, which UTF-8 cannot encode")
    return text


def canonical_bytes(value: JSONValue) -> bytes:
    return canonical_json(value).encode("utf-8")


def parse_json(text: str) -> JSONValue:
    """Parse JSON the ledger wrote itself (stored rows): trusted, so no checks."""
    return json.loads(text)


def parse_untrusted(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> JSONValue:
    """Parse JSON from a client; MalformedJSON (a ValueError) for anything not admitted.

    Strict where Python's `json` is lenient: bytes must be UTF-8 (no UTF-16 detection, no
    BOM), NaN and Infinity are not JSON, and a repeated member name is refused rather than
    silently keeping the last (two readers of one token or body must not disagree on it).
    Floats are admitted (a JWT's NumericDate may have a fraction); one that would reach the
    ledger is `NotCanonical` there.
    """
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedJSON("not UTF-8") from None
    try:
        value = json.loads(data, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except RecursionError:
        raise MalformedJSON(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, a duplicate member, an over-long integer
        raise MalformedJSON(str(exc)) from None
    _admit(value, max_depth)
    return value


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"member {key[:40]!r} appears twice in one object")
            seen.add(key)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _admit(value: JSONValue, max_depth: int) -> None:
    """Bound the nesting and refuse lone surrogates, without recursion (the value may be
    nested as deep as the parser allowed)."""
    pending: list[tuple[JSONValue, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if not item.isascii() and not _encodes(item):
                raise MalformedJSON("a string holds a lone UTF-16 surrogate")
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise MalformedJSON(f"nested deeper than {max_depth} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
