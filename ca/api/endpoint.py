"""The wrapper every handler goes through: errors become step-ca JSON, reasons go to the log."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response

from ca.api.errors import reason, response_for
from ca.api.middleware import RequestContext
from ca.authority.authority import Authority
from ca.errors import BadRequest, CAError
from ledger import LedgerError, is_unavailable

log = structlog.get_logger("ledgerca.http")

Handler = Callable[[Request], Awaitable[Response]]


def context_of(request: Request) -> RequestContext:
    context = request.scope.get("state", {}).get("ledgerca")
    if isinstance(context, RequestContext):
        return context
    return RequestContext("-")


def authority_of(request: Request) -> Authority:
    """The Authority the application serves (set by `create_app`)."""
    authority: Authority = request.app.state.authority
    return authority


def string_field(body: dict[str, Any], name: str) -> str:
    """An optional string member of a JSON body ("" when absent); 400 for another type."""
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


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
