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


class RequestContext:
    """Per-request facts the handlers add to the access log line."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.fields: dict[str, Any] = {}


class RequestIdMiddleware:
    """Honour a client's X-Request-Id (if sane) or make one; return it; log the request."""

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
        given = dict(scope["headers"]).get(REQUEST_ID, b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 128 and given.isprintable() else str(uuid.uuid4())
        context = RequestContext(request_id)
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
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
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
