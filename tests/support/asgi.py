"""The API in-process: requests through httpx's ASGI transport to `create_app`, no socket,
and the check every refusal must pass (step-ca's error body, nothing written)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from ca.api.app import create_app
from ca.authority.authority import Authority
from support.ca_server import CAHome, event_count

BASE = "https://localhost"


def call(
    authority: Authority, method: str, path: str, *, base_url: str = BASE, **kwargs: Any
) -> httpx.Response:
    """One request to a fresh app over `authority`, as a client at `base_url` sends it."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(authority))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(send())


def assert_refused(ca: CAHome, status: int, send: Callable[[], httpx.Response]) -> str:
    """`send()` must be refused with `status` and step-ca's error body, writing nothing to
    the ledger of `ca`; the message, for the caller to check."""
    before = event_count(ca)
    response = send()
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status", "message"}
    assert body["status"] == status
    assert event_count(ca) == before
    return str(body["message"])
