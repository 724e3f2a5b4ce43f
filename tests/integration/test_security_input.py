"""Issue #13: bad input that got a 500 (finding 8), a client's X-Request-Id (finding 9) and
the database's file modes (finding 12), against a running `ledgerca serve`.

Every refusal is step-ca's error body with a 4xx (OCSP: `malformedRequest`) and writes
nothing: `changes()` counts the ledger's events except the CRLs and checkpoints the server
publishes on its own.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import ssl
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from joserfc.jwk import ECKey
from starlette.routing import Route
from support.ca_server import (
    CAHome,
    RunningCA,
    init_ca,
    ledgerca,
    make_csr,
    mint_token,
    provisioner_key,
    request_certificate,
    start_ca,
)
from support.ssh import keygen, needs_ssh_keygen, public_blob

from ca.api import admin, crl, ledger, lifecycle, provisioners, roots, sign, ssh
from ca.api import ocsp as ocsp_api

SUPER = "root@example.internal"
DEEP = b'{"a":' * 2000 + b"1" + b"}" * 2000
"""2000 levels: past Python's recursion limit, well inside the 64 KiB body limit."""
SURROGATE = "\ud800"


@dataclass
class Server:
    ca: CAHome
    running: RunningCA
    work: Path

    @property
    def sqlite_file(self) -> Path:
        return self.ca.home / "db" / "ledger.sqlite"

    def changes(self) -> int:
        """Events a request could have written (not CRLs or checkpoints)."""
        return len(self.events(exclude=("crl.published", "ledger.checkpoint")))

    def events(self, *, of_type: str | None = None, exclude: tuple[str, ...] = ()) -> list[Any]:
        with sqlite3.connect(self.sqlite_file) as db:
            rows = db.execute("SELECT type, data, actor FROM events ORDER BY position")
            found = [(kind, json.loads(data), json.loads(actor)) for kind, data, actor in rows]
        return [e for e in found if (of_type is None or e[0] == of_type) and e[0] not in exclude]

    def admin(self) -> httpx.Client:
        """The super admin, a fresh token per request as step's admin client signs them."""
        key, kid = provisioner_key(self.ca)

        def authorize(request: httpx.Request) -> None:
            token = mint_token(key, kid, subject=SUPER, audience=f"{self.running.url}/admin")
            request.headers["Authorization"] = f"Bearer {token}"

        return self.running.client(event_hooks={"request": [authorize]})

    def leaf(self, subject: str) -> tuple[int, tuple[Path, Path]]:
        """A certificate of ours: its serial, and its chain and key files for mTLS."""
        response, private = request_certificate(self.running, subject)
        assert response.status_code == 201, response.text
        chain = response.json()["certChain"]
        crt, key = self.work / f"{subject}.crt", self.work / f"{subject}.key"
        crt.write_text("".join(chain))
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return x509.load_pem_x509_certificate(chain[0].encode()).serial_number, (crt, key)

    def mtls(self, files: tuple[Path, Path]) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca.root))
        context.load_cert_chain(*files)
        return httpx.Client(base_url=self.running.url, verify=context, timeout=30)

    def token(self, subject: str, op: str, **extra: Any) -> str:
        key, kid = provisioner_key(self.ca)
        return mint_token(
            key, kid, subject=subject, audience=f"{self.running.url}/1.0/{op}", extra=extra
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("security-input")
    ca = init_ca(base)
    ledgerca("admin", "add", SUPER, "--provisioner", "admin", "--super", home=ca.home)
    ledgerca("ssh", "init", "--password-file", str(ca.password_file), home=ca.home)
    running = start_ca(ca)
    try:
        yield Server(ca, running, base)
    finally:
        running.stop()


def escaped(body: dict[str, Any]) -> dict[str, Any]:
    """httpx arguments for a JSON body with non-ASCII escaped, the way Go and step write it
    (httpx's own `json=` writes UTF-8, which cannot carry a lone surrogate at all)."""
    return {"content": json.dumps(body), "headers": {"Content-Type": "application/json"}}


def refused(response: httpx.Response, status: int, part: str = "") -> str:
    """Assert step-ca's error body with `status`; return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status", "message"} and body["status"] == status, body
    assert part in body["message"], body
    return str(body["message"])


# -- lone surrogates: UnicodeEncodeError while hashing -------------------------------------


def test_a_lone_surrogate_in_a_revoke_reason_is_a_400(server: Server) -> None:
    serial, _ = server.leaf("reason.example")
    before = server.changes()
    with server.running.client() as http:
        response = http.post(
            "/1.0/revoke",
            **escaped(
                {
                    "serial": str(serial),
                    "ott": server.token(str(serial), "revoke"),
                    "reasonCode": 1,
                    "reason": f"key lost {SURROGATE}",
                }
            ),
        )
    refused(response, 400, "lone UTF-16 surrogate")
    assert server.changes() == before


def test_a_lone_surrogate_in_a_token_jti_is_refused(server: Server) -> None:
    token = server.token("jti.example", "sign", jti=f"jti-{SURROGATE}")
    before = server.changes()
    with server.running.client() as http:
        response = http.post("/1.0/sign", json={"csr": make_csr("jti.example")[0], "ott": token})
    refused(response, 401)
    assert server.changes() == before
    assert "lone UTF-16 surrogate" in server.running.output()


@needs_ssh_keygen
def test_a_lone_surrogate_in_an_ssh_key_id_is_a_400(server: Server) -> None:
    key = keygen(server.work, "surrogate-id")
    token = server.token("alice", "ssh/sign", step={"ssh": {"keyID": f"alice{SURROGATE}"}})
    before = server.changes()
    with server.running.client() as http:
        response = http.post("/1.0/ssh/sign", json={"publicKey": public_blob(key), "ott": token})
        refused(response, 401)
        response = http.post(
            "/1.0/ssh/sign",
            **escaped(
                {
                    "publicKey": public_blob(key),
                    "ott": server.token("alice", "ssh/sign"),
                    "keyID": f"alice{SURROGATE}",
                }
            ),
        )
        refused(response, 400, "lone UTF-16 surrogate")
    assert server.changes() == before


def test_a_lone_surrogate_in_an_admin_subject_is_a_400(server: Server) -> None:
    before = server.changes()
    with server.admin() as client:
        response = client.post(
            "/admin/admins", **escaped({"subject": f"ops{SURROGATE}", "provisioner": "admin"})
        )
    refused(response, 400, "lone UTF-16 surrogate")
    assert server.changes() == before


# -- deep nesting: RecursionError on every POST ----------------------------------------------

BODILESS = {"/renew", "/re-sign"}
"""POST routes that never read a body (step's client sends none)."""
NOT_JSON = {"/ocsp", "/ocsp/{request:path}"}
"""The OCSP responder reads DER: its errors are OCSP responses (tested below)."""


def body_routes() -> list[tuple[str, str]]:
    """(method, path) of every route that reads a request body, from the API's own tables."""
    found = []
    for module in (roots, provisioners, sign, lifecycle, crl, ocsp_api, ledger, admin, ssh):
        for route in module.routes:
            assert isinstance(route, Route)
            for method in sorted((route.methods or set()) & {"POST", "PUT", "PATCH"}):
                if route.path not in BODILESS | NOT_JSON:
                    found.append((method, route.path))
    return found


@pytest.mark.parametrize(("method", "path"), body_routes())
def test_deeply_nested_json_is_a_400_on_every_route_with_a_body(
    server: Server, method: str, path: str
) -> None:
    url = "/1.0" + path.replace("{name}", "admin").replace("{type}", "user")
    headers = {"Content-Type": "application/json"}
    before = server.changes()
    if path.startswith("/admin/"):
        with server.admin() as client:
            response = client.request(method, url, content=DEEP, headers=headers)
    elif path == "/rekey":  # mTLS comes first there
        _, files = server.leaf(f"deep-{uuid.uuid4().hex[:8]}.example")
        before = server.changes()
        with server.mtls(files) as http:
            response = http.request(method, url, content=DEEP, headers=headers)
    else:
        with server.running.client() as http:
            response = http.request(method, url, content=DEEP, headers=headers)
    refused(response, 400, "nested deeper than 32 levels")
    assert server.changes() == before


def test_nesting_is_bounded_at_32_levels(server: Server) -> None:
    def nested(levels: int) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for _ in range(levels - 2):
            value = {"k": value}
        return {"csr": "not a PEM", "templateData": value}

    with server.running.client() as http:
        refused(http.post("/1.0/sign", json=nested(32)), 400, "invalid csr")
        refused(http.post("/1.0/sign", json=nested(33)), 400, "nested deeper than 32 levels")


# -- media types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_is_a_415(server: Server, content_type: str) -> None:
    body = json.dumps({"csr": make_csr("form.example")[0], "ott": "x.y.z"})
    before = server.changes()
    with server.running.client() as http:
        response = http.post("/1.0/sign", content=body, headers={"Content-Type": content_type})
    refused(response, 415, f"Content-Type '{content_type}' is not supported")
    assert server.changes() == before


def test_json_with_parameters_or_without_a_content_type_is_read(server: Server) -> None:
    csr = make_csr("typed.example")[0]
    body = json.dumps({"csr": csr, "ott": server.token("typed.example", "sign")})
    with server.running.client() as http:
        typed = http.post(
            "/1.0/sign", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert typed.status_code == 201, typed.text
        # step's admin client sends PUT and PATCH bodies without one; so may any script.
        body = json.dumps({"csr": csr, "ott": server.token("typed.example", "sign")})
        untyped = http.post("/1.0/sign", content=body)
        assert "content-type" not in untyped.request.headers
        assert untyped.status_code == 201, untyped.text


def test_a_client_certificate_alone_needs_a_declared_json_body(server: Server) -> None:
    """A browser attaches its client certificate to a cross-site POST, and one without a
    Content-Type needs no preflight: it must not revoke the user's certificate."""
    serial, files = server.leaf("browser.example")
    body = json.dumps({"serial": str(serial), "reasonCode": 1}).encode()
    before = server.changes()
    with server.mtls(files) as http:
        response = http.post("/1.0/revoke", content=body)
        refused(response, 415, "Content-Type: application/json")
        assert server.changes() == before
        accepted = http.post(
            "/1.0/revoke", content=body, headers={"Content-Type": "application/json"}
        )
    assert accepted.status_code == 200, accepted.text
    assert server.changes() == before + 1


# -- the admin API's inputs ----------------------------------------------------------------


def new_public_jwk() -> dict[str, Any]:
    key = ECKey.generate_key("P-256")
    public = dict(key.as_dict(private=False))
    public["kid"] = key.thumbprint()
    return public


def test_a_jwk_with_a_float_member_is_a_400(server: Server) -> None:
    before = server.changes()
    with server.admin() as client:
        response = client.post(
            "/admin/provisioners",
            json={"type": "JWK", "name": "floaty", "key": {**new_public_jwk(), "x-rank": 1.5}},
        )
    refused(response, 400, "floats are not allowed")
    assert server.changes() == before


def test_duplicate_provisioner_names_and_key_ids_are_400s_and_log_no_parameters(
    server: Server,
) -> None:
    """Already 4xx before issue #13; kept so the IntegrityError path never returns."""
    public = new_public_jwk()
    with server.admin() as client:
        added = client.post(
            "/admin/provisioners", json={"type": "JWK", "name": "once", "key": public}
        )
        assert added.status_code == 201, added.text
        before = server.changes()
        same_name = {"type": "JWK", "name": "once", "key": new_public_jwk()}
        refused(client.post("/admin/provisioners", json=same_name), 400, "already exists")
        same_kid = {"type": "JWK", "name": "twice", "key": public}
        refused(client.post("/admin/provisioners", json=same_kid), 400, "already exists")
    assert server.changes() == before
    assert "SQL parameters" not in server.running.output()


# -- OCSP serials outside RFC 5280 ---------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def ocsp_request(serial: int) -> bytes:
    """A DER OCSPRequest for `serial` under an issuer of all-zero hashes, made by hand:
    cryptography's builder refuses the serials this is about."""
    sha1 = _tlv(0x30, bytes.fromhex("06052b0e03021a0500"))
    integer = _tlv(0x02, serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True))
    cert_id = _tlv(0x30, sha1 + _tlv(0x04, bytes(20)) + _tlv(0x04, bytes(20)) + integer)
    return _tlv(0x30, _tlv(0x30, _tlv(0x30, _tlv(0x30, cert_id))))


@pytest.mark.parametrize(
    "serial", [-1, -(2**64), 0, 2**160, 10**4400], ids=["-1", "-2^64", "0", "2^160", "4401-digits"]
)
@pytest.mark.parametrize("form", ["post", "get"])
def test_an_ocsp_serial_outside_rfc_5280_is_malformed_request(
    server: Server, serial: int, form: str
) -> None:
    der = ocsp_request(serial)
    before = server.changes()
    with server.running.client() as http:
        if form == "post":
            response = http.post(
                "/ocsp", content=der, headers={"Content-Type": "application/ocsp-request"}
            )
        else:
            response = http.get(f"/ocsp/{base64.urlsafe_b64encode(der).decode()}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ocsp-response"
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert server.changes() == before


def test_the_largest_rfc_5280_serial_is_still_answered(server: Server) -> None:
    with server.running.client() as http:
        response = http.post("/ocsp", content=ocsp_request(2**159 - 1))
    # Not one of our issuers: unauthorized, which proves the serial itself was accepted.
    answer = ocsp.load_der_ocsp_response(response.content)
    assert answer.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


# -- X-Request-Id --------------------------------------------------------------------------


def _issued_actor(server: Server, headers: dict[str, Any]) -> tuple[httpx.Response, Any]:
    subject = f"rid-{uuid.uuid4().hex[:8]}.example"
    csr = make_csr(subject)[0]
    with server.running.client() as http:
        response = http.post(
            "/1.0/sign",
            json={"csr": csr, "ott": server.token(subject, "sign")},
            headers=headers,
        )
    assert response.status_code == 201, response.text
    serial = str(x509.load_pem_x509_certificate(response.json()["crt"].encode()).serial_number)
    (actor,) = [
        a for _, data, a in server.events(of_type="x509.issued") if data["serial"] == serial
    ]
    return response, actor


def test_a_client_request_id_is_recorded_apart_from_the_cas_own(server: Server) -> None:
    response, actor = _issued_actor(server, {"X-Request-Id": "proxy-7f3a 2"})
    own = response.headers["x-request-id"]
    assert uuid.UUID(own).version == 4
    assert actor["request_id"] == own
    assert actor["client_request_id"] == "proxy-7f3a 2"


@pytest.mark.parametrize(
    "given", [b"r" * 129, "caf\u00e9".encode("latin-1"), "\u00e9t\u00e9".encode()], ids=str
)
def test_an_unusable_client_request_id_is_dropped(server: Server, given: bytes) -> None:
    response, actor = _issued_actor(server, {"X-Request-Id": given})
    assert actor["request_id"] == response.headers["x-request-id"]
    assert uuid.UUID(actor["request_id"]).version == 4
    assert "client_request_id" not in actor


# -- file modes ----------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The umask most systems default to, so the modes below prove something."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
@pytest.mark.parametrize("where", ["embedded", "outside the home"])
def test_the_database_and_its_wal_and_shm_are_0600(tmp_path: Path, where: str) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    database = f"sqlite:///{outside / 'ledger.sqlite'}" if where != "embedded" else None
    ca = init_ca(tmp_path / "ca", database=database)
    path = outside / "ledger.sqlite" if database else ca.home / "db" / "ledger.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    running = start_ca(ca)
    try:
        response, _ = request_certificate(running, "modes.example")
        assert response.status_code == 201, response.text
        for suffix in ("", "-wal", "-shm"):
            file = path.with_name(path.name + suffix)
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    finally:
        running.stop()
