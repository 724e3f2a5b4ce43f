"""Recording: who did it (`Actor`, built in one place) and the one path into the ledger.

Every use case ends the same way: append its events with an actor, under a precondition,
and turn the ledger's refusals into the CA's errors. `Recorder.record` does that over the
group committer (`record_async` for an event loop, without holding a thread), and
`refusals` is the one map from ledger and projection conflicts to CA errors, in the spirit
of httpx's `map_exceptions`: the common ones always, a use case's own ones added per call.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ca.errors import AuthError, CAError
from ledger import NewEvent, RecordedEvent, Unchanged
from ledger.group_commit import GroupCommitter
from projections.events import ProvisionerRef
from projections.used_tokens import TokenAlreadyUsed

__all__ = ["Actor", "Recorder", "Refusals", "RequestInfo", "refusals"]


@dataclass(frozen=True)
class RequestInfo:
    """What the HTTP layer knows about a request, for the actor of its events."""

    request_id: str
    remote_address: str | None = None
    client_request_id: str | None = None
    """The client's own `X-Request-Id`, recorded as such (never as the CA's request id)."""


@dataclass(frozen=True)
class Actor:
    """Who caused an event: the instance, the request, and what authorized it.

    `record()` is the mapping the ledger stores; absent facts are left out.
    """

    instance: str
    request: RequestInfo | None = None
    provisioner_id: str | None = None
    provisioner: str | None = None
    """The provisioner's name when the event was recorded: a label for people; the id
    is the identity."""
    token_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        instance: str,
        request: RequestInfo,
        provisioner: ProvisionerRef | None,
        token_id: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> Actor:
        """The actor of a request authorized through `provisioner` (None: no provisioner)."""
        return cls(
            instance,
            request,
            provisioner_id=provisioner.id if provisioner else None,
            provisioner=provisioner.name if provisioner else None,
            token_id=token_id,
            extra=extra or {},
        )

    def record(self) -> dict[str, Any]:
        actor: dict[str, Any] = {"instance": self.instance}
        if self.request is not None:
            actor["request_id"] = self.request.request_id
            if self.request.client_request_id is not None:
                actor["client_request_id"] = self.request.client_request_id
            if self.request.remote_address:
                actor["remote_address"] = self.request.remote_address
        if self.provisioner_id is not None:
            actor["provisioner_id"] = self.provisioner_id
        if self.provisioner is not None:
            actor["provisioner"] = self.provisioner
        if self.token_id is not None:
            actor["token_id"] = self.token_id
        actor.update(self.extra)
        return actor


Refusals = Mapping[type[Exception], Callable[[], CAError]]

COMMON_REFUSALS: Refusals = {TokenAlreadyUsed: lambda: AuthError("token already used")}


@contextlib.contextmanager
def refusals(mapping: Refusals | None = None) -> Iterator[None]:
    """Raise the CA error mapped to a ledger or projection refusal (`mapping` first, then
    the common ones: a spent token is a 401 everywhere)."""
    combined = {**COMMON_REFUSALS, **(mapping or {})}
    try:
        yield
    except tuple(combined) as exc:
        for kind, error in combined.items():
            if isinstance(exc, kind):
                raise error() from None
        raise  # pragma: no cover - the except clause matched one of them


class Recorder:
    """The one path from a use case into the ledger."""

    def __init__(self, appender: GroupCommitter) -> None:
        self.appender = appender

    def record(
        self,
        events: Sequence[NewEvent],
        actor: Actor | Mapping[str, Any],
        *,
        expected: Mapping[str, int] | None = None,
        unchanged: Unchanged | None = None,
        refused: Refusals | None = None,
    ) -> list[RecordedEvent]:
        """Append and return once committed; a refusal raises its CA error."""
        with refusals(refused):
            return self.appender.append(
                events, actor=_mapping(actor), expected=expected, unchanged=unchanged
            )

    async def record_async(
        self,
        events: Sequence[NewEvent],
        actor: Actor | Mapping[str, Any],
        *,
        expected: Mapping[str, int] | None = None,
        unchanged: Unchanged | None = None,
        refused: Refusals | None = None,
    ) -> list[RecordedEvent]:
        """`record` for an event loop: the commit is awaited, no thread waits for it."""
        future = self.appender.submit(
            events, actor=_mapping(actor), expected=expected, unchanged=unchanged
        )
        with refusals(refused):
            return await asyncio.wrap_future(future)


def _mapping(actor: Actor | Mapping[str, Any]) -> Mapping[str, Any]:
    return actor.record() if isinstance(actor, Actor) else actor
