"""`POST /ssh/bastion`, as step-ca answers it: what `step ssh proxycommand` asks before it
connects to a host.

Request `{"user": "..", "hostname": ".."}`; answer 200 `{"hostname": "..", "bastion":
{"hostname", "user", "port", "cmd", "flags"}}`, or `{"hostname": ".."}` alone when the host
is reached directly. 400 for a missing host name, 404 when this CA has no SSH keys
(step-ca: "ssh is not configured"). The choice is `ca.ssh.bastion`'s.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ca.api.endpoint import authority_of, endpoint, read_json, string_field
from ca.api.responses import json_response
from ca.errors import BadRequest, NotFound
from ca.ssh.bastion import bastion_for, bastion_json


@endpoint
async def bastion(request: Request) -> Response:
    body = await read_json(request)
    string_field(body, "user")  # step sends it; step-ca's choice does not depend on it
    hostname = string_field(body, "hostname")
    if not hostname:
        raise BadRequest("missing or empty hostname")
    authority = authority_of(request)
    snapshot = authority.snapshot()
    if not snapshot.ssh_user_keys and not snapshot.ssh_host_keys:
        raise NotFound("ssh is not configured")
    answer: dict[str, object] = {"hostname": hostname}
    chosen = bastion_for(authority.runtime.config.ssh_bastions, hostname)
    if chosen is not None:
        answer["bastion"] = bastion_json(chosen)
    return json_response(answer)


routes = [Route("/ssh/bastion", bastion, methods=["POST"])]
