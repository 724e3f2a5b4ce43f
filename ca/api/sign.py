"""`POST /sign`: a CSR and a one-time token in, a certificate chain out (201)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.endpoint import context_of, endpoint, read_json, request_info, string_field
from ca.api.responses import json_response
from ca.authority.authority import Authority
from ca.authority.x509_issuance import Issued, SignRequest
from ca.config import TLSSettings
from ca.errors import BadRequest

GO_CIPHER_NAMES = {
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}


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
            "tlsOptions": tls_options(authority.runtime.config.tls),
        },
        201,
    )


def tls_options(tls: TLSSettings) -> dict[str, Any]:
    """step-ca's `tlsOptions`: the server's TLS settings, cipher suites in Go's names."""
    return {
        "cipherSuites": [GO_CIPHER_NAMES.get(name, name) for name in tls.cipher_suites],
        "minVersion": float(tls.min_version),
        "maxVersion": float(tls.max_version),
        "renegotiation": False,
    }


routes = [Route("/sign", sign, methods=["POST"])]
