"""The OCSP responder (RFC 6960): `POST /ocsp` and `GET /ocsp/{base64 request}`.

Every answer is an OCSP response (`application/ocsp-response`, HTTP 200), errors included:
OCSP clients understand `malformedRequest` / `unauthorized` / `internalError`, not JSON.

- A CertID naming one of our intermediates (active or retired) is answered by that
  intermediate's own key: good, revoked (time and reason) or unknown, from the
  `certificates` projection as it is in the shared database at that moment.
- A CertID naming any other issuer gets `unauthorized`, as RFC 5019 §2.2.3 prescribes for a
  responder that is not authoritative. A signed `unknown` would need a key the client trusts
  for that issuer, which we do not have: openssl would reject it as a verify error, while it
  reports `unauthorized` plainly ("Responder Error: unauthorized (6)").
- A serial we issued under another of our keys than the one named is `unknown`.
- A serial we never issued but revoked (`x509.revoked_unissued`) is `revoked` under every
  one of our issuers, in RFC 6960 §2.2's form for a non-issued certificate
  (`ca.pki.ocsp.CertificateStatus.revoked_non_issued`). Any other serial we have no record
  of is `unknown`, as before: the responder answers "revoked" only for what was revoked.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime

import structlog
from cryptography.x509 import ocsp as x509_ocsp
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.endpoint import context_of, endpoint
from ca.authority.authority import Authority
from ca.authority.status import StatusReader
from ca.pki.ocsp import (
    DEFAULT_VALIDITY,
    CertificateStatus,
    MalformedRequest,
    build_response,
    decode_get_path,
    parse_request,
    unsuccessful,
)

log = structlog.get_logger("ledgerca.ocsp")

MEDIA_TYPE = "application/ocsp-response"
VALIDITY = DEFAULT_VALIDITY  # nextUpdate - thisUpdate; to be read from the config

_readers_lock = threading.Lock()


@dataclass(frozen=True)
class Answer:
    der: bytes
    successful: bool
    this_update: datetime | None = None
    next_update: datetime | None = None


def answer(authority: Authority, reader: StatusReader, der: bytes) -> tuple[Answer, dict[str, str]]:
    """The DER response to a DER request, and what the access log should say about it."""
    try:
        request = parse_request(der)
    except MalformedRequest as exc:
        return _failure(x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST), {"error": str(exc)}
    fields = {"serial": str(request.serial_number)}
    if request.count > 1:
        fields["ocsp_answered"] = f"1 of {request.count}"
    issuer = reader.issuer(
        request.hash_algorithm, request.issuer_name_hash, request.issuer_key_hash
    )
    if issuer is None:
        fields["ocsp_status"] = "unauthorized"
        return _failure(x509_ocsp.OCSPResponseStatus.UNAUTHORIZED), fields
    record = reader.certificate(request.serial_number)
    if record is None or record.issuer_key_id not in (None, issuer.key_id):
        status = CertificateStatus.unknown()
    else:
        status = record.status
    fields["ocsp_status"] = status.state
    now = authority.clock()
    response = build_response(
        request,
        status,
        issuer=issuer.certificate,
        issuer_key=authority.signing_key(issuer.key),
        now=now,
        validity=VALIDITY,
    )
    return Answer(response, True, now, now + VALIDITY), fields


def _failure(status: x509_ocsp.OCSPResponseStatus) -> Answer:
    return Answer(unsuccessful(status), False)


def status_reader(request: Request) -> StatusReader:
    """One reader (and issuer cache) per application."""
    state = request.app.state
    reader: StatusReader | None = getattr(state, "ocsp_status", None)
    if reader is None:
        with _readers_lock:
            reader = getattr(state, "ocsp_status", None)
            if reader is None:
                authority: Authority = state.authority
                reader = StatusReader(authority.runtime.engine)
                state.ocsp_status = reader
    return reader


async def _respond(request: Request, der: bytes, *, cacheable: bool) -> Response:
    authority: Authority = request.app.state.authority
    context = context_of(request)
    try:
        result, fields = await run_in_threadpool(answer, authority, status_reader(request), der)
    except Exception as exc:
        # A client of an OCSP responder reads OCSP, never JSON: say internalError.
        log.exception("ocsp responder failed", request_id=context.request_id)
        context.fields["error"] = f"{exc.__class__.__name__}: {exc}"
        result = _failure(x509_ocsp.OCSPResponseStatus.INTERNAL_ERROR)
        fields = {}
    context.fields.update(fields)
    headers = {"Cache-Control": "no-store"}
    if cacheable and result.this_update and result.next_update:
        # RFC 5019 §6.2: let HTTP caches keep a GET answer until its nextUpdate.
        max_age = int((result.next_update - result.this_update) / timedelta(seconds=1))
        headers = {
            "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
            "Last-Modified": format_datetime(result.this_update, usegmt=True),
            "Expires": format_datetime(result.next_update, usegmt=True),
        }
    return Response(result.der, media_type=MEDIA_TYPE, headers=headers)


@endpoint
async def ocsp_post(request: Request) -> Response:
    # Lenient about Content-Type (RFC 6960 wants application/ocsp-request): the body is
    # parsed as DER either way and anything else is malformedRequest.
    return await _respond(request, await request.body(), cacheable=False)


@endpoint
async def ocsp_get(request: Request) -> Response:
    if request.method == "POST":  # some clients post to the URL with a trailing path
        return await ocsp_post(request)
    try:
        der = decode_get_path(request.path_params["request"])
    except MalformedRequest as exc:
        context_of(request).fields["error"] = str(exc)
        return Response(
            unsuccessful(x509_ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
            media_type=MEDIA_TYPE,
            headers={"Cache-Control": "no-store"},
        )
    return await _respond(request, der, cacheable=True)


routes = [
    Route("/ocsp", ocsp_post, methods=["POST"]),
    Route("/ocsp/{request:path}", ocsp_get, methods=["GET", "POST"]),
]
