"""The Starlette application: every route at `/` and under `/1.0`, step-ca error shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp

from ca.api import (
    admin,
    crl,
    ledger,
    lifecycle,
    ocsp,
    provisioners,
    roots,
    sign,
    ssh,
    ssh_bastion,
)
from ca.api.errors import error_response
from ca.api.middleware import BodyLimitMiddleware, RequestIdMiddleware
from ca.api.peer import PeerCertificateMiddleware
from ca.authority.authority import Authority
from ca.config import DEFAULT_BODY_LIMIT


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return error_response(status)


def create_app(
    authority: Authority,
    *,
    body_limit: int = DEFAULT_BODY_LIMIT,
    on_startup: Sequence[Callable[[], None]] = (),
) -> ASGIApp:
    routes = [
        *roots.routes,
        *provisioners.routes,
        *sign.routes,
        *lifecycle.routes,
        *crl.routes,
        *ocsp.routes,
        *ledger.routes,
        *admin.routes,
        *ssh.routes,
        *ssh_bastion.routes,
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for hook in on_startup:
            hook()
        yield

    app = Starlette(
        routes=[*routes, Mount("/1.0", routes=routes)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.authority = authority
    return RequestIdMiddleware(BodyLimitMiddleware(PeerCertificateMiddleware(app), body_limit))
