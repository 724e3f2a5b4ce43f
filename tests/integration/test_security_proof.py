"""Findings 3 and 4 of the security review: `GET /ledger/proof`, against `ledgerca serve`.

Anyone may ask for a proof; a public proof carries the event's hash, position, audit path and
checkpoint, never the event's contents (admin subjects, remote addresses, policies…). The
record comes only to an authenticated admin, whose token is spent like any other. Bad query
parameters are 400s that write nothing; the concurrency bound answers 503 rather than queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.ca_server import (
    PASSWORD,
    CAHome,
    RunningCA,
    event_count,
    init_ca,
    ledgerca,
    mint_token,
    provisioner_key,
    request_certificate,
    start_ca,
)

from ca.api import limits
from ca.api.app import create_app
from ca.authority.authority import Authority
from ca.home import Home
from ca.runtime import open_runtime
from ledger import EventStore, create_engine
from projections import events as ev

AUDITOR = "auditor@secret.internal"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA]]:
    ca = init_ca(tmp_path_factory.mktemp("proof"))
    ledgerca("admin", "add", AUDITOR, "--provisioner", "admin", "--super", home=ca.home)
    running = start_ca(ca)
    try:
        response, _ = request_certificate(running, "hidden-host.internal")
        assert response.status_code == 201, response.text
        ledgerca("audit", "checkpoint", "--new", "--password-file", str(ca.password_file),
                 home=ca.home)  # fmt: skip
        yield ca, running
    finally:
        running.stop()


def _events(ca: CAHome, kind: str) -> list[Any]:
    engine = create_engine(f"sqlite:///{ca.home / 'db' / 'ledger.sqlite'}")
    try:
        return list(EventStore(engine).read(types=[kind]))
    finally:
        engine.dispose()


def _admin_headers(running: RunningCA) -> dict[str, str]:
    key, kid = provisioner_key(running.ca)
    token = mint_token(key, kid, subject=AUDITOR, audience=f"{running.url}/admin")
    return {"Authorization": f"Bearer {token}"}


def test_a_public_proof_carries_the_hash_and_path_but_no_event_contents(
    served: tuple[CAHome, RunningCA],
) -> None:
    ca, running = served
    added = _events(ca, ev.AdminAdded.TYPE)[0]
    issued = _events(ca, ev.X509Issued.TYPE)[0]
    with running.client() as client:
        bodies = [
            client.get("/ledger/proof", params={"position": str(added.position)}),
            client.get("/1.0/ledger/proof", params={"serial": issued.data["serial"]}),
        ]
    for response, event in zip(bodies, (added, issued), strict=True):
        assert response.status_code == 200, response.text
        proof = response.json()
        assert proof["position"] == event.position and proof["hash"] == event.hash
        assert "event" not in proof
        text = response.text
        for secret in (AUDITOR, "hidden-host.internal", "127.0.0.1", "request_id"):
            assert secret not in text


def test_the_record_goes_only_to_an_admin_and_spends_the_token(
    served: tuple[CAHome, RunningCA],
) -> None:
    ca, running = served
    added = _events(ca, ev.AdminAdded.TYPE)[0]
    query = {"position": str(added.position), "include": "event"}
    before = event_count(ca)
    with running.client() as client:
        anonymous = client.get("/ledger/proof", params=query)
    assert anonymous.status_code == 401, anonymous.text
    assert event_count(ca) == before
    headers = _admin_headers(running)
    with running.client(headers=headers) as client:
        granted = client.get("/ledger/proof", params=query)
        replayed = client.get("/ledger/proof", params=query)
    assert granted.status_code == 200, granted.text
    record = granted.json()["event"]
    assert record["type"] == ev.AdminAdded.TYPE and record["data"]["subject"] == AUDITOR
    assert replayed.status_code == 401, replayed.text
    assert event_count(ca) == before + 1  # the token's spend, nothing else


@pytest.mark.parametrize(
    "query",
    [
        {"position": "9" * 5000},
        {"position": "99999999999999999999"},
        {"position": "-1"},
        {"position": "٣"},
        {"position": "1 "},
        {"serial": "abc"},
        {"serial": "9" * 5000},
        {"position": "1", "serial": "1"},
        {"position": "1", "include": "everything"},
    ],
)
def test_bad_proof_parameters_are_400s_that_write_nothing(
    served: tuple[CAHome, RunningCA], query: dict[str, str]
) -> None:
    ca, running = served
    before = event_count(ca)
    with running.client() as client:
        response = client.get("/ledger/proof", params=query)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"status", "message"}
    assert event_count(ca) == before


def test_proofs_at_their_bound_are_refused_at_once_with_503(
    served: tuple[CAHome, RunningCA],
) -> None:
    """Through the application in-process, with every proof slot of this process taken."""
    ca, _running = served
    authority = Authority(open_runtime(Home(ca.home)), PASSWORD)
    app = create_app(authority)

    async def proof() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://ca.test") as client:
            return await client.get("/ledger/proof", params={"position": "1"})

    try:
        with contextlib.ExitStack() as held:
            for _ in range(limits.PROOFS.size):
                held.enter_context(limits.PROOFS)
            refused = asyncio.run(proof())
        answered = asyncio.run(proof())  # the slots came back
    finally:
        authority.close()
    assert refused.status_code == 503
    assert refused.headers["Retry-After"].isdigit()
    assert "ledger proofs: 4 requests already in progress" in refused.json()["message"]
    assert answered.status_code == 200, answered.text
