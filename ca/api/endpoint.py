"""The wrapper every handler goes through: errors become step-ca JSON, reasons go to the log."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import Response

from ca.api.errors import reason, response_for
from ca.api.middleware import RequestContext
from ca.errors import CAError
from ledger import LedgerError, is_unavailable

log = structlog.get_logger("ledgerca.http")

Handler = Callable[[Request], Awaitable[Response]]


def context_of(request: Request) -> RequestContext:
    context = request.scope.get("state", {}).get("ledgerca")
    if isinstance(context, RequestContext):
        return context
    return RequestContext("-")


def endpoint(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (CAError, LedgerError) as exc:
            context_of(request).fields["error"] = reason(exc)
            return response_for(exc)
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("database unavailable", error=reason(exc))
            else:
                log.exception("unhandled error", request_id=context_of(request).request_id)
            context_of(request).fields["error"] = reason(exc)
            return response_for(exc)

    return wrapped
