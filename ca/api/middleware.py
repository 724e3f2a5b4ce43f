"""ASGI middleware: request ids, body size limit and one log line per request."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ca.api.errors import error_response
from ca.errors import PayloadTooLarge

log = structlog.get_logger("ledgerca.http")

REQUEST_ID = b"x-request-id"
MAX_CLIENT_REQUEST_ID = 128


class RequestContext:
    """Per-request facts the handlers add to the access log line."""

    def __init__(self, request_id: str, client_request_id: str | None = None) -> None:
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.fields: dict[str, Any] = {}


def client_request_id(value: bytes) -> str | None:
    """A client's X-Request-Id worth keeping: 1 to 128 printable ASCII characters.

    Anything else is dropped, not refused: a proxy's odd id must not cost a certificate,
    and the CA's own id identifies the request whatever the client sent.
    """
    if not 0 < len(value) <= MAX_CLIENT_REQUEST_ID:
        return None
    if not all(0x20 <= byte < 0x7F for byte in value):
        return None
    return value.decode("ascii")


class RequestIdMiddleware:
    """Give every request the CA's own id (returned in X-Request-Id, logged and recorded in
    events); keep a client's X-Request-Id apart, as `client_request_id`.

    The CA's id is never the client's: a client choosing it could make its request look, in
    the ledger's actors and the log, like part of another one.
    """

    def __init__(self, app: ASGIApp, *, max_header_bytes: int = 16 * 1024) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if sum(len(k) + len(v) for k, v in scope["headers"]) > self.max_header_bytes:
            # Hypercorn's own limit only bounds what h11 has not parsed yet.
            response = error_response(431, "request headers too large")
            response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        given = client_request_id(dict(scope["headers"]).get(REQUEST_ID, b""))
        context = RequestContext(request_id, given)
        if given is not None:
            context.fields["client_request_id"] = given
        scope.setdefault("state", {})["ledgerca"] = context
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != REQUEST_ID]
                headers.append((REQUEST_ID, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                request_id=request_id,
                method=scope["method"],
                path=scope["path"],
                status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
                **context.fields,
            )


class BodyLimitMiddleware:
    """Refuse bodies over `limit` bytes with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if (
            declared is not None
            and declared.isascii()
            and declared.isdigit()
            and int(declared) > self.limit
        ):
            response = error_response(413, f"request body larger than {self.limit} bytes")
            # The body stays unread, so this connection cannot carry another request.
            response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside the handler's body read: the app's error handler answers.
                    raise PayloadTooLarge(f"request body larger than {self.limit} bytes")
            return message

        await self.app(scope, limited, send)
