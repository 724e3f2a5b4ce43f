"""The admin API: provisioners, policies and admins changed remotely by authenticated admins,
honoured by every instance on its next request, each change an event naming its admin.

Two `ledgerca serve` processes share one real PostgreSQL database; admins authenticate with
a token signed by their provisioner's key or with a client certificate this CA issued.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey
from support.ca_server import (
    CAHome,
    RunningCA,
    free_port,
    init_ca,
    ledgerca,
    mint_token,
    provisioner_key,
    request_certificate,
    start_ca,
)
from support.cli import ledger_events
from support.postgres import PostgresServer

from ledger import RecordedEvent

pytestmark = pytest.mark.postgres

SUPER = "ops@example.internal"
PLAIN = "helpdesk@example.internal"


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[tuple[CAHome, RunningCA, RunningCA]]:
    url = postgres_server.create_database("admin_api")
    ca = init_ca(tmp_path_factory.mktemp("admin"), database=url)
    ledgerca("admin", "add", SUPER, "--provisioner", "admin", "--super", home=ca.home)
    ledgerca("admin", "add", PLAIN, "--provisioner", "admin", home=ca.home)
    first = start_ca(ca)
    second = start_ca(ca, port=free_port())
    try:
        yield ca, first, second
    finally:
        first.stop()
        second.stop()
        postgres_server.drop_database("admin_api")


def admin_client(running: RunningCA, subject: str = SUPER) -> httpx.Client:
    """A client that signs a fresh admin token for every request, as step's admin client
    does: admin tokens are single-use."""
    key, kid = provisioner_key(running.ca)

    def authorize(request: httpx.Request) -> None:
        token = mint_token(key, kid, subject=subject, audience=f"{running.url}/admin")
        request.headers["Authorization"] = f"Bearer {token}"

    return running.client(event_hooks={"request": [authorize]})


def events_of(ca: CAHome, event_type: str) -> list[RecordedEvent]:
    return [event for event in ledger_events(ca.home) if event.type == event_type]


def admin_changes(ca: CAHome) -> int:
    """How many events an admin request could have written (CRLs publish on their own)."""
    kinds = ("provisioner.", "policy.", "admin.")
    return sum(event.type.startswith(kinds) for event in ledger_events(ca.home))


def new_jwk_provisioner(name: str) -> tuple[ECKey, dict[str, Any]]:
    key = ECKey.generate_key("P-256")
    public = dict(key.as_dict(private=False))
    public["kid"] = key.thumbprint()
    return key, {"type": "JWK", "name": name, "key": public}


def test_provisioner_added_and_removed_through_one_instance_binds_the_other(
    pair: tuple[CAHome, RunningCA, RunningCA],
) -> None:
    ca, first, second = pair
    key, body = new_jwk_provisioner("remote-added")
    with admin_client(first) as client:
        created = client.post("/admin/provisioners", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "remote-added"
    kid = body["key"]["kid"]

    issued, _ = request_certificate(second, "svc.internal", key=key, kid=kid, issuer="remote-added")
    assert issued.status_code == 201, issued.text

    with admin_client(first) as client:
        assert client.delete("/admin/provisioners/remote-added").json() == {"status": "ok"}
    refused, _ = request_certificate(
        second, "svc.internal", key=key, kid=kid, issuer="remote-added"
    )
    assert refused.status_code == 401

    removed = events_of(ca, "provisioner.removed")[-1]
    assert removed.actor["admin"] == SUPER
    assert removed.actor["via"] == "token"


def test_an_sshpop_provisioner_is_added_through_the_admin_api_as_step_adds_it(
    pair: tuple[CAHome, RunningCA, RunningCA],
) -> None:
    # `step ca provisioner add host-pop --type SSHPOP`: no key, listed by every instance.
    ca, first, second = pair
    with admin_client(first) as client:
        created = client.post("/admin/provisioners", json={"type": "SSHPOP", "name": "host-pop"})
    assert created.status_code == 201, created.text
    assert created.json() == {"type": "SSHPOP", "name": "host-pop", "claims": {"enableSSHCA": True}}
    with second.client() as client:
        listed = client.get("/1.0/provisioners").json()["provisioners"]
    assert {"type": "SSHPOP", "name": "host-pop", "claims": {"enableSSHCA": True}} in listed
    assert events_of(ca, "provisioner.added")[-1].actor["admin"] == SUPER
    with admin_client(first) as client:
        assert client.delete("/admin/provisioners/host-pop").json() == {"status": "ok"}


def test_policy_set_through_one_instance_is_enforced_by_the_other(
    pair: tuple[CAHome, RunningCA, RunningCA],
) -> None:
    ca, first, second = pair
    policy = {"deny": {"dns": ["*.forbidden.internal"]}}
    with admin_client(second) as client:
        response = client.put("/admin/policy", json=policy)
        assert response.status_code == 200, response.text
        assert client.get("/1.0/admin/policy").json()["deny"]["dns"] == ["*.forbidden.internal"]
    try:
        assert request_certificate(first, "db.forbidden.internal")[0].status_code == 403
        assert request_certificate(first, "db.allowed.internal")[0].status_code == 201
        assert events_of(ca, "policy.set")[-1].actor["admin"] == SUPER
    finally:
        with admin_client(first) as client:
            assert client.delete("/admin/policy").status_code == 200
    assert request_certificate(second, "db.forbidden.internal")[0].status_code == 201


def test_admins_are_managed_by_super_admins_only(
    pair: tuple[CAHome, RunningCA, RunningCA],
) -> None:
    _, first, second = pair
    with admin_client(first, PLAIN) as client:
        assert client.get("/admin/admins").status_code == 200
        forbidden = client.post(
            "/admin/admins", json={"subject": "x@example.internal", "provisioner": "admin"}
        )
    assert forbidden.status_code == 403
    assert forbidden.json()["status"] == 403

    with admin_client(first) as client:
        added = client.post(
            "/admin/admins",
            json={"subject": "new@example.internal", "provisioner": "admin", "type": "ADMIN"},
        )
        assert added.status_code == 201, added.text
    # The new admin authenticates at the other instance at once.
    with admin_client(second, "new@example.internal") as client:
        assert client.get("/admin/provisioners").status_code == 200
    with admin_client(second) as client:
        assert client.delete(f"/admin/admins/{added.json()['id']}").status_code == 200
    with admin_client(first, "new@example.internal") as client:
        assert client.get("/admin/provisioners").status_code == 401


def test_a_client_certificate_authenticates_its_admin_until_revoked(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    ca, first, second = pair
    response, private = request_certificate(first, SUPER)
    assert response.status_code == 201
    crt, key_file = tmp_path / "admin.crt", tmp_path / "admin.key"
    crt.write_text(response.json()["crt"])
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(cafile=str(ca.root))
    context.load_cert_chain(crt, key_file)
    with httpx.Client(base_url=second.url, verify=context, timeout=30) as client:
        listed = client.get("/admin/admins")
        assert listed.status_code == 200
        assert SUPER in {a["subject"] for a in listed.json()["admins"]}
    number = str(x509.load_pem_x509_certificate(response.json()["crt"].encode()).serial_number)
    key, kid = provisioner_key(ca)
    token = mint_token(key, kid, subject=number, audience=f"{first.url}/1.0/revoke")
    with first.client() as client:
        done = client.post("/1.0/revoke", json={"serial": number, "ott": token, "reasonCode": 1,
                                                "passive": True})  # fmt: skip
    assert done.status_code == 200, done.text
    with httpx.Client(base_url=first.url, verify=context, timeout=30) as client:
        assert client.get("/admin/admins").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/admin/provisioners", {"type": "OIDC", "name": "x"}, 400),
        ("POST", "/admin/provisioners", {"type": "JWK", "name": "x", "key": {"kty": "EC"}}, 400),
        ("POST", "/admin/provisioners", {"type": "JWK", "name": "x", "key": {"d": "secret"}}, 400),
        ("PUT", "/admin/policy", {"allow": {"dns": 7}}, 400),
        ("PUT", "/admin/provisioners/missing/policy", {"allow": {"dns": ["a"]}}, 404),
        ("DELETE", "/admin/provisioners/missing", None, 404),
        ("DELETE", "/admin/admins/nobody", None, 404),
        ("PUT", "/admin/provisioners/admin", {"claims": {"maxTLSCertDuration": "soon"}}, 400),
    ],
)
def test_bad_admin_requests_are_refused_and_change_nothing(
    pair: tuple[CAHome, RunningCA, RunningCA],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
) -> None:
    ca, first, _ = pair
    before = admin_changes(ca)
    with admin_client(first) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["status"] == status
    assert admin_changes(ca) == before


def test_the_last_super_admin_cannot_be_removed(pair: tuple[CAHome, RunningCA, RunningCA]) -> None:
    ca, first, _ = pair
    before = admin_changes(ca)
    with admin_client(first) as client:
        supers = [a for a in client.get("/admin/admins").json()["admins"]
                  if a["type"] == "SUPER_ADMIN"]  # fmt: skip
        assert len(supers) == 1
        refused = client.delete(f"/admin/admins/{supers[0]['id']}")
    assert refused.status_code == 403
    assert admin_changes(ca) == before


@pytest.mark.parametrize("who", ["nobody", "not-an-admin", "wrong-audience"])
def test_unauthenticated_callers_get_401(
    pair: tuple[CAHome, RunningCA, RunningCA], who: str
) -> None:
    ca, first, _ = pair
    headers = {}
    if who != "nobody":
        key, kid = provisioner_key(ca)
        audience = f"{first.url}/1.0/sign" if who == "wrong-audience" else f"{first.url}/admin"
        subject = SUPER if who == "wrong-audience" else "mallory@example.internal"
        token = mint_token(key, kid, subject=subject, audience=audience)
        headers["Authorization"] = f"Bearer {token}"
    with first.client(headers=headers) as client:
        response = client.get("/admin/provisioners")
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_an_admin_token_from_the_cli_works_with_curl(
    pair: tuple[CAHome, RunningCA, RunningCA],
) -> None:
    ca, first, _ = pair
    minted = ledgerca(
        "token", SUPER, "--admin", "--provisioner", "admin",
        "--provisioner-password-file", str(ca.provisioner_password_file),
        "--ca-url", first.url, "--root", str(ca.root),
        home=ca.home,
    )  # fmt: skip
    token = minted.stdout.strip()
    listed = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--cacert", str(ca.root),
         "-H", f"Authorization: Bearer {token}", f"{first.url}/1.0/admin/admins"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr + listed.stdout
    assert SUPER in {a["subject"] for a in json.loads(listed.stdout)["admins"]}
