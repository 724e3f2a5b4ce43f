"""What every handler shares: the wrapper that turns errors into step-ca JSON (reasons go to
the log), the one reader of JSON request bodies, and the request facts events record."""

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
from ca.authority.recorder import RequestInfo
from ca.errors import BadRequest, CAError, UnsupportedMediaType
from ledger import LedgerError, is_unavailable
from ledger.canonical import MalformedJSON, parse_untrusted

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


def request_info(request: Request) -> RequestInfo:
    """Who asked, as an event's actor records it: the CA's own request id (never the
    client's, which is kept apart as `client_request_id`) and the remote address."""
    context = context_of(request)
    client = request.client
    return RequestInfo(
        request_id=context.request_id,
        remote_address=client.host if client else None,
        client_request_id=context.client_request_id,
    )


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object: 415 for another media type, 400 for anything
    `ledger.canonical.parse_untrusted` does not admit (not UTF-8, a lone surrogate, NaN, a
    repeated member, nesting deeper than 32 levels) or for a body that is not an object."""
    _check_media_type(request)
    body = await request.body()
    try:
        value = parse_untrusted(body)
    except MalformedJSON as exc:
        raise BadRequest(f"error decoding json: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("error decoding json: expected an object")
    return value


def _check_media_type(request: Request) -> None:
    """Bodies are JSON: `application/json` (any parameters) or a `+json` type, else 415.

    step-ca reads a body as JSON whatever its Content-Type says, and step's admin client
    sends its PUT and PATCH bodies without one, so a missing Content-Type is read as JSON —
    except when a client certificate is the request's only credential. A browser presents
    its certificate to any site's request, and a cross-site POST without Content-Type (a
    typeless Blob) needs no CORS preflight, so it could revoke or rekey with the user's
    certificate; an Authorization header or a declared JSON type is something no such
    request can carry. A declared non-JSON type (a form, text/plain) is always 415.
    """
    declared = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if declared == "application/json" or (
        declared.startswith("application/") and declared.endswith("+json")
    ):
        return
    if declared:
        raise UnsupportedMediaType(
            f"Content-Type {declared[:60]!r} is not supported: send application/json"
        )
    if _has_client_certificate(request) and "authorization" not in request.headers:
        raise UnsupportedMediaType(
            "a request authenticated by its client certificate must declare"
            " Content-Type: application/json"
        )


def _has_client_certificate(request: Request) -> bool:
    tls = request.scope.get("extensions", {}).get("tls") or {}
    return bool(tls.get("client_cert_chain"))


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
