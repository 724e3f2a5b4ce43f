"""`GET /ledger/checkpoint` and `GET /ledger/proof`: the audit trail, for anyone to check.

The checkpoint is the newest one recorded (with the ledger's public key, for convenience —
an auditor should pin the key from elsewhere). A proof is built against that checkpoint:
`?serial=S` proves the certificate's issuance event, `?position=N` any event.

Anyone may ask for a proof, and a public proof carries only what verification needs: the
event's chain hash, position, audit path and the checkpoint. Events hold admin subjects,
host names, policies, templates and remote addresses, so the event's record
(`?include=event`) is given only to an authenticated admin (token or client certificate,
as for `/admin`; the token is spent).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.admin import admin_caller, answer_spent
from ca.api.endpoint import context_of, endpoint
from ca.api.limits import PROOFS, limited
from ca.api.query import query_int
from ca.api.responses import json_response
from ca.audit import checkpoints, proofs
from ca.audit.checkpoints import Checkpoint
from ca.audit.errors import AuditError, NotInLedger
from ca.audit.ledger_key import active_ledger_key
from ca.authority.authority import Authority
from ca.errors import BadRequest
from ca.keys.ids import public_pem


def _latest(authority: Authority) -> tuple[Checkpoint, str | None]:
    with authority.runtime.engine.connect() as connection:
        found = checkpoints.latest(connection)
        key = active_ledger_key(connection)
    if found is None:
        raise NotInLedger("no checkpoint has been recorded yet")
    return found, public_pem(key.public_key) if key is not None else None


@endpoint
async def checkpoint(request: Request) -> Response:
    authority: Authority = request.app.state.authority
    found, public = await run_in_threadpool(_latest, authority)
    context_of(request).fields["tree_size"] = found.tree_size
    return json_response({**found.to_file(), "public_key": public})


def _proof(
    authority: Authority, serial: str | None, position: int | None, with_event: bool
) -> dict[str, Any]:
    if (serial is None) == (position is None):
        raise AuditError("give exactly one of serial and position")
    engine = authority.runtime.engine
    at = proofs.issuance_position(engine, serial) if serial is not None else position
    assert at is not None
    found, _public = _latest(authority)
    return proofs.build(engine, at, found, with_event=with_event)


@endpoint
@limited(PROOFS)
async def proof(request: Request) -> Response:
    authority: Authority = request.app.state.authority
    params = request.query_params
    include = params.get("include", "")
    if include not in ("", "event"):
        raise BadRequest("include must be 'event'")
    caller = await admin_caller(request) if include else None
    position = query_int(request, "position")
    body = await run_in_threadpool(
        _proof, authority, params.get("serial"), position, caller is not None
    )
    context_of(request).fields["position"] = body["position"]
    response = json_response(body)
    return await answer_spent(request, caller, response) if caller is not None else response


routes = [
    Route("/ledger/checkpoint", checkpoint, methods=["GET"]),
    Route("/ledger/proof", proof, methods=["GET"]),
]
