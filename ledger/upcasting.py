"""Upcasters: old payloads are upgraded when read, never rewritten in the table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Payload = Mapping[str, Any]
Upcast = Callable[[Payload], Payload]


class Upcasters:
    """A registry of `(type, schema) -> function` producing the payload of `schema + 1`."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcast] = {}

    def register(self, event_type: str, from_schema: int) -> Callable[[Upcast], Upcast]:
        def decorator(function: Upcast) -> Upcast:
            key = (event_type, from_schema)
            if key in self._steps:
                raise ValueError(f"an upcaster for {event_type} schema {from_schema} exists")
            self._steps[key] = function
            return function

        return decorator

    def upcast(self, event_type: str, schema: int, data: Payload) -> tuple[int, Payload]:
        while (step := self._steps.get((event_type, schema))) is not None:
            data = step(data)
            schema += 1
        return schema, data


NO_UPCASTERS = Upcasters()
