"""`POST /sign`: a CSR and a one-time token in, a certificate chain out (201)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.endpoint import context_of, endpoint
from ca.api.responses import json_response
from ca.authority.authority import Authority, Issued, RequestInfo, SignRequest
from ca.errors import BadRequest


async def read_json(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("error decoding json") from None
    if not isinstance(value, dict):
        raise BadRequest("error decoding json: expected an object")
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name) or ""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    return value


def request_info(request: Request) -> RequestInfo:
    client = request.client
    return RequestInfo(
        request_id=context_of(request).request_id,
        remote_address=client.host if client else None,
    )


@endpoint
async def sign(request: Request) -> Response:
    body = await read_json(request)
    template_data = body.get("templateData") or {}
    if not isinstance(template_data, dict):
        raise BadRequest("templateData must be an object")
    sign_request = SignRequest(
        csr=_text(body, "csr"),
        ott=_text(body, "ott"),
        not_before=_text(body, "notBefore"),
        not_after=_text(body, "notAfter"),
        template_data=template_data,
    )
    authority: Authority = request.app.state.authority
    issued = await authority.sign_async(sign_request, request_info(request))
    return sign_response(request, issued)


def sign_response(request: Request, issued: Issued) -> Response:
    """step-ca's SignResponse (201), shared by /sign, /renew and /rekey."""
    authority: Authority = request.app.state.authority
    context_of(request).fields.update(
        provisioner=issued.provisioner, serial=issued.serial, position=issued.position
    )
    chain = issued.chain_pems
    return json_response(
        {
            "crt": chain[0],
            "ca": chain[1] if len(chain) > 1 else None,
            "certChain": chain,
            "tlsOptions": authority.tls_options(),
        },
        201,
    )


routes = [Route("/sign", sign, methods=["POST"])]
