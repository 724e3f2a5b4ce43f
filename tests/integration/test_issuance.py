"""Issuance through `POST /sign` of a running `ledgerca serve`, judged by openssl and the ledger.

Two `ledgerca serve` processes share one database (SQLite, and PostgreSQL where storage is
what the test is about): a token spent on one is refused by the other. Every refusal is
checked to leave the ledger exactly as it was, by counting events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from joserfc.jwk import ECKey
from support.binaries import OPENSSL, needs_openssl
from support.ca_server import (
    CAHome,
    RunningCA,
    database_url,
    event_count,
    init_ca,
    mint_token,
    provisioner_key,
    request_log,
    serve_pair,
)

from ca.pki.provisioner_extension import from_certificate
from ca.provisioners.jwk_keys import create_provisioner_key, decrypt_provisioner_key
from ledger import EventStore, create_engine
from projections.events import ProvisionerAdded, X509Issued, x509_stream
from projections.runner import Projections

UNAUTHORIZED = (
    "The request lacked necessary authorization to be completed. "
    "Please see the certificate authority logs for more info."
)
FORBIDDEN = "The request was forbidden by the certificate authority: "
BAD_REQUEST = "The request could not be completed: "
STEP_TLS_OPTIONS = {
    "cipherSuites": [
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ],
    "minVersion": 1.2,
    "maxVersion": 1.3,
    "renegotiation": False,
}
PROVISIONER_OID = "1.3.6.1.4.1.37476.9000.64.1"
INJECTION = 'a", "isCA": true, "x": "'


# -- helpers -------------------------------------------------------------------------------


def issued_events(ca: CAHome, serial: str) -> list[X509Issued]:
    engine = create_engine(database_url(ca))
    try:
        events = EventStore(engine).read(stream=x509_stream(serial))
        return [X509Issued.from_recorded(e) for e in events if e.type == X509Issued.TYPE]
    finally:
        engine.dispose()


def execute_sql(ca: CAHome, *statements: str) -> None:
    engine = create_engine(database_url(ca))
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def general_names(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def make_csr(
    common_name: str | None, sans: list[str], *, key: Any = None
) -> x509.CertificateSigningRequest:
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(general_names(sans)), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def csr_fingerprint(csr: x509.CertificateSigningRequest) -> str:
    return b64url(hashlib.sha256(csr.public_bytes(serialization.Encoding.DER)).digest())


def jti_of(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])


def hand_made_token(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    signing_input = (
        b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    ).encode()
    return signing_input.decode() + "." + b64url(sign(signing_input))


@dataclass
class CA:
    """One CA home served by two `ledgerca serve` processes on one database."""

    home: CAHome
    a: RunningCA
    b: RunningCA
    key: ECKey
    kid: str

    def count(self) -> int:
        return event_count(self.home)

    def token(
        self,
        subject: str,
        sans: list[str] | None = None,
        *,
        server: RunningCA | None = None,
        key: ECKey | None = None,
        kid: str | None = None,
        issuer: str = "admin",
        **kwargs: Any,
    ) -> str:
        """A token as `step ca token` mints it, audience `https://localhost:PORT/1.0/sign`."""
        port = (server or self.a).port
        return mint_token(
            key or self.key,
            kid or self.kid,
            subject=subject,
            audience=f"https://localhost:{port}/1.0/sign",
            issuer=issuer,
            sans=sans,
            root_pem=self.home.root.read_bytes(),
            **kwargs,
        )

    def sign(
        self,
        csr: x509.CertificateSigningRequest | str,
        token: str,
        *,
        server: RunningCA | None = None,
        request_id: str | None = None,
        **fields: Any,
    ) -> httpx.Response:
        body = {"csr": csr if isinstance(csr, str) else pem(csr), "ott": token, **fields}
        headers = {"X-Request-Id": request_id} if request_id else {}
        with (server or self.a).client() as http:
            return http.post("/1.0/sign", json=body, headers=headers)

    def add_provisioner(self, name: str, options: dict[str, Any] | None = None) -> ECKey:
        """Append a JWK `provisioner.added` event as `ledgerca init` does; return its key."""
        created = create_provisioner_key(b"x", iterations=1000)
        event = ProvisionerAdded(
            id=str(uuid.uuid4()),
            name=name,
            type="JWK",
            key=created.public_jwk,
            encrypted_key=created.encrypted_key,
            claims={},
            options=options or {},
        ).to_new_event()
        engine = create_engine(database_url(self.home))
        try:
            store = EventStore(engine, inline=Projections().inline_applier())
            store.append([event], actor={"cli": "test"}, expected={event.stream: 0})
        finally:
            engine.dispose()
        key = decrypt_provisioner_key(created.encrypted_key, b"x", name=name)
        assert isinstance(key, ECKey)
        return key


def assert_step_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.text.endswith("\n")
    body = response.json()
    assert set(body) == {"status", "message"}
    assert body["status"] == status
    assert "BEGIN CERTIFICATE" not in response.text
    return str(body["message"])


def openssl_verify(ca: CAHome, leaf_pem: str, directory: Path, *extra: str) -> str:
    assert OPENSSL is not None
    leaf = directory / f"leaf-{uuid.uuid4().hex[:8]}.crt"
    leaf.write_text(leaf_pem)
    result = subprocess.run(
        [OPENSSL, "verify", *extra, "-CAfile", str(ca.root), "-untrusted", str(ca.intermediate),
         str(leaf)],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{leaf}: OK" in result.stdout
    return result.stdout


def served(home: CAHome) -> Iterator[CA]:
    with serve_pair(home) as (a, b):
        key, kid = provisioner_key(home)
        yield CA(home, a, b, key, kid)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CA]:
    yield from served(init_ca(tmp_path_factory.mktemp("issuance-sqlite")))


@pytest.fixture(scope="module")
def postgres_ca(tmp_path_factory: pytest.TempPathFactory, module_postgres_url: str) -> Iterator[CA]:
    base = tmp_path_factory.mktemp("issuance-pg")
    yield from served(init_ca(base, database=module_postgres_url))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_ca(request: pytest.FixtureRequest) -> CA:
    """The same behaviour on each backend (two serving processes per database)."""
    ca: CA = request.getfixturevalue(f"{request.param}_ca")
    return ca


@pytest.fixture
def ca(sqlite_ca: CA) -> CA:
    return sqlite_ca


# -- the happy path ------------------------------------------------------------------------


def test_token_minted_like_step_cli_gets_the_step_leaf_profile(ca: CA) -> None:
    sans = ["svc.example", "www.svc.example", "10.1.2.3"]
    token = ca.token("svc.example", sans)
    csr = make_csr("svc.example", sans)
    before_count = ca.count()
    started = datetime.now(UTC)
    response = ca.sign(csr, token)
    finished = datetime.now(UTC)

    assert response.status_code == 201, response.text
    assert response.text.endswith("\n")
    body = response.json()
    assert set(body) == {"crt", "ca", "certChain", "tlsOptions"}
    assert body["ca"] == ca.home.intermediate.read_text()
    assert body["certChain"] == [body["crt"], body["ca"]]
    assert body["tlsOptions"] == STEP_TLS_OPTIONS

    leaf = x509.load_pem_x509_certificate(body["crt"].encode())
    intermediate = x509.load_pem_x509_certificate(ca.home.intermediate.read_bytes())
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "svc.example"
    assert leaf.issuer == intermediate.subject
    assert leaf.public_key() == csr.public_key()

    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["svc.example", "www.svc.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]

    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.BasicConstraints)

    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(csr.public_key())
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == issuer_ski.value.digest

    assert 100 < leaf.serial_number.bit_length() <= 128  # 128 random bits, positive

    extension = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier(PROVISIONER_OID))
    assert not extension.critical
    provisioner = from_certificate(leaf)
    assert provisioner is not None
    assert (provisioner.type, provisioner.name, provisioner.credential_id) == (1, "admin", ca.kid)

    slack = timedelta(seconds=5)
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    assert started - timedelta(minutes=1) - slack <= not_before
    assert not_before <= finished - timedelta(minutes=1) + slack
    assert started + timedelta(hours=24) - slack <= not_after
    assert not_after <= finished + timedelta(hours=24) + slack

    assert ca.count() == before_count + 1
    (event,) = issued_events(ca.home, str(leaf.serial_number))
    assert event.serial == str(leaf.serial_number)
    assert event.token_id == jti_of(token)
    assert event.provisioner is not None
    assert event.provisioner.name == "admin"
    assert event.provisioner.type == "JWK"
    assert x509.load_pem_x509_certificate(event.certificate.encode()) == leaf


@needs_openssl
def test_issued_leaf_chains_to_the_root_for_openssl(ca: CA, tmp_path: Path) -> None:
    sans = ["tls.example", "10.9.8.7"]
    response = ca.sign(make_csr("tls.example", sans), ca.token("tls.example", sans))
    assert response.status_code == 201, response.text
    leaf_pem = response.json()["crt"]
    openssl_verify(ca.home, leaf_pem, tmp_path)
    openssl_verify(ca.home, leaf_pem, tmp_path, "-purpose", "sslserver")
    openssl_verify(ca.home, leaf_pem, tmp_path, "-purpose", "sslclient")
    openssl_verify(ca.home, leaf_pem, tmp_path, "-x509_strict")


def test_legacy_path_and_port_less_audience_are_accepted(ca: CA) -> None:
    token = mint_token(ca.key, ca.kid, subject="plain.example", audience="https://localhost/sign")
    with ca.a.client() as http:
        response = http.post(
            "/sign", json={"csr": pem(make_csr("plain.example", ["plain.example"])), "ott": token}
        )
    assert response.status_code == 201, response.text


# -- validity and keys ---------------------------------------------------------------------


def validity_of(response: httpx.Response) -> tuple[datetime, datetime]:
    assert response.status_code == 201, response.text
    leaf = x509.load_pem_x509_certificate(response.json()["crt"].encode())
    return leaf.not_valid_before_utc, leaf.not_valid_after_utc


def test_not_after_as_a_duration(ca: CA) -> None:
    now = datetime.now(UTC)
    response = ca.sign(
        make_csr("short.example", ["short.example"]), ca.token("short.example"), notAfter="1h"
    )
    not_before, not_after = validity_of(response)
    assert abs(not_after - (now + timedelta(hours=1))) < timedelta(seconds=5)
    assert abs(not_before - (now - timedelta(minutes=1))) < timedelta(seconds=5)


def test_not_before_and_not_after_as_rfc_3339(ca: CA) -> None:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    end = start + timedelta(hours=2)
    response = ca.sign(
        make_csr("timed.example", ["timed.example"]),
        ca.token("timed.example"),
        notBefore=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        notAfter=end.isoformat(),
    )
    assert validity_of(response) == (start, end)


def test_duration_above_the_maximum_is_403(ca: CA) -> None:
    before = ca.count()
    response = ca.sign(
        make_csr("long.example", ["long.example"]), ca.token("long.example"), notAfter="48h"
    )
    message = assert_step_error(response, 403)
    assert message == (
        FORBIDDEN + "requested duration of 48h0m0s is more than the authorized maximum "
        "certificate duration of 24h0m0s."
    )
    assert ca.count() == before


def test_rsa_2048_leaf_also_gets_key_encipherment(ca: CA) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = ca.sign(make_csr("rsa.example", ["rsa.example"], key=key), ca.token("rsa.example"))
    assert response.status_code == 201, response.text
    leaf = x509.load_pem_x509_certificate(response.json()["crt"].encode())
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.key_encipherment


def test_rsa_1024_csr_is_403(ca: CA) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    before = ca.count()
    csr = make_csr("weak.example", ["weak.example"], key=key)
    response = ca.sign(csr, ca.token("weak.example"))
    message = assert_step_error(response, 403)
    assert message.startswith(FORBIDDEN)
    assert "2048" in message
    assert ca.count() == before


# -- bad tokens ----------------------------------------------------------------------------


def _claims(ca: CA, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "admin",
        "sub": "bad.example",
        "aud": f"https://localhost:{ca.a.port}/1.0/sign",
        "sans": ["bad.example"],
        "jti": uuid.uuid4().hex * 2,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return claims


def _alg_none(ca: CA) -> str:
    header = {"alg": "none", "kid": ca.kid, "typ": "JWT"}
    return hand_made_token(header, _claims(ca), lambda _: b"")


def _hs256_with_public_key(ca: CA) -> str:
    # The classic confusion: the public key (which anyone can fetch) used as an HMAC secret.
    secret = json.dumps(ca.key.as_dict(private=False)).encode()
    header = {"alg": "HS256", "kid": ca.kid, "typ": "JWT"}
    return hand_made_token(
        header, _claims(ca), lambda data: hmac.new(secret, data, hashlib.sha256).digest()
    )


def _unknown_kid(ca: CA) -> str:
    stranger = ECKey.generate_key("P-256")
    return ca.token("bad.example", key=stranger, kid=stranger.thumbprint())


def _bad_signature(ca: CA) -> str:
    # Signed by another key under the provisioner's kid.
    return ca.token("bad.example", key=ECKey.generate_key("P-256"))


def _tampered_claims(ca: CA) -> str:
    header, _, signature = ca.token("good.example").split(".")
    claims = b64url(json.dumps(_claims(ca)).encode())
    return f"{header}.{claims}.{signature}"


def _wrong_audience(ca: CA) -> str:
    return mint_token(ca.key, ca.kid, subject="bad.example", audience="https://ca.other/1.0/sign")


def _revoke_audience(ca: CA) -> str:
    audience = f"https://localhost:{ca.a.port}/1.0/revoke"
    return mint_token(ca.key, ca.kid, subject="bad.example", audience=audience)


def _wrong_issuer(ca: CA) -> str:
    return ca.token("bad.example", issuer="someone-else")


def _expired(ca: CA) -> str:
    # exp 2 minutes ago: beyond the 1 minute leeway.
    return ca.token("bad.example", lifetime=-120)


def _not_yet_valid(ca: CA) -> str:
    return ca.token("bad.example", not_before=int(time.time()) + 300, lifetime=600)


def _issued_before_ca_start(ca: CA) -> str:
    # The CA started less than an hour ago.
    return ca.token("bad.example", issued_at=int(time.time()) - 3600)


def _empty_subject(ca: CA) -> str:
    return ca.token("", ["bad.example"])


BAD_TOKENS: dict[str, tuple[Callable[[CA], str], str]] = {
    "alg-none": (_alg_none, "'none' is refused"),
    "hs256-public-key-secret": (_hs256_with_public_key, "HMAC"),
    "unknown-kid": (_unknown_kid, "no provisioner"),
    "bad-signature": (_bad_signature, "signature does not verify"),
    "tampered-claims": (_tampered_claims, "signature does not verify"),
    "wrong-audience": (_wrong_audience, "audience"),
    "revoke-audience": (_revoke_audience, "audience"),
    "wrong-issuer": (_wrong_issuer, "no provisioner"),
    "expired": (_expired, "expired"),
    "not-yet-valid": (_not_yet_valid, "not yet valid"),
    "issued-before-ca-start": (_issued_before_ca_start, "before the bootstrap"),
    "empty-subject": (_empty_subject, "subject"),
}


@pytest.mark.parametrize("variant", list(BAD_TOKENS))
def test_bad_token_is_401_and_writes_nothing(ca: CA, variant: str) -> None:
    make, reason = BAD_TOKENS[variant]
    token = make(ca)
    before = ca.count()
    request_id = f"bad-{variant}-{uuid.uuid4().hex[:6]}"
    response = ca.sign(make_csr("bad.example", ["bad.example"]), token, request_id=request_id)
    assert assert_step_error(response, 401) == UNAUTHORIZED
    assert ca.count() == before
    # Refused for the reason under test, not by accident (the log says why; the client not).
    logged = request_log(ca.a, request_id)
    assert logged["status"] == 401
    assert reason in logged["error"]


def test_csr_sans_not_matching_the_token_are_403(ca: CA) -> None:
    before = ca.count()
    token = ca.token("a.example", ["a.example"])
    response = ca.sign(make_csr("a.example", ["a.example", "b.example"]), token)
    message = assert_step_error(response, 403)
    assert message.startswith(FORBIDDEN)
    assert "b.example" in message
    assert ca.count() == before


def test_csr_common_name_outside_sub_and_sans_is_403(ca: CA) -> None:
    before = ca.count()
    token = ca.token("a.example", ["a.example"])
    response = ca.sign(make_csr("evil.example", []), token)
    message = assert_step_error(response, 403)
    assert message.startswith(FORBIDDEN)
    assert "evil.example" in message
    assert ca.count() == before


def test_csr_with_a_subset_of_the_token_sans_is_refused_per_type(ca: CA) -> None:
    # step-ca compares each SAN type present in the CSR with the token's as a set.
    before = ca.count()
    token = ca.token("x.example", ["x.example", "y.example"])
    response = ca.sign(make_csr("x.example", ["x.example"]), token)
    assert_step_error(response, 403)
    assert ca.count() == before


# -- single use ----------------------------------------------------------------------------


def test_token_is_single_use(ca: CA) -> None:
    token = ca.token("once.example")
    before = ca.count()
    first = ca.sign(make_csr("once.example", ["once.example"]), token)
    assert first.status_code == 201, first.text
    second = ca.sign(make_csr("once.example", ["once.example"]), token, request_id="replay-a")
    assert assert_step_error(second, 401) == UNAUTHORIZED
    assert ca.count() == before + 1
    assert "token already used" in request_log(ca.a, "replay-a")["error"]


def test_token_spent_on_one_instance_is_refused_by_another(any_ca: CA) -> None:
    ca = any_ca
    # The second instance works (a fresh token is accepted there)...
    fresh = ca.sign(make_csr("b.example", ["b.example"]), ca.token("b.example"), server=ca.b)
    assert fresh.status_code == 201, fresh.text
    # ...but a token spent on the first one is refused by it.
    token = ca.token("shared.example", server=ca.a)
    spent = ca.sign(make_csr("shared.example", ["shared.example"]), token, server=ca.a)
    assert spent.status_code == 201, spent.text
    before = ca.count()
    request_id = f"cross-{uuid.uuid4().hex[:8]}"
    replay = ca.sign(
        make_csr("shared.example", ["shared.example"]),
        token,
        server=ca.b,
        request_id=request_id,
    )
    assert assert_step_error(replay, 401) == UNAUTHORIZED
    assert ca.count() == before
    assert "token already used" in request_log(ca.b, request_id)["error"]


def race(ca: CA, token: str) -> list[int]:
    """POST the same token to both instances at the same moment; return both statuses."""
    csrs = [pem(make_csr("race.example", ["race.example"])) for _ in range(2)]
    barrier = threading.Barrier(2)
    with ca.a.client() as http_a, ca.b.client() as http_b:
        clients = [http_a, http_b]
        for http in clients:  # connect (TLS handshake) before the start line
            http.get("/health")

        def send(index: int) -> int:
            barrier.wait()
            body = {"csr": csrs[index], "ott": token}
            return clients[index].post("/1.0/sign", json=body).status_code

        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(send, range(2), timeout=60))


def test_same_token_raced_to_two_instances_issues_once(any_ca: CA) -> None:
    ca = any_ca
    for _ in range(3):
        before = ca.count()
        statuses = race(ca, ca.token("race.example"))
        assert sorted(statuses) == [201, 401]
        assert ca.count() == before + 1


# -- cnf: a token bound to one CSR ---------------------------------------------------------


def test_token_bound_to_a_csr_accepts_that_csr(ca: CA) -> None:
    csr = make_csr("bound.example", ["bound.example"])
    token = ca.token("bound.example", extra={"cnf": {"x5rt#S256": csr_fingerprint(csr)}})
    assert ca.sign(csr, token).status_code == 201


def test_token_bound_to_a_csr_refuses_another_csr(ca: CA) -> None:
    bound = make_csr("bound.example", ["bound.example"])
    other = make_csr("bound.example", ["bound.example"])
    token = ca.token("bound.example", extra={"cnf": {"x5rt#S256": csr_fingerprint(bound)}})
    before = ca.count()
    response = ca.sign(other, token, request_id="cnf-other")
    assert assert_step_error(response, 401) == UNAUTHORIZED
    assert ca.count() == before
    assert "another certificate request" in request_log(ca.a, "cnf-other")["error"]


# -- templates -----------------------------------------------------------------------------


@needs_openssl
def test_template_injection_yields_the_literal_subject_not_a_ca(ca: CA, tmp_path: Path) -> None:
    template = '{"subject": {"commonName": {{ token.sub }}}, "sans": {{ sans }}}'
    name = f"templated-{uuid.uuid4().hex[:6]}"
    key = ca.add_provisioner(name, {"x509": {"template": template}})
    token = ca.token(INJECTION, ["inj.example"], key=key, kid=key.thumbprint(), issuer=name)
    before = ca.count()
    response = ca.sign(make_csr(INJECTION, ["inj.example"]), token)
    assert response.status_code == 201, response.text
    leaf = x509.load_pem_x509_certificate(response.json()["crt"].encode())

    (common_name,) = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert common_name.value == INJECTION
    assert len(leaf.subject) == 1
    try:
        constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        pass
    else:
        assert not constraints.ca
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["inj.example"]
    provisioner = from_certificate(leaf)
    assert provisioner is not None and provisioner.name == name
    openssl_verify(ca.home, response.json()["crt"], tmp_path)
    assert ca.count() == before + 1


CA_TEMPLATES = {
    "basic-constraints": (
        '{"subject": {{ subject }}, "sans": {{ sans }}, "basicConstraints": {"isCA": true}}'
    ),
    "cert-sign": '{"subject": {{ subject }}, "sans": {{ sans }}, "keyUsage": ["certSign"]}',
}


@pytest.mark.parametrize("variant", list(CA_TEMPLATES))
def test_template_asking_for_a_ca_is_refused(ca: CA, variant: str) -> None:
    name = f"ca-template-{variant}-{uuid.uuid4().hex[:6]}"
    key = ca.add_provisioner(name, {"x509": {"template": CA_TEMPLATES[variant]}})
    token = ca.token("sub.example", key=key, kid=key.thumbprint(), issuer=name)
    before = ca.count()
    response = ca.sign(make_csr("sub.example", ["sub.example"]), token)
    message = assert_step_error(response, 403)
    assert message == FORBIDDEN + "templates cannot issue CA certificates."
    assert ca.count() == before


BAD_TEMPLATES = {
    # a Jinja syntax error: `}` where `}}` was meant
    "syntax": ('{"subject": {{ subject }, "sans": {{ sans }}}', "template: line 1"),
    "undefined-name": ('{"subject": {{ nobody }}, "sans": {{ sans }}}', "nobody"),
    "quoted-interpolation": (
        '{"subject": {"commonName": "{{ token.sub }}"}, "sans": {{ sans }}}',
        "remove the quotes",
    ),
    "unknown-field": ('{"subject": {{ subject }}, "sans": {{ sans }}, "isCA": true}', "isCA"),
    "not-json": ('{"subject": {{ subject }}, "sans": {{ sans }},}', "not valid JSON"),
}


@pytest.mark.parametrize("variant", list(BAD_TEMPLATES))
def test_bad_template_is_400_with_a_useful_message(ca: CA, variant: str) -> None:
    template, hint = BAD_TEMPLATES[variant]
    name = f"bad-template-{variant}-{uuid.uuid4().hex[:6]}"
    key = ca.add_provisioner(name, {"x509": {"template": template}})
    token = ca.token("sub.example", key=key, kid=key.thumbprint(), issuer=name)
    before = ca.count()
    response = ca.sign(make_csr("sub.example", ["sub.example"]), token)
    message = assert_step_error(response, 400)
    assert message.startswith(BAD_REQUEST + "template")
    assert hint in message
    assert ca.count() == before


# -- nothing signed leaves the CA unless its event committed -------------------------------


def install_failing_trigger(ca: CAHome) -> None:
    if ca.database is None:
        execute_sql(
            ca,
            "CREATE TRIGGER fail_inserts BEFORE INSERT ON events "
            "BEGIN SELECT RAISE(ABORT, 'test: append refused'); END",
        )
    else:
        execute_sql(
            ca,
            "CREATE FUNCTION test_refuse_append() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'test: append refused'; END $$",
            "CREATE TRIGGER fail_inserts BEFORE INSERT ON events "
            "FOR EACH ROW EXECUTE FUNCTION test_refuse_append()",
        )


def drop_failing_trigger(ca: CAHome) -> None:
    if ca.database is None:
        execute_sql(ca, "DROP TRIGGER IF EXISTS fail_inserts")
    else:
        execute_sql(
            ca,
            "DROP TRIGGER IF EXISTS fail_inserts ON events",
            "DROP FUNCTION IF EXISTS test_refuse_append()",
        )


def test_failed_append_after_signing_releases_no_certificate(any_ca: CA) -> None:
    ca = any_ca
    before = ca.count()
    request_id = f"append-fails-{uuid.uuid4().hex[:8]}"
    install_failing_trigger(ca.home)
    try:
        response = ca.sign(
            make_csr("lost.example", ["lost.example"]),
            ca.token("lost.example"),
            request_id=request_id,
        )
        count_while_refusing = ca.count()
    finally:
        drop_failing_trigger(ca.home)

    assert 500 <= response.status_code < 600, response.text
    assert_step_error(response, response.status_code)
    assert "BEGIN CERTIFICATE" not in response.text
    assert count_while_refusing == before
    assert ca.count() == before
    logged = request_log(ca.a, request_id)
    assert logged["status"] == response.status_code
    assert "append refused" in logged["error"]

    # The trigger gone, the next request (a new token) is issued and recorded.
    again = ca.sign(make_csr("lost.example", ["lost.example"]), ca.token("lost.example"))
    assert again.status_code == 201, again.text
    assert ca.count() == before + 1
