"""The SSH routes, as step-ca speaks them, plus `GET /ssh/krl`.

`/ssh/sign`, `/ssh/renew`, `/ssh/rekey` answer 201 `{"crt": "<base64 certificate>"}`;
`/ssh/revoke` 200 `{"status":"ok"}`; keys and certificates travel as std-base64 OpenSSH
blobs. The logic lives in `ca.ssh`; refusals use step-ca's error body.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_public_key
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
from ca.api.errors import error_response
from ca.api.limits import SSH_INVENTORY, SSH_KRL, limited
from ca.api.peer import client_certificate
from ca.api.responses import json_response
from ca.authority import ssh_issuance as issuance
from ca.authority import ssh_lifecycle as lifecycle
from ca.authority.authority import Authority
from ca.authority.lifecycle import RevokeRequest, check_reason_code
from ca.authority.ssh_issuance import SSHIssued
from ca.errors import AuthError, BadRequest
from ca.keys.files import PublicKey
from ca.ssh import config as ssh_config
from ca.ssh import inventory
from ca.ssh.certificates import certificate_line
from ca.ssh.keys import wire_b64
from ca.ssh.krl import build_krl
from ca.ssh.options import read_options
from projections.certificates import certificates


def _issued(request: Request, issued: SSHIssued) -> Response:
    context_of(request).fields.update(
        provisioner=issued.provisioner, serial=issued.serial, position=issued.position
    )
    body = {"crt": certificate_line(issued.certificate).split()[1]}
    if issued.add_user_certificate is not None:
        body["addUserCrt"] = certificate_line(issued.add_user_certificate).split()[1]
    return json_response(body, 201)


@endpoint
async def sign(request: Request) -> Response:
    body = await read_json(request)
    sign_request = issuance.SSHSignRequest(
        public_key=string_field(body, "publicKey"),
        ott=string_field(body, "ott"),
        options=read_options(body, "request"),
        add_user_public_key=string_field(body, "addUserPublicKey"),
    )
    issued = await run_in_threadpool(
        issuance.sign, authority_of(request), sign_request, request_info(request)
    )
    return _issued(request, issued)


@endpoint
async def renew(request: Request) -> Response:
    body = await read_json(request)
    issued = await run_in_threadpool(
        lifecycle.renew, authority_of(request), string_field(body, "ott"), request_info(request)
    )
    return _issued(request, issued)


@endpoint
async def rekey(request: Request) -> Response:
    body = await read_json(request)
    issued = await run_in_threadpool(
        lifecycle.rekey,
        authority_of(request),
        string_field(body, "ott"),
        string_field(body, "publicKey"),
        request_info(request),
    )
    return _issued(request, issued)


@endpoint
async def revoke(request: Request) -> Response:
    body = await read_json(request)
    passive = body.get("passive", True)
    if not isinstance(passive, bool):
        raise BadRequest("passive must be true or false")
    revoke_request = RevokeRequest(
        serial=string_field(body, "serial"),
        ott=string_field(body, "ott"),
        reason_code=check_reason_code(body.get("reasonCode")),
        reason=string_field(body, "reason"),
        passive=passive,
    )
    revoked = await run_in_threadpool(
        lifecycle.revoke, authority_of(request), revoke_request, request_info(request)
    )
    context_of(request).fields.update(serial=revoked.serial, position=revoked.position)
    return json_response({"status": "ok"})


def _keys(keys: Any) -> list[PublicKey]:
    return [load_pem_public_key(k.public_key_pem.encode()) for k in keys]  # type: ignore[misc]


@endpoint
async def roots(request: Request) -> Response:
    snapshot = authority_of(request).snapshot()
    user = [wire_b64(k) for k in _keys(snapshot.ssh_user_keys)]
    host = [wire_b64(k) for k in _keys(snapshot.ssh_host_keys)]
    return _key_response(user, host)


@endpoint
async def federation(request: Request) -> Response:
    # Retired keys too: certificates they signed stay trusted until they expire.
    records = await run_in_threadpool(inventory.ca_keys, authority_of(request).runtime.engine)
    user = [wire_b64(k.public_key) for k in records if k.role == "ssh_user"]
    host = [wire_b64(k.public_key) for k in records if k.role == "ssh_host"]
    return _key_response(user, host)


def _key_response(user: list[str], host: list[str]) -> Response:
    if not user and not host:
        return error_response(404)
    body: dict[str, list[str]] = {}
    if user:
        body["userKey"] = user
    if host:
        body["hostKey"] = host
    return json_response(body)


def _check_caller(request: Request, authority: Authority) -> None:
    """With `ssh_hosts_require_auth`, only holders of an unrevoked certificate of ours."""
    if not authority.runtime.config.ssh_hosts_require_auth:
        return
    try:
        peer = client_certificate(request.scope)
    except ValueError:
        peer = None
    if peer is None:
        raise AuthError("the SSH host inventory needs a client certificate issued by this CA")
    with authority.runtime.engine.connect() as connection:
        status = connection.execute(
            certificates.select()
            .with_only_columns(certificates.c.status)
            .where(certificates.c.serial == str(peer.serial_number))
        ).scalar_one_or_none()
    if status != "valid":
        raise AuthError("the client certificate is unknown or revoked")


@endpoint
@limited(SSH_INVENTORY)
async def hosts(request: Request) -> Response:
    authority = authority_of(request)
    await run_in_threadpool(_check_caller, request, authority)
    names = await run_in_threadpool(
        inventory.active_hosts, authority.runtime.engine, authority.clock()
    )
    return json_response(
        {"hosts": [{"hid": "", "host_tags": [], "hostname": name} for name in names]}
    )


@endpoint
@limited(SSH_INVENTORY)
async def check_host(request: Request) -> Response:
    """Whether a host holds a valid certificate: the same inventory as /ssh/hosts, so it
    needs the same client certificate when `ssh_hosts_require_auth` is set."""
    authority = authority_of(request)
    await run_in_threadpool(_check_caller, request, authority)
    body = await read_json(request)
    if string_field(body, "type") not in ("", "host"):
        raise BadRequest("type must be 'host'")
    principal = string_field(body, "principal")
    if not principal:
        raise BadRequest("missing principal")
    found = await run_in_threadpool(
        inventory.active_hosts, authority.runtime.engine, authority.clock(), principal
    )
    return json_response({"exists": bool(found)})


@endpoint
async def config(request: Request) -> Response:
    body = await read_json(request)
    kind = request.path_params.get("type") or string_field(body, "type") or "user"
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise BadRequest("data must be an object")
    snapshot = authority_of(request).snapshot()
    if kind == "user":
        templates = ssh_config.user_templates(_keys(snapshot.ssh_host_keys), data)
        return json_response({"userTemplates": [t.to_json() for t in templates]})
    if kind == "host":
        templates = ssh_config.host_templates(_keys(snapshot.ssh_user_keys), data)
        return json_response({"hostTemplates": [t.to_json() for t in templates]})
    raise BadRequest(f"unsupported type {kind[:20]!r}: use 'user' or 'host'")


@endpoint
@limited(SSH_KRL)
async def krl(request: Request) -> Response:
    authority = authority_of(request)
    revoked = await run_in_threadpool(inventory.revoked_serials, authority.runtime.engine)
    body = build_krl(
        revoked.by_ca_key,
        version=revoked.version,
        generated=datetime.now(UTC),
        comment=f"{authority.runtime.config.name} SSH KRL",
    )
    return Response(
        body,
        media_type="application/octet-stream",
        headers={"Content-Disposition": 'attachment; filename="ssh.krl"'},
    )


routes = [
    Route("/ssh/sign", sign, methods=["POST"]),
    Route("/sign-ssh", sign, methods=["POST"]),
    Route("/ssh/renew", renew, methods=["POST"]),
    Route("/ssh/rekey", rekey, methods=["POST"]),
    Route("/ssh/revoke", revoke, methods=["POST"]),
    Route("/ssh/roots", roots, methods=["GET"]),
    Route("/ssh/federation", federation, methods=["GET"]),
    Route("/ssh/hosts", hosts, methods=["GET"]),
    Route("/ssh/get-hosts", hosts, methods=["GET"]),
    Route("/ssh/check-host", check_host, methods=["POST"]),
    Route("/ssh/config", config, methods=["POST"]),
    Route("/ssh/config/{type}", config, methods=["POST"]),
    Route("/ssh/krl", krl, methods=["GET"]),
]
