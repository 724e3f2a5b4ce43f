"""`GET /crl`: the active intermediate's latest CRL, as the ledger recorded it.

Every instance reads the same `crls` projection row, so every instance serves the same
bytes: DER (`application/pkix-crl`), or PEM with `?pem`, with `Expires` = nextUpdate.
404 when CRLs are disabled here or none has been published yet (as step-ca).
"""

from __future__ import annotations

import threading
from email.utils import format_datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.endpoint import context_of, endpoint
from ca.api.errors import error_response
from ca.authority.authority import Authority
from ca.crl.builder import pem_crl
from ca.crl.records import PublishedCRL, latest_crl

PATHS = ("/crl", "/1.0/crl")
"""Where the CRL is served (also the only paths of the plain-HTTP listener)."""


class LatestCRL:
    """The latest CRL of the active intermediate; its DER is re-read only when it changed."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority
        self._cached: PublishedCRL | None = None
        self._lock = threading.Lock()

    def current(self) -> PublishedCRL | None:
        key_id = self.authority.snapshot().intermediate.key_id
        with self.authority.runtime.engine.connect() as connection:
            newest = latest_crl(connection, key_id, with_der=False)
            if newest is None:
                return None
            cached = self._cached
            if (
                cached is not None
                and cached.issuer_key_id == key_id
                and cached.number == newest.number
            ):
                return cached
            with self._lock:
                full = latest_crl(connection, key_id)
                self._cached = full
                return full


def _latest(request: Request) -> LatestCRL:
    state = request.app.state
    latest = getattr(state, "latest_crl", None)
    if latest is None:
        latest = state.latest_crl = LatestCRL(request.app.state.authority)
    return latest


@endpoint
async def crl(request: Request) -> Response:
    authority: Authority = request.app.state.authority
    if not authority.runtime.config.crl.enabled:
        context_of(request).fields["error"] = "CRLs are disabled in this instance's config"
        return error_response(404)
    published = await run_in_threadpool(_latest(request).current)
    if published is None:
        context_of(request).fields["error"] = "no CRL has been published yet"
        return error_response(404)
    context_of(request).fields["crl_number"] = published.number
    headers = {
        "Expires": format_datetime(published.next_update, usegmt=True),
        "Last-Modified": format_datetime(published.this_update, usegmt=True),
    }
    if "pem" in request.query_params:
        body = pem_crl(published.der)
        headers["Content-Disposition"] = 'attachment; filename="crl.pem"'
        return Response(body, media_type="application/x-pem-file", headers=headers)
    headers["Content-Disposition"] = 'attachment; filename="crl.crl"'
    return Response(published.der, media_type="application/pkix-crl", headers=headers)


routes = [Route("/crl", crl, methods=["GET"])]
