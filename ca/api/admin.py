"""The admin API: provisioners, name policies and admins, changed remotely as events.

Every route authenticates the caller as an admin (`ca.authority.admin_auth`) and every event
it writes carries that admin in `actor`. Shapes follow step-ca's admin API where it has one:
`{"provisioners": [...], "nextCursor": ""}`, `{"admins": [...], "nextCursor": ""}`, the
provisioner object of `/provisioners`, and step-ca's policy JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.endpoint import authority_of, context_of, endpoint, read_json, request_info
from ca.api.lifecycle import bearer_token, peer_certificate
from ca.api.provisioners import provisioner_json
from ca.api.responses import json_response
from ca.authority import admins, policies
from ca.authority import provisioners as management
from ca.authority.admin_auth import Caller, authenticate
from ca.authority.recorder import refusals
from ca.authority.state import ProvisionerRecord
from ca.errors import BadRequest, NotFound
from ledger import EventStore, NewEvent

T = TypeVar("T")


async def admin_caller(request: Request) -> Caller:
    peer = peer_certificate(request)
    caller = await run_in_threadpool(
        authenticate,
        authority_of(request),
        peer=peer,
        bearer=None if peer is not None else bearer_token(request),
        info=request_info(request),
    )
    context_of(request).fields["admin"] = caller.admin.subject
    return caller


async def answer_spent(request: Request, caller: Caller, response: Response) -> Response:
    """The answer to a request that changes nothing, once its token is spent on its own."""
    if caller.spends:
        store = authority_of(request).runtime.store
        await _act(caller, _append, store, actor=caller.actor)
    return response


def _append(store: EventStore, *, actor: Mapping[str, Any], also: Sequence[NewEvent]) -> None:
    store.append(list(also), actor=actor)


async def _act(caller: Caller, change: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a management change in a worker thread, spending the caller's token with it."""
    with refusals():
        return await run_in_threadpool(change, *args, also=caller.spends, **kwargs)


def _record(request: Request, name: str) -> ProvisionerRecord:
    for record in authority_of(request).snapshot().provisioners:
        if record.name == name:
            return record
    raise NotFound(f"no provisioner named {name!r}")


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object")
    return value


# -- provisioners ----------------------------------------------------------------------------


@endpoint
async def list_provisioners(request: Request) -> Response:
    caller = await admin_caller(request)
    records = authority_of(request).snapshot().provisioners
    listed = {"provisioners": [provisioner_json(r) for r in records], "nextCursor": ""}
    return await answer_spent(request, caller, json_response(listed))


@endpoint
async def get_provisioner(request: Request) -> Response:
    caller = await admin_caller(request)
    found = provisioner_json(_record(request, request.path_params["name"]))
    return await answer_spent(request, caller, json_response(found))


@endpoint
async def add_provisioner(request: Request) -> Response:
    caller = await admin_caller(request)
    body = await read_json(request)
    kind = str(body.get("type", "")).upper()
    if kind not in management.SUPPORTED_TYPES:
        supported = " or ".join(management.SUPPORTED_TYPES)
        raise BadRequest(f"provisioner type {body.get('type')!r} is not supported: use {supported}")
    name = body.get("name")
    if not isinstance(name, str):
        raise BadRequest("name must be a string")
    store = authority_of(request).runtime.store
    if kind == "SSHPOP":
        event = await _act(
            caller,
            management.add_sshpop,
            store,
            name,
            claims=_object(body, "claims") if "claims" in body else None,
            actor=caller.actor,
        )
        context_of(request).fields["position"] = event.position
        return json_response(provisioner_json(_record(request, name)), 201)
    encrypted = body.get("encryptedKey")
    if encrypted is not None and not isinstance(encrypted, str):
        raise BadRequest("encryptedKey must be a compact JWE string")
    event = await _act(
        caller,
        management.add_jwk_key,
        store,
        name,
        public_jwk=management.public_jwk_of(body.get("key")),
        encrypted_key=encrypted,
        claims=_object(body, "claims"),
        options=_object(body, "options"),
        actor=caller.actor,
    )
    context_of(request).fields["position"] = event.position
    return json_response(provisioner_json(_record(request, name)), 201)


@endpoint
async def update_provisioner(request: Request) -> Response:
    caller = await admin_caller(request)
    body = await read_json(request)
    changes: dict[str, Any] = {}
    for field in ("claims", "options"):
        if field in body:
            changes[field] = _object(body, field)
    if "name" in body and body["name"] != request.path_params["name"]:
        if not isinstance(body["name"], str):
            raise BadRequest("name must be a string")
        changes["name"] = body["name"]
    event = await _act(
        caller,
        management.update,
        authority_of(request).runtime.store,
        request.path_params["name"],
        changes,
        actor=caller.actor,
        by_super_admin=caller.admin.is_super,
    )
    context_of(request).fields["position"] = event.position
    return json_response(provisioner_json(_record(request, event.data["changes"].get(
        "name", request.path_params["name"]))))  # fmt: skip


@endpoint
async def remove_provisioner(request: Request) -> Response:
    caller = await admin_caller(request)
    event = await _act(
        caller,
        management.remove,
        authority_of(request).runtime.store,
        request.path_params["name"],
        actor=caller.actor,
        by_super_admin=caller.admin.is_super,
    )
    context_of(request).fields["position"] = event.position
    return json_response({"status": "ok"})


# -- policies -------------------------------------------------------------------------------


def _policy_scope(request: Request) -> str | None:
    name = request.path_params.get("name")
    return str(name) if name is not None else None


@endpoint
async def get_policy(request: Request) -> Response:
    caller = await admin_caller(request)
    name = _policy_scope(request)
    snapshot = authority_of(request).snapshot()
    scope = "authority" if name is None else f"provisioner/{_record(request, name).id}"
    policy = snapshot.policies.get(scope)
    if policy is None:
        raise NotFound(f"no policy is set for {name or 'the authority'}")
    return await answer_spent(request, caller, json_response(policy.to_json()))


@endpoint
async def set_policy(request: Request) -> Response:
    caller = await admin_caller(request)
    body = await read_json(request)
    event = await _act(
        caller,
        policies.set_policy,
        authority_of(request).runtime.store,
        _policy_scope(request),
        body,
        actor=caller.actor,
    )
    context_of(request).fields["position"] = event.position
    return json_response(event.data["policy"])


@endpoint
async def clear_policy(request: Request) -> Response:
    caller = await admin_caller(request)
    event = await _act(
        caller,
        policies.set_policy,
        authority_of(request).runtime.store,
        _policy_scope(request),
        None,
        actor=caller.actor,
    )
    context_of(request).fields["position"] = event.position
    return json_response({"status": "ok"})


# -- admins -----------------------------------------------------------------------------------


@endpoint
async def list_admins(request: Request) -> Response:
    caller = await admin_caller(request)
    found = authority_of(request).snapshot().admins
    listed = {"admins": [a.to_json() for a in found], "nextCursor": ""}
    return await answer_spent(request, caller, json_response(listed))


@endpoint
async def add_admin(request: Request) -> Response:
    caller = await admin_caller(request)
    caller.require_super()
    body = await read_json(request)
    subject, provisioner = body.get("subject"), body.get("provisioner")
    if not isinstance(subject, str) or not isinstance(provisioner, str):
        raise BadRequest("subject and provisioner must be strings")
    admin_type = body.get("type", admins.ADMIN)
    if not isinstance(admin_type, str):
        raise BadRequest("type must be ADMIN or SUPER_ADMIN")
    record = _record(request, provisioner)
    admin = await _act(
        caller,
        admins.add,
        authority_of(request).runtime.store,
        subject=subject,
        provisioner_id=record.id,
        provisioner_name=record.name,
        admin_type=admin_type,
        actor=caller.actor,
    )
    return json_response(admin.to_json(), 201)


@endpoint
async def remove_admin(request: Request) -> Response:
    caller = await admin_caller(request)
    caller.require_super()
    await _act(
        caller,
        admins.remove, authority_of(request).runtime.store, request.path_params["id"],
        actor=caller.actor,
    )  # fmt: skip
    return json_response({"status": "ok"})


routes = [
    Route("/admin/provisioners", list_provisioners, methods=["GET"]),
    Route("/admin/provisioners", add_provisioner, methods=["POST"]),
    Route("/admin/provisioners/{name}", get_provisioner, methods=["GET"]),
    Route("/admin/provisioners/{name}", update_provisioner, methods=["PUT", "PATCH"]),
    Route("/admin/provisioners/{name}", remove_provisioner, methods=["DELETE"]),
    Route("/admin/provisioners/{name}/policy", get_policy, methods=["GET"]),
    Route("/admin/provisioners/{name}/policy", set_policy, methods=["POST", "PUT"]),
    Route("/admin/provisioners/{name}/policy", clear_policy, methods=["DELETE"]),
    Route("/admin/policy", get_policy, methods=["GET"]),
    Route("/admin/policy", set_policy, methods=["POST", "PUT"]),
    Route("/admin/policy", clear_policy, methods=["DELETE"]),
    Route("/admin/admins", list_admins, methods=["GET"]),
    Route("/admin/admins", add_admin, methods=["POST"]),
    Route("/admin/admins/{id}", remove_admin, methods=["DELETE"]),
]
