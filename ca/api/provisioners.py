"""`/provisioners` (step-ca's cursor pagination) and `/provisioners/{kid}/encrypted-key`."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.endpoint import authority_of, endpoint
from ca.api.errors import error_response
from ca.api.query import query_int
from ca.api.responses import json_response
from ca.authority.state import ProvisionerRecord

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def uid(index: int, provisioner_id: str) -> str:
    """step-ca's list key: SHA-1 of the id with its first 4 bytes set to the list index,
    so that hex order is list (insertion) order."""
    digest = bytearray(hashlib.sha1(provisioner_id.encode()).digest())  # noqa: S324 - an id, not security
    digest[:4] = index.to_bytes(4, "big")
    return digest.hex()


def provisioner_json(record: ProvisionerRecord) -> dict[str, Any]:
    body: dict[str, Any] = {"type": record.type, "name": record.name}
    if record.key:  # an SSHPOP provisioner has none
        body["key"] = record.key
    if record.encrypted_key:
        body["encryptedKey"] = record.encrypted_key
    if record.claims:
        body["claims"] = record.claims
    if record.options:
        body["options"] = record.options
    return body


def page(
    records: tuple[ProvisionerRecord, ...], cursor: str, limit: int | None
) -> tuple[list[dict[str, Any]], str]:
    if limit is None or limit <= 0:
        limit = DEFAULT_LIMIT
    limit = min(limit, MAX_LIMIT)
    start = cursor.lower().rjust(40, "0") if cursor else ""
    keyed = [(uid(i, r.id), r) for i, r in enumerate(records)]
    remaining = [(k, r) for k, r in keyed if k >= start]
    chosen = remaining[:limit]
    next_cursor = remaining[limit][0].lstrip("0") if len(remaining) > limit else ""
    return [provisioner_json(r) for _, r in chosen], next_cursor


@endpoint
async def provisioners(request: Request) -> Response:
    items, next_cursor = page(
        authority_of(request).snapshot().provisioners,
        request.query_params.get("cursor", ""),
        query_int(request, "limit", signed=True),
    )
    return json_response({"provisioners": items, "nextCursor": next_cursor})


@endpoint
async def encrypted_key(request: Request) -> Response:
    record = authority_of(request).snapshot().by_kid.get(request.path_params["kid"])
    if record is None or not record.encrypted_key:
        return error_response(404)
    return json_response({"key": record.encrypted_key})


routes = [
    Route("/provisioners", provisioners, methods=["GET"]),
    Route("/provisioners/{kid}/encrypted-key", encrypted_key, methods=["GET"]),
]
