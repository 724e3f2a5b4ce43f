"""Renewal, rekey and revocation through real `ledgerca serve` processes over real TLS.

Each CA is served by two processes on one database (the second with two Hypercorn
workers), so every test that renews on one instance after a change on the other checks
the "many instances, one truth" contract. mTLS uses httpx with `cert=(crt, key)`; the
client verbs run as real subprocesses. Every refusal is checked to leave the ledger as it
was, by counting events.
"""

from __future__ import annotations

import base64
import json
import signal
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from joserfc.jwk import ECKey
from support.binaries import needs_openssl
from support.ca_server import (
    PASSWORD,
    CAHome,
    RunningCA,
    cli_env,
    init_ca,
    ledgerca,
    mint_token,
    provisioner_key,
    request_log,
    serve_pair,
)
from support.cli import openssl
from support.waiting import wait_until

from ca.client.lifecycle import Credentials, load_credentials, renew_token
from ca.keys.files import load_private_key
from ca.keys.ids import key_id
from ca.pki.provisioner_extension import ProvisionerExtension, from_certificate
from ca.provisioners.jwk_keys import create_provisioner_key, decrypt_provisioner_key
from ledger import EventStore, NewEvent, create_engine, format_time
from projections import events as ev
from projections.runner import Projections

UNAUTHORIZED = (
    "The request lacked necessary authorization to be completed. "
    "Please see the certificate authority logs for more info."
)
BAD_REQUEST = "The request could not be completed: "
FORBIDDEN = "The request was forbidden by the certificate authority: "
DIGITAL_SIGNATURE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)


# -- the CA --------------------------------------------------------------------------------


def database_url(home: CAHome) -> str:
    return home.database or f"sqlite:///{home.home / 'db' / 'ledger.sqlite'}"


@dataclass
class Leaf:
    crt: Path
    key: Path
    certificate: x509.Certificate

    @property
    def serial(self) -> str:
        return str(self.certificate.serial_number)

    @property
    def credentials(self) -> Credentials:
        return load_credentials(self.crt, self.key)


@dataclass
class CA:
    """One CA home served by `a` (one worker) and `b` (two workers) on one database."""

    home: CAHome
    a: RunningCA
    b: RunningCA
    key: ECKey
    kid: str
    work: Path

    def store(self) -> EventStore:
        engine = create_engine(database_url(self.home))
        return EventStore(engine, inline=Projections().inline_applier())

    def count(self) -> int:
        """Certificate events in the ledger. (The CRL follower appends `crl.published` on its
        own schedule after revocations, so the whole ledger is not a stable measure.)"""
        store = self.store()
        try:
            return sum(1 for _ in store.read(types=[ev.X509Issued.TYPE, ev.X509Revoked.TYPE]))
        finally:
            store.engine.dispose()

    def events(self, serial: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        store = self.store()
        try:
            return [
                (e.type, dict(e.data), dict(e.actor))
                for e in store.read_stream(ev.x509_stream(serial))
            ]
        finally:
            store.engine.dispose()

    def append(self, event: NewEvent) -> None:
        store = self.store()
        try:
            store.append([event], actor={"cli": "test"})
        finally:
            store.engine.dispose()

    def token(
        self, subject: str, op: str = "sign", *, key: ECKey | None = None,
        kid: str | None = None, issuer: str = "admin", server: RunningCA | None = None,
        sans: list[str] | None = None,
    ) -> str:  # fmt: skip
        port = (server or self.a).port
        return mint_token(
            key or self.key, kid or self.kid, subject=subject, issuer=issuer, sans=sans,
            audience=f"https://localhost:{port}/1.0/{op}",
        )  # fmt: skip

    def issue(
        self, cn: str, *, not_after: str = "", key: ECKey | None = None,
        kid: str | None = None, issuer: str = "admin",
    ) -> Leaf:  # fmt: skip
        private = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(private, hashes.SHA256())
        )
        body = {
            "csr": csr.public_bytes(serialization.Encoding.PEM).decode(),
            "ott": self.token(cn, key=key, kid=kid, issuer=issuer),
        }
        if not_after:
            body["notAfter"] = not_after
        with self.a.client() as http:
            response = http.post("/1.0/sign", json=body)
        assert response.status_code == 201, response.text
        return self.save(cn, response.json()["certChain"], private)

    def save(self, stem: str, chain: list[str], private: Any) -> Leaf:
        stem = f"{stem}-{uuid.uuid4().hex[:6]}"
        crt, key = self.work / f"{stem}.crt", self.work / f"{stem}.key"
        crt.write_text("".join(chain))
        key.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return Leaf(crt, key, x509.load_pem_x509_certificate(chain[0].encode()))

    def add_provisioner(self, name: str, claims: dict[str, Any]) -> tuple[ECKey, str]:
        """A JWK provisioner appended as a `provisioner.added` event; its key and kid."""
        created = create_provisioner_key(b"x", iterations=1000)
        pid = str(uuid.uuid4())
        self.append(
            NewEvent(
                ev.provisioner_stream(pid),
                ev.ProvisionerAdded.TYPE,
                {
                    "id": pid, "name": name, "type": "JWK", "key": created.public_jwk,
                    "encrypted_key": created.encrypted_key, "claims": claims, "options": {},
                },
            )
        )  # fmt: skip
        key = decrypt_provisioner_key(created.encrypted_key, b"x", name=name)
        assert isinstance(key, ECKey)
        return key, str(created.public_jwk["kid"])


def mtls(server: RunningCA, leaf: Leaf, max_version: ssl.TLSVersion | None = None) -> httpx.Client:
    """An httpx client presenting CRT and KEY (httpx's `cert=` is deprecated in favour of
    `load_cert_chain` on the context)."""
    context = ssl.create_default_context(cafile=str(server.ca.root))
    context.load_cert_chain(leaf.crt, leaf.key)
    if max_version is not None:
        context.maximum_version = max_version
    return httpx.Client(base_url=server.url, verify=context, timeout=30)


def renew_mtls(
    server: RunningCA,
    leaf: Leaf,
    path: str = "/1.0/renew",
    max_version: ssl.TLSVersion | None = None,
) -> httpx.Response:
    with mtls(server, leaf, max_version) as http:
        return http.post(path)


def renew_with_token(server: RunningCA, token: str) -> httpx.Response:
    with server.client() as http:
        return http.post("/1.0/renew", headers={"Authorization": f"Bearer {token}"})


def client_token(server: RunningCA, leaf: Leaf, key: Any = None) -> str:
    credentials = leaf.credentials
    if key is not None:
        credentials = Credentials(credentials.crt, credentials.key_file, credentials.chain, key)
    return renew_token(
        credentials, audience=f"https://localhost:{server.port}/renew", now=datetime.now(UTC)
    )


def revoke(server: RunningCA, body: dict[str, Any], leaf: Leaf | None = None) -> httpx.Response:
    with mtls(server, leaf) if leaf else server.client() as http:
        return http.post("/1.0/revoke", json=body)


def step_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status", "message"} and body["status"] == status
    return str(body["message"])


def renewed(response: httpx.Response) -> x509.Certificate:
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"crt", "ca", "certChain", "tlsOptions"}
    assert body["certChain"] == [body["crt"], body["ca"]]
    return x509.load_pem_x509_certificate(body["crt"].encode())


def served(home: CAHome, work: Path) -> Iterator[CA]:
    with serve_pair(home, b_workers=2) as (a, b):
        key, kid = provisioner_key(home)
        yield CA(home, a, b, key, kid, work)


@pytest.fixture(scope="module")
def sqlite_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CA]:
    base = tmp_path_factory.mktemp("lifecycle-sqlite")
    yield from served(init_ca(base), base)


@pytest.fixture(scope="module")
def postgres_ca(tmp_path_factory: pytest.TempPathFactory, module_postgres_url: str) -> Iterator[CA]:
    base = tmp_path_factory.mktemp("lifecycle-pg")
    yield from served(init_ca(base, database=module_postgres_url), base)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_ca(request: pytest.FixtureRequest) -> CA:
    ca: CA = request.getfixturevalue(f"{request.param}_ca")
    return ca


@pytest.fixture
def ca(sqlite_ca: CA) -> CA:
    return sqlite_ca


# -- renewal -------------------------------------------------------------------------------


@needs_openssl
def test_mtls_renewal_keeps_names_extensions_and_lifetime(ca: CA) -> None:
    old = ca.issue("renew.example", not_after="2h")
    before = ca.count()
    started = datetime.now(UTC)
    new = renewed(renew_mtls(ca.b, old))  # the two-worker instance: the bridge works there too

    assert new.serial_number != old.certificate.serial_number
    assert new.subject == old.certificate.subject
    assert new.public_key() == old.certificate.public_key()
    lifetime = old.certificate.not_valid_after_utc - old.certificate.not_valid_before_utc
    assert new.not_valid_after_utc - new.not_valid_before_utc == lifetime
    assert abs(new.not_valid_before_utc - (started - timedelta(minutes=1))) < timedelta(seconds=5)
    old_extensions = {e.oid: e for e in old.certificate.extensions}
    new_extensions = {e.oid: e for e in new.extensions}
    assert set(old_extensions) == set(new_extensions)
    oids = ExtensionOID
    for oid in (oids.SUBJECT_ALTERNATIVE_NAME, oids.KEY_USAGE, oids.EXTENDED_KEY_USAGE,
                oids.SUBJECT_KEY_IDENTIFIER):  # fmt: skip
        assert new_extensions[oid] == old_extensions[oid]
    assert from_certificate(new) == from_certificate(old.certificate)

    assert ca.count() == before + 1
    ((kind, data, actor),) = ca.events(str(new.serial_number))
    assert kind == ev.X509Issued.TYPE
    assert data["renewed_from"] == old.serial and data["rekeyed_from"] is None
    assert data["provisioner"]["name"] == "admin"
    assert actor["mtls_serial"] == old.serial

    leaf_file = ca.work / "renewed.crt"
    leaf_file.write_bytes(new.public_bytes(serialization.Encoding.PEM))
    out = openssl("verify", "-CAfile", ca.home.root, "-untrusted", ca.home.intermediate,
                  "-purpose", "sslclient", leaf_file)  # fmt: skip
    assert f"{leaf_file}: OK" in out.stdout


def test_token_renewal_works_once_per_token(ca: CA) -> None:
    old = ca.issue("token-renew.example")
    token = client_token(ca.b, old)
    before = ca.count()
    new = renewed(renew_with_token(ca.b, token))
    assert new.subject == old.certificate.subject
    ((_, data, actor),) = ca.events(str(new.serial_number))
    assert data["renewed_from"] == old.serial
    assert actor["authenticated_by"] == "token"
    assert (
        data["token_id"] == json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["jti"]
    )
    # The token is single use, on every instance.
    assert step_error(renew_with_token(ca.a, token), 401) == UNAUTHORIZED
    assert ca.count() == before + 1


def test_legacy_re_sign_path_renews(ca: CA) -> None:
    old = ca.issue("resign.example")
    for path in ("/re-sign", "/renew", "/1.0/re-sign"):
        assert renewed(renew_mtls(ca.a, old, path)).subject == old.certificate.subject


def test_renewal_of_a_renewed_certificate_chains_on(ca: CA) -> None:
    first = ca.issue("chain.example")
    response = renew_mtls(ca.a, first)
    second = ca.save("chain2", response.json()["certChain"], _key(first))
    third = renewed(renew_mtls(ca.b, second))
    ((_, data, _),) = ca.events(str(third.serial_number))
    assert data["renewed_from"] == second.serial


def _key(leaf: Leaf) -> Any:
    return serialization.load_pem_private_key(leaf.key.read_bytes(), None)


# -- rekey ---------------------------------------------------------------------------------


def test_rekey_over_mtls_issues_for_the_new_key(ca: CA) -> None:
    old = ca.issue("rekey.example")
    new_key = ec.generate_private_key(ec.SECP384R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]))
        .sign(new_key, hashes.SHA256())
    )
    with mtls(ca.b, old) as http:
        response = http.post(
            "/1.0/rekey", json={"csr": csr.public_bytes(serialization.Encoding.PEM).decode()}
        )
    new = renewed(response)
    assert new.public_key() == new_key.public_key()
    assert new.subject == old.certificate.subject  # the CSR's subject is not used
    ski = new.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(new_key.public_key())
    ((_, data, _),) = ca.events(str(new.serial_number))
    assert data["rekeyed_from"] == old.serial and data["renewed_from"] is None


def test_rekey_refusals(ca: CA) -> None:
    old = ca.issue("rekey-bad.example")
    before = ca.count()
    with ca.a.client() as http:  # no client certificate
        assert step_error(http.post("/1.0/rekey", json={"csr": "x"}), 401) == UNAUTHORIZED
    with mtls(ca.a, old) as http:
        assert step_error(http.post("/1.0/rekey", json={}), 400) == BAD_REQUEST + "missing csr."
        assert step_error(http.post("/1.0/rekey", json={"csr": "junk"}), 400).startswith(
            BAD_REQUEST + "invalid csr"
        )
        # A body under mTLS alone must declare JSON (issue #13): a typeless one is a 415.
        json_type = {"Content-Type": "application/json"}
        malformed = http.post("/1.0/rekey", content=b"{", headers=json_type)
        assert step_error(malformed, 400).startswith(BAD_REQUEST)
    assert ca.count() == before


# -- revocation ----------------------------------------------------------------------------


def test_revoked_certificate_cannot_renew_or_rekey_on_another_instance(any_ca: CA) -> None:
    ca = any_ca
    leaf = ca.issue("revoked.example")
    assert renewed(renew_mtls(ca.b, leaf)).subject == leaf.certificate.subject  # warms b up
    token = ca.token(leaf.serial, "revoke")
    response = revoke(ca.a, {"serial": leaf.serial, "ott": token, "reasonCode": 1,
                             "reason": "key compromise drill", "passive": True})  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}
    (_, (kind, data, actor)) = ca.events(leaf.serial)
    assert kind == ev.X509Revoked.TYPE
    assert data["reason_code"] == 1 and data["reason"] == "key compromise drill"
    assert data["mtls"] is False and data["provisioner"]["name"] == "admin"
    assert data["token_id"] == actor["token_id"]

    before = ca.count()
    # Immediately, on the other process: mTLS, token and rekey are all refused.
    assert step_error(renew_mtls(ca.b, leaf), 401) == UNAUTHORIZED
    assert step_error(renew_with_token(ca.b, client_token(ca.b, leaf)), 401) == UNAUTHORIZED
    with mtls(ca.b, leaf) as http:
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        )
        rekeyed = http.post(
            "/1.0/rekey", json={"csr": csr.public_bytes(serialization.Encoding.PEM).decode()}
        )
    assert step_error(rekeyed, 401) == UNAUTHORIZED
    assert ca.count() == before
    assert "certificate has been revoked" in ca.b.output()


def race(ca: CA, leaf: Leaf) -> tuple[int, int]:
    """POST a revocation to `a` and an mTLS renewal to `b` at the same moment."""
    token = ca.token(leaf.serial, "revoke")
    barrier = threading.Barrier(2)
    with ca.a.client() as plain, mtls(ca.b, leaf) as client:
        plain.get("/health")  # handshakes before the start line
        client.get("/health")

        def revoke_now() -> int:
            barrier.wait()
            body = {"serial": leaf.serial, "ott": token}
            return plain.post("/1.0/revoke", json=body).status_code

        def renew_now() -> int:
            barrier.wait()
            return client.post("/1.0/renew").status_code

        with ThreadPoolExecutor(max_workers=2) as pool:
            revoked, renewed = pool.submit(revoke_now), pool.submit(renew_now)
            return revoked.result(timeout=60), renewed.result(timeout=60)


def test_renewal_racing_a_revocation_never_follows_it_in_the_ledger(any_ca: CA) -> None:
    """Revoke on one instance while renewing on the other: whichever commits first wins,
    and a renewal is never recorded after its certificate's revocation (the append
    re-checks inside its transaction)."""
    ca = any_ca
    for n in range(4):
        leaf = ca.issue(f"race-{n}.example")
        revoked, renewal = race(ca, leaf)
        assert revoked == 200 and renewal in (201, 401)
        store = ca.store()
        try:
            (revoked_at,) = [
                e.position for e in store.read(types=[ev.X509Revoked.TYPE])
                if e.data["serial"] == leaf.serial
            ]  # fmt: skip
            renewals = [
                e.position for e in store.read(types=[ev.X509Issued.TYPE])
                if e.data["renewed_from"] == leaf.serial
            ]  # fmt: skip
        finally:
            store.engine.dispose()
        assert len(renewals) == (1 if renewal == 201 else 0)
        assert all(position < revoked_at for position in renewals)


def test_mtls_self_revocation_and_a_second_revocation_is_400(ca: CA) -> None:
    leaf = ca.issue("self.example")
    response = revoke(ca.b, {"serial": hex(leaf.certificate.serial_number), "reasonCode": 4,
                             "passive": False}, leaf)  # fmt: skip
    assert response.status_code == 200, response.text
    (_, (_, data, actor)) = ca.events(leaf.serial)
    assert data["mtls"] is True and data["token_id"] is None and data["passive"] is False
    assert actor["mtls_serial"] == leaf.serial
    before = ca.count()
    again = revoke(ca.a, {"serial": leaf.serial, "ott": ca.token(leaf.serial, "revoke")})
    assert step_error(again, 400) == (
        BAD_REQUEST + f"certificate with serial number {leaf.serial} is already revoked."
    )
    assert ca.count() == before


def test_revocation_bad_input_is_refused_and_writes_nothing(ca: CA) -> None:
    leaf = ca.issue("bad-revoke.example")
    other = ca.issue("other.example")
    serial = leaf.serial
    cases: list[tuple[dict[str, Any], Leaf | None, int, str]] = [
        ({"serial": "12ab", "ott": ca.token("12ab", "revoke")}, None, 400, "is not a valid serial"),
        ({"serial": "", "ott": ca.token(serial, "revoke")}, None, 400, "missing serial"),
        ({"serial": serial, "reasonCode": 11}, None, 400, "reasonCode out of bounds"),
        ({"serial": serial, "reasonCode": 7}, None, 400, "reasonCode out of bounds"),
        ({"serial": serial, "reasonCode": -1}, None, 400, "reasonCode out of bounds"),
        ({"serial": serial, "ott": ca.token(other.serial, "revoke")}, None, 403,
         FORBIDDEN + "token subject"),
        ({"serial": serial, "ott": ca.token(serial, "sign")}, None, 401, UNAUTHORIZED),
        ({"serial": serial, "ott": "not.a.token"}, None, 401, UNAUTHORIZED),
        ({"serial": serial}, None, 400, "missing ott or client certificate"),
        ({"serial": serial}, other, 400, "serial number in client certificate different"),
        ({"serial": serial, "passive": "yes"}, None, 400, "passive must be true or false"),
        ({"serial": 12}, None, 400, "serial must be a string"),
    ]  # fmt: skip
    before = ca.count()
    for body, client_leaf, status, message in cases:
        got = step_error(revoke(ca.a, body, client_leaf), status)
        assert message in got, (body, got)
    assert ca.count() == before
    # The refused tokens were not spent: a right one still works afterwards.
    assert revoke(ca.b, {"serial": serial, "ott": ca.token(serial, "revoke")}).status_code == 200


# -- renewal refusals ----------------------------------------------------------------------


def test_renewal_bad_input_is_refused_and_writes_nothing(ca: CA) -> None:
    leaf = ca.issue("bad-renew.example")
    before = ca.count()
    # No certificate, no token.
    with ca.a.client() as http:
        assert step_error(http.post("/1.0/renew"), 401) == UNAUTHORIZED
        assert step_error(http.post("/1.0/renew", headers={"Authorization": "Bearer x.y.z"}),
                          401) == UNAUTHORIZED  # fmt: skip
    # A renewal token signed by another key than the certificate's.
    forged = client_token(ca.a, leaf, key=ec.generate_private_key(ec.SECP256R1()))
    assert step_error(renew_with_token(ca.a, forged), 401) == UNAUTHORIZED
    # A sign token is not a renewal token.
    assert step_error(renew_with_token(ca.a, ca.token("bad-renew.example")), 401) == UNAUTHORIZED
    assert ca.count() == before
    assert "token signature does not verify with the certificate's key" in ca.a.output()


def test_disable_renewal_is_honoured(ca: CA) -> None:
    key, kid = ca.add_provisioner("no-renewals", {"disableRenewal": True})
    leaf = ca.issue("fixed.example", key=key, kid=kid, issuer="no-renewals")
    before = ca.count()
    assert step_error(renew_mtls(ca.b, leaf), 401) == UNAUTHORIZED
    assert step_error(renew_with_token(ca.a, client_token(ca.a, leaf)), 401) == UNAUTHORIZED
    assert ca.count() == before
    assert "renew is disabled" in ca.b.output()


def expired_certificate(ca: CA, cn: str, provisioner: tuple[str, str, str] | None) -> Leaf:
    """A certificate our intermediate signed, valid from the intermediate's start until a
    moment ago, recorded in the ledger as issued (so it is ours, and expired): the CA itself
    never issues into the past. Its chain must verify as of NotAfter - 1 minute, within the
    (young) intermediate's validity: NotAfter is the intermediate's start plus that minute
    and a second (a lifetime longer than the renewal's backdating), which is a second after
    `init` made the intermediate (it backdates a minute): the fixture's two server starts
    since then took longer."""
    intermediate = x509.load_pem_x509_certificate(ca.home.intermediate.read_bytes())
    signer = load_private_key(
        (ca.home.home / "secrets" / "intermediate_ca_key").read_bytes(), PASSWORD
    )
    private = ec.generate_private_key(ec.SECP256R1())
    start = intermediate.not_valid_before_utc
    end = start + timedelta(minutes=1, seconds=1)
    # X.509 times are whole seconds: expired to the second for the TLS handshake too.
    assert datetime.now(UTC) >= end + timedelta(seconds=1), "the CA was initialised just now"
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(intermediate.subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(DIGITAL_SIGNATURE, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    )
    record = None
    if provisioner is not None:
        pid, name, kid = provisioner
        builder = builder.add_extension(
            ProvisionerExtension(1, name, kid).to_extension(), critical=False
        )
        record = {"id": pid, "name": name, "type": "JWK"}
    certificate = builder.sign(signer, hashes.SHA256())
    serial = str(certificate.serial_number)
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    ca.append(
        NewEvent(
            ev.x509_stream(serial),
            ev.X509Issued.TYPE,
            {
                "serial": serial, "certificate": pem,
                "subject": certificate.subject.rfc4514_string(),
                "sans": [{"type": "dns", "value": cn}],
                "not_before": format_time(certificate.not_valid_before_utc),
                "not_after": format_time(certificate.not_valid_after_utc),
                "provisioner": record, "issuer_key_id": key_id(intermediate.public_key()),  # type: ignore[arg-type]
                "token_id": None, "renewed_from": None, "rekeyed_from": None,
            },
        )
    )  # fmt: skip
    intermediate_pem = ca.home.intermediate.read_text()
    return ca.save(cn, [pem, intermediate_pem], private)


def causes(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _provisioner_id(ca: CA, name: str) -> str:
    store = ca.store()
    try:
        for event in store.read(types=[ev.ProvisionerAdded.TYPE]):
            if event.data["name"] == name:
                return str(event.data["id"])
    finally:
        store.engine.dispose()
    raise LookupError(name)


def test_expired_certificate_renews_only_by_token_and_only_where_allowed(ca: CA) -> None:
    _, kid = ca.add_provisioner("late-renewals", {"allowRenewalAfterExpiry": True})
    allowed = expired_certificate(
        ca, "late.example", (_provisioner_id(ca, "late-renewals"), "late-renewals", kid)
    )
    refused = expired_certificate(
        ca, "strict.example", (_provisioner_id(ca, "admin"), "admin", ca.kid)
    )
    before = ca.count()

    # mTLS: the handshake itself refuses an expired client certificate; the app never sees
    # the request. With TLS 1.2 the client's handshake fails; a TLS 1.3 client has finished
    # its side when the server checks the certificate, so it sees the connection dropped.
    requests_seen = ca.a.output().count('"path": "/1.0/renew"')
    for leaf in (allowed, refused):
        with pytest.raises(httpx.ConnectError) as failure:
            renew_mtls(ca.a, leaf, max_version=ssl.TLSVersion.TLSv1_2)
        assert any(isinstance(e, ssl.SSLError) for e in causes(failure.value)), failure.value
        with pytest.raises(httpx.RemoteProtocolError, match="disconnected without"):
            renew_mtls(ca.a, leaf, max_version=ssl.TLSVersion.TLSv1_3)
    # Had the app seen one of them, its access-log line would precede this request's.
    marker = uuid.uuid4().hex
    with ca.a.client() as http:
        assert http.get("/health", headers={"X-Request-Id": marker}).status_code == 200
    request_log(ca.a, marker)
    assert ca.a.output().count('"path": "/1.0/renew"') == requests_seen

    # The token flow: refused where the provisioner does not allow renewal after expiry...
    assert step_error(renew_with_token(ca.b, client_token(ca.b, refused)), 401) == UNAUTHORIZED
    assert ca.count() == before
    # ...and allowed where it does: a fresh certificate with the same lifetime.
    new = renewed(renew_with_token(ca.b, client_token(ca.b, allowed)))
    lifetime = allowed.certificate.not_valid_after_utc - allowed.certificate.not_valid_before_utc
    assert new.not_valid_after_utc - new.not_valid_before_utc == lifetime
    assert new.not_valid_after_utc > datetime.now(UTC)
    assert ca.count() == before + 1


def test_a_certificate_the_ledger_does_not_know_cannot_renew(ca: CA) -> None:
    leaf = ca.issue("forgotten.example")
    # Same serial and key, but not the DER we recorded: signed again by our intermediate.
    intermediate = x509.load_pem_x509_certificate(ca.home.intermediate.read_bytes())
    signer = load_private_key(
        (ca.home.home / "secrets" / "intermediate_ca_key").read_bytes(), PASSWORD
    )
    twin = (
        x509.CertificateBuilder()
        .subject_name(leaf.certificate.subject).issuer_name(intermediate.subject)
        .public_key(leaf.certificate.public_key())
        .serial_number(leaf.certificate.serial_number)
        .not_valid_before(leaf.certificate.not_valid_before_utc)
        .not_valid_after(leaf.certificate.not_valid_after_utc + timedelta(hours=1))
        .add_extension(DIGITAL_SIGNATURE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(signer, hashes.SHA256())
    )  # fmt: skip
    forged = ca.save("twin", [twin.public_bytes(serialization.Encoding.PEM).decode(),
                              ca.home.intermediate.read_text()], _key(leaf))  # fmt: skip
    before = ca.count()
    assert step_error(renew_mtls(ca.a, forged), 401) == UNAUTHORIZED
    assert ca.count() == before


# -- the client verbs ----------------------------------------------------------------------


def cli(ca: CA, *args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    return ledgerca(
        *map(str, args), "--ca-url", ca.a.url, "--root", str(ca.home.root),
        home=ca.work / "client-home", check=check,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ledgerca: error: "), result.stderr
    return lines[0]


def leaf_of(crt: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(crt.read_bytes())[0]


def test_cli_renew_rekey_and_revoke(ca: CA) -> None:
    leaf = ca.issue("cli.example")
    result = cli(ca, "renew", leaf.crt, leaf.key)
    assert result.returncode == 0, result.stderr
    first = leaf_of(leaf.crt)
    assert first.serial_number != leaf.certificate.serial_number
    assert len(x509.load_pem_x509_certificates(leaf.crt.read_bytes())) == 2

    result = cli(ca, "renew", "--no-mtls", leaf.crt, leaf.key)
    assert result.returncode == 0, result.stderr
    second = leaf_of(leaf.crt)
    assert second.serial_number != first.serial_number
    assert ca.events(str(second.serial_number))[0][2]["authenticated_by"] == "token"

    old_key = leaf.key.read_bytes()
    result = cli(ca, "rekey", leaf.crt, leaf.key)
    assert result.returncode == 0, result.stderr
    third = leaf_of(leaf.crt)
    assert leaf.key.read_bytes() != old_key
    assert leaf.key.stat().st_mode & 0o777 == 0o600
    assert load_credentials(leaf.crt, leaf.key).leaf == third  # the pair matches

    result = cli(ca, "revoke", str(third.serial_number), "--cert", leaf.crt, "--key", leaf.key,
                 "--reason-code", "5", "--reason", "decommissioned")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (_, (_, data, _)) = ca.events(str(third.serial_number))
    assert (data["reason_code"], data["reason"], data["mtls"]) == (5, "decommissioned", True)

    error = one_line_error(cli(ca, "renew", leaf.crt, leaf.key))
    assert "HTTP 401" in error


def test_cli_revoke_with_a_provisioner_token_and_its_errors(ca: CA) -> None:
    leaf = ca.issue("cli-token.example")
    password = ("--provisioner", "admin",
                "--provisioner-password-file", ca.home.provisioner_password_file)  # fmt: skip
    result = cli(ca, "revoke", hex(leaf.certificate.serial_number), *password)
    assert result.returncode == 0, result.stderr
    assert leaf.serial in result.stdout
    (_, (_, data, _)) = ca.events(leaf.serial)
    assert data["mtls"] is False and data["provisioner"]["name"] == "admin"

    again = one_line_error(cli(ca, "revoke", leaf.serial, *password))
    assert "already revoked" in again and "HTTP 400" in again
    # A serial this CA never issued is revoked too (pre-revocation), once.
    unknown = str(leaf.certificate.serial_number ^ 1)
    pre = cli(ca, "revoke", unknown, "--reason-code", "1", *password)
    assert pre.returncode == 0, pre.stderr
    ((kind, data, _),) = ca.events(unknown)
    assert kind == "x509.revoked_unissued" and data["provisioner"]["name"] == "admin"
    twice = one_line_error(cli(ca, "revoke", unknown, *password))
    assert "already revoked" in twice and "HTTP 400" in twice
    assert "not a serial number" in one_line_error(cli(ca, "revoke", "zz", *password))
    assert "reason" in one_line_error(cli(ca, "revoke", leaf.serial, "--reason-code", "7"))


def test_renew_daemon_rewrites_the_files_and_stops_on_sigterm(ca: CA) -> None:
    leaf = ca.issue("daemon.example", not_after="5m")
    process = subprocess.Popen(
        [sys.executable, "-m", "ca", "--home", str(ca.work / "client-home"), "renew", "--daemon",
         "--expires-in", "5m", str(leaf.crt), str(leaf.key), "--ca-url", ca.a.url,
         "--root", str(ca.home.root)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(),
    )  # fmt: skip
    try:
        wait_until(
            lambda: (
                process.poll() is not None
                or leaf_of(leaf.crt).serial_number != leaf.certificate.serial_number
            ),
            30,
            "the daemon renews the certificate (or exits)",
        )
        new = leaf_of(leaf.crt)
        assert new.serial_number != leaf.certificate.serial_number, "the daemon did not renew"
        assert new.public_key() == leaf.certificate.public_key()
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    renewals = [line for line in stdout.splitlines() if " renewed " in line]
    assert len(renewals) == 1, stdout  # then it waits: not a renewal storm
    assert str(new.serial_number) in renewals[0]
    assert stdout.rstrip().endswith("stopped")
