"""`POST /sign`: a CSR and a one-time token in, a certificate chain out (201)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.endpoint import context_of, endpoint, read_json, request_info, string_field
from ca.api.responses import json_response
from ca.authority.authority import Authority, Issued, SignRequest
from ca.errors import BadRequest


@endpoint
async def sign(request: Request) -> Response:
    body = await read_json(request)
    template_data = body.get("templateData") or {}
    if not isinstance(template_data, dict):
        raise BadRequest("templateData must be an object")
    sign_request = SignRequest(
        csr=string_field(body, "csr"),
        ott=string_field(body, "ott"),
        not_before=string_field(body, "notBefore"),
        not_after=string_field(body, "notAfter"),
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
