"""The HTTP API in-process: the Starlette app through `httpx.ASGITransport`, no socket.

Each route's status codes, bodies and step-ca error JSON (`{"status", "message"}`), and for
every refusal the ledger unchanged. Cases that need real TLS (mTLS renewal, rekey, the
server's own certificate) or real clients stay in `tests/integration/`.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from joserfc.jwk import ECKey
from support.asgi import BASE, assert_refused, call
from support.ca_server import (
    PASSWORD,
    CAHome,
    event_count,
    init_ca,
    make_csr,
    mint_token,
    provisioner_key,
)

from ca.authority.authority import Authority
from ca.home import Home
from ca.runtime import open_runtime


@dataclass
class API:
    ca: CAHome
    authority: Authority
    key: ECKey
    kid: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return call(self.authority, method, path, **kwargs)

    def token(self, subject: str, operation: str = "sign", **kwargs: Any) -> str:
        audience = f"{BASE}/1.0/{operation}"
        return mint_token(self.key, self.kid, subject=subject, audience=audience, **kwargs)

    def sign(self, subject: str) -> httpx.Response:
        csr, _ = make_csr(subject)
        return self.call("POST", "/1.0/sign", json={"csr": csr, "ott": self.token(subject)})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[API]:
    ca = init_ca(tmp_path_factory.mktemp("api"))
    authority = Authority(open_runtime(Home(ca.home)), PASSWORD)
    key, kid = provisioner_key(ca)
    try:
        yield API(ca, authority, key, kid)
    finally:
        authority.close()


def refused(api: API, status: int, method: str, path: str, **kwargs: Any) -> str:
    """Send a request that must be refused with `status` and step-ca's error body, writing
    nothing; the message, for the caller to check."""
    return assert_refused(api.ca, status, lambda: api.call(method, path, **kwargs))


def test_health_and_version_answer_under_both_prefixes(api: API) -> None:
    # /version names the installed distribution (what `pip show ledgerca` says), and tells
    # step's bootstrap that no client certificate is needed on every connection.
    installed = importlib.metadata.version("ledgerca")
    for prefix in ("", "/1.0"):
        assert api.call("GET", f"{prefix}/health").json() == {"status": "ok"}
        assert api.call("GET", f"{prefix}/version").json() == {
            "version": installed,
            "requireClientAuthentication": False,
        }


def test_roots_are_served_and_an_unknown_root_is_a_404(api: API) -> None:
    root = x509.load_pem_x509_certificate(api.ca.root.read_bytes())
    fingerprint = root.fingerprint(hashes.SHA256()).hex()
    response = api.call("GET", f"/root/{fingerprint}")
    assert response.status_code == 200
    assert x509.load_pem_x509_certificate(response.json()["ca"].encode()) == root
    roots = api.call("GET", "/roots").json()
    assert [x509.load_pem_x509_certificate(c.encode()) for c in roots["crts"]] == [root]
    assert api.call("GET", "/roots.pem").content.strip() == api.ca.root.read_bytes().strip()
    refused(api, 404, "GET", "/root/" + "0" * 64)


def test_sign_returns_the_chain_and_records_one_event(api: API) -> None:
    before = event_count(api.ca)
    response = api.sign("in-process.example")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"crt", "ca", "certChain", "tlsOptions"}
    leaf = x509.load_pem_x509_certificate(body["crt"].encode())
    intermediate = x509.load_pem_x509_certificate(body["ca"].encode())
    leaf.verify_directly_issued_by(intermediate)
    assert body["certChain"] == [body["crt"], body["ca"]]
    assert body["tlsOptions"]["renegotiation"] is False
    assert event_count(api.ca) == before + 1


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "decoding json"),
        (b"[]", 400, "object"),
        (json.dumps({"ott": "x"}).encode(), 400, "csr"),
        (json.dumps({"csr": "-----BEGIN nonsense", "ott": "x"}).encode(), 400, "csr"),
    ],
)
def test_sign_refuses_malformed_requests(api: API, body: bytes, status: int, words: str) -> None:
    message = refused(api, status, "POST", "/1.0/sign", content=body)
    assert words.lower() in message.lower()


def test_sign_refuses_a_bad_token_and_a_token_used_twice(api: API) -> None:
    csr, _ = make_csr("twice.example")
    refused(api, 401, "POST", "/1.0/sign", json={"csr": csr, "ott": "not.a.token"})
    other = api.token("twice.example", "revoke")  # the wrong audience
    refused(api, 401, "POST", "/1.0/sign", json={"csr": csr, "ott": other})
    ott = api.token("twice.example")
    assert api.call("POST", "/1.0/sign", json={"csr": csr, "ott": ott}).status_code == 201
    refused(api, 401, "POST", "/1.0/sign", json={"csr": csr, "ott": ott})


def test_a_csr_naming_what_the_token_does_not_is_forbidden(api: API) -> None:
    csr, _ = make_csr("other.example")
    refused(api, 403, "POST", "/1.0/sign", json={"csr": csr, "ott": api.token("mine.example")})


def test_revoke_with_a_token_then_again(api: API) -> None:
    issued = api.sign("revoked.example").json()
    serial = str(x509.load_pem_x509_certificate(issued["crt"].encode()).serial_number)
    body = {"serial": serial, "ott": api.token(serial, "revoke"), "reasonCode": 1}
    before = event_count(api.ca)
    response = api.call("POST", "/1.0/revoke", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}
    assert event_count(api.ca) == before + 1
    again = {"serial": serial, "ott": api.token(serial, "revoke")}
    assert "already revoked" in refused(api, 400, "POST", "/1.0/revoke", json=again)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"serial": "not-a-number", "ott": "x"}, 400),
        ({"serial": "123", "reasonCode": 7, "ott": "x"}, 400),
        ({"serial": "123"}, 400),  # neither a token nor a client certificate
        ({"serial": "123", "ott": "not.a.token"}, 401),
    ],
)
def test_revoke_refuses_bad_requests(api: API, body: dict[str, Any], status: int) -> None:
    refused(api, status, "POST", "/1.0/revoke", json=body)


def test_a_token_for_a_serial_this_ca_never_issued_revokes_it(api: API) -> None:
    # As step-ca does: how operators pre-revoke (more in test_revoke_unissued.py).
    body = {"serial": "4242", "ott": api.token("4242", "revoke")}
    before = event_count(api.ca)
    response = api.call("POST", "/1.0/revoke", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}
    assert event_count(api.ca) == before + 1


def test_renew_and_rekey_need_a_credential(api: API) -> None:
    refused(api, 401, "POST", "/1.0/renew")
    refused(api, 401, "POST", "/1.0/rekey", json={"csr": make_csr("k.example")[0]})
    bearer = {"Authorization": "Bearer not.a.token"}
    refused(api, 401, "POST", "/1.0/renew", headers=bearer)


def test_provisioners_are_listed_and_an_unknown_key_id_is_a_404(api: API) -> None:
    listed = api.call("GET", "/1.0/provisioners").json()
    (provisioner,) = listed["provisioners"]
    assert (provisioner["name"], provisioner["type"]) == ("admin", "JWK")
    response = api.call("GET", f"/1.0/provisioners/{api.kid}/encrypted-key")
    assert response.status_code == 200
    assert response.json()["key"]
    refused(api, 404, "GET", "/1.0/provisioners/no-such-kid/encrypted-key")


def test_ssh_routes_say_the_ssh_ca_is_not_enabled(api: API) -> None:
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGuNqSeZWe1RIkWyvTgm4ZlDSXVJrmFvKkXNEmAebJqs"
    step = {"step": {"ssh": {"certType": "user", "keyID": "alice", "principals": ["alice"]}}}
    ott = api.token("alice", "ssh/sign", extra=step)
    body = {"publicKey": public, "ott": ott, "certType": "user"}
    refused(api, 400, "POST", "/1.0/ssh/sign", content=b"{")
    refused(api, 501, "POST", "/1.0/ssh/sign", json=body)


def test_the_admin_api_needs_an_admin(api: API) -> None:
    refused(api, 401, "GET", "/admin/provisioners")
    headers = {"Authorization": api.token("nobody", "admin")}
    refused(api, 401, "GET", "/admin/admins", headers=headers)


def test_an_unknown_route_is_a_404_in_step_cas_shape(api: API) -> None:
    refused(api, 404, "GET", "/1.0/no-such-route")


def test_the_served_intermediate_is_the_active_one(api: API) -> None:
    pem = api.call("GET", "/1.0/intermediates.pem").content
    served = x509.load_pem_x509_certificates(pem)
    expected = x509.load_pem_x509_certificate(api.ca.intermediate.read_bytes())
    assert served[-1].public_bytes(serialization.Encoding.DER) == expected.public_bytes(
        serialization.Encoding.DER
    )
