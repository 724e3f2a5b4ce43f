"""Bounded concurrency for the read endpoints that cost real work (proofs, SSH inventories).

Each runs its database work in the shared thread pool; unbounded, a burst of one of them
fills the pool and every other request, `/crl` and `/ocsp` included, waits behind it. Each
expensive endpoint gets a few slots per worker process; a request that finds them all taken
is answered at once with 503 and Retry-After (step-ca's error JSON), never queued.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from ca.errors import Busy

Handler = Callable[[Request], Awaitable[Response]]


class Limit:
    """At most `size` requests at once through one endpoint, in one worker's event loop."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size, self.active = name, size, 0

    def __enter__(self) -> Limit:
        if self.active >= self.size:
            raise Busy(f"{self.name}: {self.size} requests already in progress")
        self.active += 1
        return self

    def __exit__(self, *_exc: object) -> None:
        self.active -= 1


PROOFS = Limit("ledger proofs", 4)
SSH_INVENTORY = Limit("SSH host inventory", 8)
SSH_KRL = Limit("SSH KRL", 8)


def limited(limit: Limit) -> Callable[[Handler], Handler]:
    """Run the handler within `limit` (inside `endpoint`, which turns the 503 into JSON)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: Request) -> Response:
            with limit:
                return await handler(request)

        return wrapped

    return wrap
