"""What an event is: a frozen dataclass with a stable type, a schema number, a stream, and
one payload form, derived from the types of its fields.

The payload is what the ledger hashes, so `to_payload` must write exactly what the CA has
always written for the event's schema: the field names are the payload's keys, and a field
holds the JSON value itself except where its type says otherwise —

| field type | payload value |
|---|---|
| `str`, `int`, `bool` | the value |
| `tuple[X, ...]` | a list of X's payload values |
| `Mapping[str, ...]` | an object (a JSON document the CA does not interpret here) |
| a `Value` (`values.SAN`, `values.ProvisionerRef`) | an object of its fields |
| `X | None` | X's payload value, or null |

Reading is the reverse, after upcasting an older schema to the class's `SCHEMA`. A field
with a default may be absent from a stored payload (events written before the field was,
or by tools that leave it out) and reads as the default; any other missing field is a
`MalformedEvent`. Keys the class does not know are ignored.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self

from ledger import LedgerError, NewEvent, RecordedEvent, Upcasters
from ledger.upcasting import Upcast
from projections.events.streams import Stream

UPCASTERS = Upcasters()
"""Every upcaster of every event type: `upcaster` registers them beside their class."""

Convert = Callable[[Any], Any]


class MalformedEvent(LedgerError, ValueError):
    """A stored event does not fit its class: an unknown type, a missing field, or a schema
    this code cannot upcast (newer than it knows, or a step without an upcaster)."""


@dataclasses.dataclass(frozen=True)
class PayloadField:
    """One field of an event class and how its value travels to and from the payload."""

    name: str
    hint: Any
    required: bool
    read: Convert | None
    """Payload value to attribute (None: the value itself); never called with null."""
    write: Convert | None
    """Attribute to payload value (None: the value itself); never called with None."""


class Event:
    """The base of every event class, each a `@dataclass(frozen=True, kw_only=True, slots=True)`.

    A subclass sets `TYPE` (stable forever: it is in the hash chain), `SCHEMA` (bumped with
    every change to the payload, registering an `upcaster` from the previous number) and
    `STREAM`, whose keys name fields of the class. Its docstring and the docstring under
    each field are the catalogue's text (`python -m projections.events.catalogue`).
    """

    __slots__ = ()

    TYPE: ClassVar[str]
    SCHEMA: ClassVar[int]
    STREAM: ClassVar[Stream]

    @property
    def stream(self) -> str:
        return self.STREAM.of(self)

    def to_payload(self) -> dict[str, Any]:
        return _codec(type(self)).write(self)

    def to_new_event(self, *, event_id: uuid.UUID | None = None) -> NewEvent:
        """The event to append (`event_id`: a chosen id, else a random one)."""
        if event_id is None:
            return NewEvent(self.stream, self.TYPE, self.to_payload(), self.SCHEMA)
        return NewEvent(self.stream, self.TYPE, self.to_payload(), self.SCHEMA, event_id)

    @classmethod
    def from_payload(
        cls,
        payload: Mapping[str, Any],
        schema: int | None = None,
        *,
        upcasters: Upcasters = UPCASTERS,
    ) -> Self:
        """The event a stored payload of `schema` (None: this class's `SCHEMA`) records."""
        if schema is not None and schema != cls.SCHEMA:
            payload = _upcast(cls, schema, payload, upcasters)
        try:
            event: Self = _codec(cls).read(payload)
        except KeyError as missing:
            raise MalformedEvent(f"a {cls.TYPE} payload has no {missing}") from None
        return event

    @classmethod
    def from_recorded(cls, event: RecordedEvent) -> Self:
        """The typed form of a recorded event of this class's type."""
        if event.type != cls.TYPE:
            raise MalformedEvent(f"event {event.position} is {event.type}, not {cls.TYPE}")
        return cls.from_payload(event.data, event.schema)


def _upcast(
    cls: type[Event], schema: int, payload: Mapping[str, Any], upcasters: Upcasters
) -> Mapping[str, Any]:
    if schema > cls.SCHEMA:
        raise MalformedEvent(
            f"{cls.TYPE} schema {schema} is newer than this code reads ({cls.SCHEMA}):"
            " upgrade ledgerca"
        )
    reached, upcast = upcasters.upcast(cls.TYPE, schema, payload)
    if reached != cls.SCHEMA:
        raise MalformedEvent(f"no upcaster turns {cls.TYPE} schema {reached} into {reached + 1}")
    return upcast


def upcaster(
    event: type[Event], from_schema: int, *, registry: Upcasters = UPCASTERS
) -> Callable[[Upcast], Upcast]:
    """Register the function that turns `event`'s payload of `from_schema` into the payload
    of `from_schema + 1` (a decorator, used beside the class whose `SCHEMA` was bumped)."""
    if not 1 <= from_schema < event.SCHEMA:
        raise ValueError(f"{event.TYPE} has no schema {from_schema + 1} to upcast to")
    return registry.register(event.TYPE, from_schema)


@dataclasses.dataclass(frozen=True)
class _Codec:
    fields: tuple[PayloadField, ...]
    read: Callable[[Mapping[str, Any]], Any]
    write: Callable[[Any], dict[str, Any]]


class Value:
    """The base of the small values nested in payloads (`projections.events.values`), each
    a `@dataclass(frozen=True, slots=True)` whose JSON form is an object of its fields."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        return _codec(type(self)).write(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        value: Self = _codec(cls).read(data)
        return value


_CODECS: dict[type[Event | Value], _Codec] = {}


def payload_fields(cls: type[Event | Value]) -> tuple[PayloadField, ...]:
    """The fields of `cls` in declaration order."""
    return _codec(cls).fields


def _codec(cls: type[Event | Value]) -> _Codec:
    known = _CODECS.get(cls)
    if known is None:
        known = _CODECS[cls] = _compile(cls)
    return known


def _compile(cls: type[Event | Value]) -> _Codec:
    """Work out `cls`'s fields once, and generate its reader and writer.

    Replays decode every event, so the reader is straight-line code, and it fills the
    slots of a new instance directly instead of calling the frozen `__init__` (which sets
    each field through `object.__setattr__` and costs twice the rest of decoding): the
    values are the stored payload's, checked by no `__init__` either way.
    """
    if "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: events and values are @dataclass(..., slots=True)")
    hints = typing.get_type_hints(cls)
    fields: list[PayloadField] = []
    names: dict[str, Any] = {"cls": cls, "new": object.__new__}
    reads: list[str] = []
    writes: list[str] = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = field.name
        required = (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )
        read, write = _converters(hints[name])
        fields.append(PayloadField(name, hints[name], required, read, write))
        value = f"payload[{name!r}]" if required else f"payload.get({name!r}, default_{name})"
        names[f"default_{name}"] = field.default
        names[f"set_{name}"] = cls.__dict__[name].__set__
        if read is not None:
            names[f"read_{name}"] = read
            value = f"None if (v := {value}) is None else read_{name}(v)"
        reads.append(f"    set_{name}(event, {value})\n")
        if write is None:
            writes.append(f"{name!r}: event.{name}")
        else:
            names[f"write_{name}"] = write
            writes.append(f"{name!r}: None if (v := event.{name}) is None else write_{name}(v)")
    source = (
        f"def read(payload):\n    event = new(cls)\n{''.join(reads)}    return event\n"
        f"def write(event):\n    return {{{', '.join(writes)}}}\n"
    )
    exec(source, names)  # noqa: S102 - code built above from the class's own field names
    return _Codec(tuple(fields), names["read"], names["write"])


def without_none(hint: Any) -> tuple[Any, bool]:
    """(`X`, True) for `X | None`; (`hint`, False) for anything else."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        rest = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"{hint!r}: an event field is one type, or one type or None")
        return rest[0], True
    return hint, False


def _converters(hint: Any) -> tuple[Convert | None, Convert | None]:
    hint, _ = without_none(hint)
    if hint in (str, int, bool):
        return None, None
    origin = typing.get_origin(hint)
    if origin is tuple:
        item, more = typing.get_args(hint)
        if more is not Ellipsis:
            raise TypeError(f"{hint!r}: an event's tuple field is tuple[X, ...]")
        read, write = _converters(item)
        return (
            tuple if read is None else (lambda values: tuple(map(read, values))),
            list if write is None else (lambda values: [write(value) for value in values]),
        )
    if origin is Mapping:
        return None, dict
    if isinstance(hint, type) and issubclass(hint, Value):
        codec = _codec(hint)
        return codec.read, codec.write
    raise TypeError(f"{hint!r} has no payload form (see projections.events.base)")
