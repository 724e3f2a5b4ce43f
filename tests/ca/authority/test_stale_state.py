"""Issuance decides on a cached snapshot; a change made elsewhere still binds it at once.

An instance that has just served a request holds the snapshot of that moment. Here the
changes come from another process (the CLI) while nothing else in this process refreshes the
cache, so only issuance's own two checks can notice: the precondition on its append, and the
re-check of a refusal against the current state.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from joserfc.jwk import ECKey
from support.ca_server import (
    PASSWORD,
    CAHome,
    event_count,
    init_ca,
    ledgerca,
    make_csr,
    mint_token,
)

from ca.authority.authority import Authority
from ca.authority.recorder import RequestInfo
from ca.authority.x509_issuance import SignRequest
from ca.errors import AuthError
from ca.home import Home
from ca.provisioners.jwk_keys import decrypt_provisioner_key
from ca.runtime import open_runtime


def _request(ca: CAHome, issuer: str, password: bytes) -> SignRequest:
    data = ca.provisioner(issuer)
    key = decrypt_provisioner_key(data["encrypted_key"], password, name=issuer)
    assert isinstance(key, ECKey)
    token = mint_token(
        key,
        str(data["key"]["kid"]),
        subject="svc.example",
        issuer=issuer,
        audience=f"https://localhost:{ca.port}/1.0/sign",
    )
    csr, _ = make_csr("svc.example")
    return SignRequest(csr=csr, ott=token, not_before="", not_after="", template_data={})


def test_a_change_made_elsewhere_binds_issuance_from_a_cached_snapshot(
    tmp_path: Path, ca_database: str | None
) -> None:
    ca = init_ca(tmp_path / "ca", database=ca_database)
    authority = Authority(open_runtime(Home(ca.home)), PASSWORD)
    try:
        password = tmp_path / "web.pw"
        password.write_bytes(b"web-password")
        ledgerca("provisioner", "add", "web", "--password-file", str(password), home=ca.home)
        # The cached snapshot has no `web`: the refusal is checked against the current state,
        # which has it, and the request is decided again.
        issued = asyncio.run(
            authority.sign_async(_request(ca, "web", b"web-password"), RequestInfo("added"))
        )
        assert issued.provisioner == "web"

        request = _request(ca, "web", b"web-password")
        ledgerca("provisioner", "remove", "web", home=ca.home)
        before = event_count(ca)
        # The cached snapshot still has `web` and signs; the append's precondition sees the
        # removal under the ledger lock, and the request decided again is refused.
        with pytest.raises(AuthError, match="no provisioner"):
            asyncio.run(authority.sign_async(request, RequestInfo("removed")))
        assert event_count(ca) == before
    finally:
        authority.close()
