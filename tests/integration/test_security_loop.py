"""Finding 7 of the security review: issuance work cannot hold the CA hostage.

A template looping over requester `templateData` ran for seconds on the event loop while
`/health` waited. Now a rendering has a budget (its loops, CPU time and the size of what it
builds; see ca.templates.sandbox) and issuance's CPU work runs in a pool of its own threads,
so the loop keeps answering while a request is being prepared.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from support.ca_server import (
    PASSWORD,
    CAHome,
    RunningCA,
    event_count,
    init_ca,
    ledgerca,
    make_csr,
    mint_token,
    provisioner_key,
    start_ca,
)

from ca.api.app import create_app
from ca.authority.authority import Authority, utcnow
from ca.home import Home
from ca.runtime import open_runtime

LOOPING = (
    "{% set names = insecure.user.names|default([]) %}"
    "{% for a in names %}{% for b in names %}{% endfor %}{% endfor %}"
    '{"subject": {{ subject }}, "sans": {{ sans }}, "extKeyUsage": ["serverAuth"]}'
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA]]:
    ca = init_ca(tmp_path_factory.mktemp("loop"))
    template = ca.home.parent / "looping.tpl"
    template.write_text(LOOPING)
    ledgerca(
        "provisioner", "add", "looping", "--password-file", str(ca.provisioner_password_file),
        "--x509-template", str(template), home=ca.home,
    )  # fmt: skip
    running = start_ca(ca)
    try:
        yield ca, running
    finally:
        running.stop()


def _sign(running: RunningCA, items: int) -> httpx.Response:
    key, kid = provisioner_key(running.ca, "looping")
    token = mint_token(
        key, kid, subject="svc.example", issuer="looping", audience=f"{running.url}/1.0/sign"
    )
    csr, _ = make_csr("svc.example")
    body = {"csr": csr, "ott": token, "templateData": {"names": list(range(items))}}
    with running.client() as client:
        return client.post("/1.0/sign", json=body)


def test_a_template_looping_over_request_data_gets_a_400_and_writes_nothing(
    served: tuple[CAHome, RunningCA],
) -> None:
    ca, running = served
    before = event_count(ca)
    # 5,000 names fit in a request body; the nested loop would run 25 million steps.
    response = _sign(running, 5_000)
    assert response.status_code == 400, response.text
    assert "template: its loops ran more than 10000 steps" in response.json()["message"]
    assert event_count(ca) == before


def test_the_same_template_issues_for_data_within_the_budget(
    served: tuple[CAHome, RunningCA],
) -> None:
    ca, running = served
    before = event_count(ca)
    response = _sign(running, 50)
    assert response.status_code == 201, response.text
    assert event_count(ca) == before + 1


class HeldClock:
    """The authority's clock, which can hold the next issuance while it is being prepared:
    the request is then provably mid-preparation for as long as the test wants."""

    def __init__(self) -> None:
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.holding = False

    def __call__(self) -> datetime:
        if self.hold:
            self.hold = False
            self.holding = True
            self.entered.set()
            # Bounded only so that a broken build fails instead of hanging for ever.
            self.release.wait(timeout=20)
            self.holding = False
        return utcnow()


def test_health_answers_while_an_issuance_is_being_prepared(tmp_path: Path) -> None:
    ca = init_ca(tmp_path / "ca")
    clock = HeldClock()
    authority = Authority(open_runtime(Home(ca.home)), PASSWORD, clock=clock)
    app = create_app(authority)
    key, kid = provisioner_key(ca)
    token = mint_token(
        key, kid, subject="svc.example", audience=f"https://localhost:{ca.port}/1.0/sign"
    )
    csr, _ = make_csr("svc.example")

    async def scenario() -> tuple[bool, int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://ca.test") as client:
            clock.hold = True
            sign = asyncio.create_task(client.post("/1.0/sign", json={"csr": csr, "ott": token}))
            # The issuance has reached its preparation and is held there...
            await asyncio.to_thread(clock.entered.wait, 20)
            # ...and the loop still answers: had the preparation run on it, this request
            # would have had to wait for the release.
            health = await client.get("/health")
            held_while_answering = clock.holding
            clock.release.set()
            return held_while_answering, health.status_code, (await sign).status_code

    try:
        held_while_answering, health_status, sign_status = asyncio.run(scenario())
    finally:
        authority.close()
    assert health_status == 200
    assert held_while_answering
    assert sign_status == 201
