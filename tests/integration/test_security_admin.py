"""Issue #13, admin authorization: a provisioner is its id, super admins cannot be locked out
or impersonated by an ADMIN, and admin tokens are single-use — against a running server.

Every refused request is checked to have written nothing: `changes()` counts the ledger's
events except the CRLs and checkpoints that the server publishes on its own.
"""

from __future__ import annotations

import json
import sqlite3
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
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
    init_ca,
    ledgerca,
    mint_token,
    provisioner_key,
    request_certificate,
    start_ca,
)

SUPER = "root@example.internal"
PLAIN = "ops@example.internal"


@dataclass
class Server:
    ca: CAHome
    running: RunningCA
    work: Path

    def changes(self) -> int:
        """Events a request could have written (not CRLs or checkpoints)."""
        return len(self.events(exclude=("crl.published", "ledger.checkpoint")))

    def events(self, *, of_type: str | None = None, exclude: tuple[str, ...] = ()) -> list[Any]:
        with sqlite3.connect(self.ca.home / "db" / "ledger.sqlite") as db:
            rows = db.execute("SELECT position, type, data, actor FROM events ORDER BY position")
            found = [
                (position, kind, json.loads(data), json.loads(actor or "{}"))
                for position, kind, data, actor in rows
            ]
        return [e for e in found if (of_type is None or e[1] == of_type) and e[1] not in exclude]

    def admin(self, key: ECKey, kid: str, subject: str, issuer: str) -> httpx.Client:
        """An admin client that signs a fresh token per request, as step's admin client does."""

        def authorize(request: httpx.Request) -> None:
            token = mint_token(
                key, kid, subject=subject, issuer=issuer, audience=f"{self.running.url}/admin"
            )
            request.headers["Authorization"] = f"Bearer {token}"

        return self.running.client(event_hooks={"request": [authorize]})

    def mtls(self, leaf: tuple[Path, Path]) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca.root))
        context.load_cert_chain(*leaf)
        return httpx.Client(base_url=self.running.url, verify=context, timeout=30)

    def save(self, stem: str, chain: list[str], private: Any) -> tuple[Path, Path]:
        crt, key = self.work / f"{stem}.crt", self.work / f"{stem}.key"
        crt.write_text("".join(chain))
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return crt, key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("security-admin")
    ca = init_ca(base)
    ledgerca("admin", "add", SUPER, "--provisioner", "admin", "--super", home=ca.home)
    running = start_ca(ca)
    try:
        yield Server(ca, running, base)
    finally:
        running.stop()


def super_admin(server: Server, named: str = "admin") -> httpx.Client:
    """The super admin's client; `named` is what its provisioner is called right now."""
    key, kid = provisioner_key(server.ca)
    return server.admin(key, kid, SUPER, named)


def add_provisioner(server: Server, name: str) -> tuple[ECKey, str]:
    key = ECKey.generate_key("P-256")
    public = dict(key.as_dict(private=False))
    public["kid"] = key.thumbprint()
    with super_admin(server) as client:
        created = client.post(
            "/admin/provisioners", json={"type": "JWK", "name": name, "key": public}
        )
    assert created.status_code == 201, created.text
    return key, public["kid"]


def issue(server: Server, subject: str, key: ECKey, kid: str, issuer: str) -> tuple[Path, Path]:
    response, private = request_certificate(
        server.running, subject, key=key, kid=kid, issuer=issuer
    )
    assert response.status_code == 201, response.text
    return server.save(f"{issuer}-{subject}", response.json()["certChain"], private)


def rename(client: httpx.Client, old: str, new: str) -> httpx.Response:
    return client.put(f"/admin/provisioners/{old}", json={"name": new})


def provisioner_id(server: Server, name: str) -> str:
    """The id of the provisioner added last under `name`, from its `provisioner.added`."""
    added = [e for e in server.events(of_type="provisioner.added") if e[2]["name"] == name]
    return str(added[-1][2]["id"])


def test_an_admin_cannot_rename_the_super_admins_provisioner(server: Server) -> None:
    key, kid = add_provisioner(server, "other")
    with super_admin(server) as client:
        bound = client.post(
            "/admin/admins", json={"subject": PLAIN, "provisioner": "other", "type": "ADMIN"}
        )
    assert bound.status_code == 201, bound.text

    # The attack: a certificate through `other` naming the super admin, then swap the names.
    issue(server, SUPER, key, kid, "other")
    with server.admin(key, kid, PLAIN, "other") as admin:
        assert rename(admin, "other", "junk").status_code == 200
    # A token's issuer is the provisioner's current name.
    with server.admin(key, kid, PLAIN, "junk") as admin:
        before = server.changes()
        refused = rename(admin, "admin", "other")
        assert refused.status_code == 403, refused.text
        assert "super admin" in refused.json()["message"]
        assert server.changes() == before
        removal = admin.delete("/admin/provisioners/admin")
        assert removal.status_code == 403, removal.text
        assert server.changes() == before
        assert rename(admin, "junk", "other").status_code == 200


def test_renewal_keeps_the_provisioner_id_whatever_the_names_say(server: Server) -> None:
    """Even a super admin swapping names cannot make a renewal change provisioners, so the
    renewed certificate of `swap` never authenticates as the super admin of `admin`."""
    key, kid = add_provisioner(server, "swap")
    swap_id = provisioner_id(server, "swap")
    leaf = issue(server, SUPER, key, kid, "swap")
    with super_admin(server) as client:
        assert rename(client, "swap", "swap-aside").status_code == 200
        assert rename(client, "admin", "swap").status_code == 200
    try:
        with server.mtls(leaf) as http:
            renewed = http.post("/1.0/renew")
        assert renewed.status_code == 201, renewed.text
    finally:
        with super_admin(server, named="swap") as client:
            assert rename(client, "swap", "admin").status_code == 200
        with super_admin(server) as client:
            assert rename(client, "swap-aside", "swap").status_code == 200

    serial = str(x509.load_pem_x509_certificate(renewed.json()["crt"].encode()).serial_number)
    (issued,) = [e for e in server.events(of_type="x509.issued") if e[2]["serial"] == serial]
    assert issued[2]["provisioner"]["id"] == swap_id

    renewed_leaf = server.save("renewed", renewed.json()["certChain"], _key_of(leaf))
    before = server.changes()
    with server.mtls(renewed_leaf) as http:
        escalated = http.post(
            "/admin/admins", json={"subject": "evil", "provisioner": "admin", "type": "SUPER_ADMIN"}
        )
    assert escalated.status_code == 401, escalated.text
    assert server.changes() == before


def test_a_removed_provisioner_s_certificates_do_not_renew_under_a_new_namesake(
    server: Server,
) -> None:
    key, kid = add_provisioner(server, "short-lived")
    leaf = issue(server, "svc.internal", key, kid, "short-lived")
    with super_admin(server) as client:
        assert client.delete("/admin/provisioners/short-lived").status_code == 200
    add_provisioner(server, "short-lived")
    before = server.changes()
    with server.mtls(leaf) as http:
        refused = http.post("/1.0/renew")
    assert refused.status_code == 401, refused.text
    assert server.changes() == before


def test_removing_the_last_super_admins_provisioner_is_refused(server: Server) -> None:
    before = server.changes()
    with super_admin(server) as client:
        refused = client.delete("/admin/provisioners/admin")
    assert refused.status_code == 403, refused.text
    assert "no super admins will remain" in refused.json()["message"]
    assert server.changes() == before
    with super_admin(server) as client:  # still in charge
        assert client.get("/admin/admins").status_code == 200


def test_removing_a_provisioner_removes_its_admins_in_the_same_append(server: Server) -> None:
    add_provisioner(server, "team")
    with super_admin(server) as client:
        bound = client.post("/admin/admins", json={"subject": "team@example.internal",
                                                   "provisioner": "team"})  # fmt: skip
        assert bound.status_code == 201, bound.text
        assert client.delete("/admin/provisioners/team").status_code == 200
        listed = client.get("/admin/admins").json()["admins"]
    assert "team@example.internal" not in {a["subject"] for a in listed}
    (removed,) = [e for e in server.events(of_type="provisioner.removed") if e[2]["name"] == "team"]
    (unbound,) = [
        e for e in server.events(of_type="admin.removed") if e[2]["id"] == bound.json()["id"]
    ]
    assert unbound[0] == removed[0] + 1
    assert unbound[3]["request_id"] == removed[3]["request_id"]


def test_admin_tokens_are_single_use(server: Server) -> None:
    key, kid = provisioner_key(server.ca)
    token = mint_token(key, kid, subject=SUPER, audience=f"{server.running.url}/admin")
    headers = {"Authorization": f"Bearer {token}"}
    with server.running.client(headers=headers) as client:
        # A refused request spends nothing: the same token still works afterwards.
        before = server.changes()
        assert client.get("/admin/provisioners/no-such-provisioner").status_code == 404
        assert server.changes() == before
        assert client.get("/admin/provisioners").status_code == 200
        spent = server.events(of_type="token.spent")[-1]
        assert spent[2]["purpose"] == "admin" and spent[3]["admin"] == SUPER

        before = server.changes()
        replayed = client.get("/admin/admins")
        assert replayed.status_code == 401, replayed.text
        written = client.put("/admin/policy", json={"deny": {"dns": ["*.evil.internal"]}})
        assert written.status_code == 401, written.text
        assert server.changes() == before


def test_an_admin_change_spends_its_token_with_the_change(server: Server) -> None:
    key, kid = provisioner_key(server.ca)
    token = mint_token(key, kid, subject=SUPER, audience=f"{server.running.url}/admin")
    with server.running.client(headers={"Authorization": f"Bearer {token}"}) as client:
        assert (
            client.put("/admin/policy", json={"deny": {"dns": ["*.x.internal"]}}).status_code == 200
        )
        assert client.delete("/admin/policy").status_code == 401
    (policy,) = [e for e in server.events(of_type="policy.set") if e[3].get("token_id")][-1:]
    spent = [
        e for e in server.events(of_type="token.spent") if e[2]["token_id"] == policy[3]["token_id"]
    ]
    assert [e[0] for e in spent] == [policy[0] + 1]


def _key_of(leaf: tuple[Path, Path]) -> Any:
    return serialization.load_pem_private_key(leaf[1].read_bytes(), None)


def _public(key: ECKey, **extra: Any) -> dict[str, Any]:
    public = dict(key.as_dict(private=False))
    public["kid"] = key.thumbprint()
    return {**public, **extra}


FRESH = ECKey.generate_key("P-256")
BAD_PROVISIONERS = {
    "empty name": {"name": "", "key": _public(FRESH)},
    "long name": {"name": "p" * 129, "key": _public(FRESH)},
    "control character": {"name": "bad\x1b[2Jname", "key": _public(FRESH)},
    "padded name": {"name": " padded", "key": _public(FRESH)},
    "same name, other case": {"name": "ADMIN", "key": _public(FRESH)},
    "same name, other width": {"name": "\uff41dmin", "key": _public(FRESH)},
    "private d": {"name": "leaky", "key": dict(FRESH.as_dict(private=True))},
    "private dp": {"name": "leaky", "key": _public(FRESH, dp="AQAB")},
    "encryptedKey not a JWE": {"name": "nojwe", "key": _public(FRESH), "encryptedKey": "x.y"},
}


@pytest.mark.parametrize("body", BAD_PROVISIONERS.values(), ids=BAD_PROVISIONERS.keys())
def test_bad_provisioners_are_refused_and_change_nothing(
    server: Server, body: dict[str, Any]
) -> None:
    before = server.changes()
    with super_admin(server) as client:
        refused = client.post("/admin/provisioners", json={"type": "JWK", **body})
    assert refused.status_code == 400, refused.text
    assert refused.json()["status"] == 400
    assert server.changes() == before


def test_a_provisioner_key_already_in_use_is_refused(server: Server) -> None:
    existing = server.events(of_type="provisioner.added")[0][2]["key"]
    before = server.changes()
    with super_admin(server) as client:
        refused = client.post(
            "/admin/provisioners", json={"type": "JWK", "name": "twin", "key": existing}
        )
        renamed = rename(client, "swap", "Admin")
    assert refused.status_code == 400, refused.text
    assert "already exists" in refused.json()["message"]
    assert renamed.status_code == 400, renamed.text
    assert server.changes() == before
