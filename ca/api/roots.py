"""Health, version and the CA certificates: `/health /version /root/{sha} /roots[.pem]
/intermediates[.pem] /federation`."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca import __version__
from ca.api.endpoint import authority_of, endpoint
from ca.api.errors import error_response
from ca.api.responses import json_response

_SHA256 = hashes.SHA256()


@endpoint
async def health(request: Request) -> Response:
    return json_response({"status": "ok"})


@endpoint
async def version(request: Request) -> Response:
    # step-ca's VersionResponse. The TLS layer asks for client certificates but never
    # requires one (routes that need one check it themselves), so clients bootstrapping
    # from this answer must not present a certificate on every connection.
    return json_response({"version": __version__, "requireClientAuthentication": False})


@endpoint
async def root(request: Request) -> Response:
    wanted = request.path_params["sha"].lower().replace("-", "").replace(":", "")
    for key in authority_of(request).snapshot().roots:
        certificate = key.certificate
        if certificate is not None and certificate.fingerprint(_SHA256).hex() == wanted:
            return json_response({"ca": key.certificate_pem})
    return error_response(404)


def _roots(request: Request) -> list[str]:
    return [k.certificate_pem for k in authority_of(request).snapshot().roots if k.certificate_pem]


def _intermediates(request: Request) -> list[str]:
    keys = authority_of(request).snapshot().intermediates
    # Newest (the one signing now) first.
    return [k.certificate_pem for k in reversed(keys) if k.certificate_pem]


@endpoint
async def roots(request: Request) -> Response:
    return json_response({"crts": _roots(request)}, 201)


@endpoint
async def roots_pem(request: Request) -> Response:
    return Response("".join(_roots(request)), media_type="application/x-pem-file")


@endpoint
async def intermediates(request: Request) -> Response:
    pems = _intermediates(request)
    if not pems:
        return error_response(501)
    return json_response({"crts": pems}, 201)


@endpoint
async def intermediates_pem(request: Request) -> Response:
    pems = _intermediates(request)
    if not pems:
        return error_response(501)
    return Response("".join(pems), media_type="application/x-pem-file")


@endpoint
async def federation(request: Request) -> Response:
    return json_response({"crts": _roots(request)}, 201)


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/version", version, methods=["GET"]),
    Route("/root/{sha}", root, methods=["GET"]),
    Route("/roots", roots, methods=["GET"]),
    Route("/roots.pem", roots_pem, methods=["GET"]),
    Route("/intermediates", intermediates, methods=["GET"]),
    Route("/intermediates.pem", intermediates_pem, methods=["GET"]),
    Route("/federation", federation, methods=["GET"]),
]
