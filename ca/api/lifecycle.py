"""`POST /renew` (legacy `/re-sign`), `/rekey` and `/revoke`, as step-ca speaks them.

The client certificate comes from the ASGI `tls` extension (`ca.api.peer`); the logic is
in `ca.authority.lifecycle`. Renew and rekey answer 201 with a SignResponse, revoke 200
`{"status":"ok"}`; refusals use step-ca's error body.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.endpoint import (
    authority_of,
    context_of,
    endpoint,
    read_json,
    request_info,
    string_field,
)
from ca.api.peer import client_certificate
from ca.api.responses import json_response
from ca.api.sign import sign_response
from ca.authority import lifecycle
from ca.errors import AuthError, BadRequest

BEARER = "bearer "


def peer_certificate(request: Request) -> x509.Certificate | None:
    try:
        return client_certificate(request.scope)
    except ValueError:
        raise AuthError("the client certificate cannot be parsed") from None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[: len(BEARER)].lower() == BEARER:
        return header[len(BEARER) :].strip() or None
    return None


@endpoint
async def renew(request: Request) -> Response:
    peer = peer_certificate(request)
    # step's client sends no body; whatever comes is not read.
    issued = await run_in_threadpool(
        lifecycle.renew,
        authority_of(request),
        peer=peer,
        bearer=None if peer is not None else bearer_token(request),
        info=request_info(request),
    )
    return sign_response(request, issued)


@endpoint
async def rekey(request: Request) -> Response:
    peer = peer_certificate(request)
    if peer is None:
        raise AuthError("missing client certificate: rekey needs mTLS")
    body = await read_json(request)
    csr = body.get("csr") or ""
    if not isinstance(csr, str):
        raise BadRequest("csr must be a string")
    issued = await run_in_threadpool(
        lifecycle.rekey, authority_of(request), peer=peer, csr_pem=csr, info=request_info(request)
    )
    return sign_response(request, issued)


@endpoint
async def revoke(request: Request) -> Response:
    body = await read_json(request)
    revoke_request = lifecycle.RevokeRequest(
        serial=string_field(body, "serial"),
        ott=string_field(body, "ott"),
        reason_code=lifecycle.check_reason_code(body.get("reasonCode")),
        reason=string_field(body, "reason"),
        passive=_boolean(body, "passive"),
    )
    revoked = await run_in_threadpool(
        lifecycle.revoke,
        authority_of(request),
        revoke_request,
        peer=peer_certificate(request),
        info=request_info(request),
    )
    context_of(request).fields.update(
        serial=revoked.serial, position=revoked.position, provisioner=revoked.provisioner
    )
    return json_response({"status": "ok"})


def _boolean(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, True)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


routes = [
    Route("/renew", renew, methods=["POST"]),
    Route("/re-sign", renew, methods=["POST"]),
    Route("/rekey", rekey, methods=["POST"]),
    Route("/revoke", revoke, methods=["POST"]),
]
