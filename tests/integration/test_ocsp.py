"""The OCSP responder of running `ledgerca serve` processes, judged by `openssl ocsp`.

Two processes share one database (SQLite, then PostgreSQL): a revocation written to the
ledger is what both answer on their very next request. Revocations are appended directly as
`x509.revoked` events, the way the revoke endpoint records them.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey
from support.binaries import OPENSSL, needs_openssl
from support.ca_server import (
    PASSWORD,
    CAHome,
    RunningCA,
    init_ca,
    mint_token,
    provisioner_key,
    serve_pair,
    start_ca,
)

from ca.keys.files import encrypt_private_key, generate_private_key, load_private_key
from ca.keys.ids import key_id, public_pem
from ca.pki.ocsp import issuer_hashes
from ca.pki.profiles import build_intermediate_csr, fingerprint, pem, sign_intermediate_csr
from ledger import EventStore, NewEvent, create_engine, format_time
from projections import events as ev
from projections.runner import Projections

# CertIDs are hashed with SHA-1 by every OCSP client (openssl too); not a signature.
SHA1 = hashes.SHA1()  # noqa: S303
OCSP_RESPONSE = "application/ocsp-response"


# -- helpers -------------------------------------------------------------------------------


def database_url(home: CAHome) -> str:
    return home.database or f"sqlite:///{home.home / 'db' / 'ledger.sqlite'}"


def append(home: CAHome, events: list[NewEvent], expected: dict[str, int]) -> None:
    engine = create_engine(database_url(home))
    try:
        store = EventStore(engine, inline=Projections().inline_applier())
        store.append(events, actor={"cli": "test"}, expected=expected)
    finally:
        engine.dispose()


def revoke(home: CAHome, serial: int, reason_code: int, reason: str) -> None:
    stream = ev.x509_stream(str(serial))
    event = NewEvent(
        stream,
        ev.X509Revoked.TYPE,
        {
            "serial": str(serial),
            "reason_code": reason_code,
            "reason": reason,
            "revoked_at": format_time(datetime.now(UTC)),
        },
    )
    append(home, [event], {stream: 1})


def ocsp_request(
    leaf: x509.Certificate | None,
    issuer: x509.Certificate,
    *,
    serial: int | None = None,
    nonce: bytes | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder()
    if leaf is not None:
        builder = builder.add_certificate(leaf, issuer, SHA1)
    else:
        assert serial is not None
        name_hash, key_hash = issuer_hashes(issuer, SHA1)
        builder = builder.add_certificate_by_hash(name_hash, key_hash, serial, SHA1)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def verified(response: httpx.Response, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    """The OCSP response in `response`, after checking its signature with the issuer's key."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == OCSP_RESPONSE
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    public_key = issuer.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    return parsed


@dataclass
class Leaf:
    path: Path
    certificate: x509.Certificate

    @property
    def serial(self) -> int:
        return self.certificate.serial_number


@dataclass
class CA:
    """One CA home served by two `ledgerca serve` processes on one database."""

    home: CAHome
    a: RunningCA
    b: RunningCA
    key: ECKey
    kid: str
    directory: Path

    @property
    def intermediate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.home.intermediate.read_bytes())

    def issue(self, name: str) -> Leaf:
        token = mint_token(
            self.key,
            self.kid,
            subject=name,
            audience=f"https://localhost:{self.a.port}/1.0/sign",
            root_pem=self.home.root.read_bytes(),
        )
        private = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(private, hashes.SHA256())
        )
        with self.a.client() as http:
            response = http.post(
                "/1.0/sign",
                json={"csr": csr.public_bytes(serialization.Encoding.PEM).decode(), "ott": token},
            )
        assert response.status_code == 201, response.text
        path = self.directory / f"{name}-{uuid.uuid4().hex[:6]}.pem"
        path.write_text(response.json()["crt"])
        return Leaf(path, x509.load_pem_x509_certificate(path.read_bytes()))

    def post(self, server: RunningCA, der: bytes, path: str = "/ocsp") -> httpx.Response:
        with server.client() as http:
            return http.post(
                path, content=der, headers={"Content-Type": "application/ocsp-request"}
            )


def openssl_ocsp(
    server: RunningCA, leaf: Path, *extra: str, issuer: Path | None = None, path: str = "/ocsp"
) -> str:
    """`openssl ocsp` against the responder over HTTPS; its whole output."""
    assert OPENSSL is not None
    ca = server.ca
    result = subprocess.run(
        [OPENSSL, "ocsp", "-issuer", str(issuer or ca.intermediate), "-cert", str(leaf),
         "-url", f"{server.url}{path}", "-CAfile", str(ca.root), "-timeout", "20", *extra],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def assert_good(output: str, leaf: Path) -> None:
    assert "Response verify OK" in output, output
    assert f"{leaf}: good" in output, output


def assert_revoked(output: str, leaf: Path, reason: str) -> None:
    assert "Response verify OK" in output, output
    assert f"{leaf}: revoked" in output, output
    assert f"Reason: {reason}" in output, output


def served(home: CAHome, directory: Path) -> Iterator[CA]:
    with serve_pair(home) as (a, b):
        key, kid = provisioner_key(home)
        yield CA(home, a, b, key, kid, directory)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CA]:
    base = tmp_path_factory.mktemp("ocsp-sqlite")
    yield from served(init_ca(base), base)


@pytest.fixture(scope="module")
def postgres_ca(tmp_path_factory: pytest.TempPathFactory, module_postgres_url: str) -> Iterator[CA]:
    base = tmp_path_factory.mktemp("ocsp-pg")
    yield from served(init_ca(base, database=module_postgres_url), base)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_ca(request: pytest.FixtureRequest) -> CA:
    ca: CA = request.getfixturevalue(f"{request.param}_ca")
    return ca


@pytest.fixture
def ca(sqlite_ca: CA) -> CA:
    return sqlite_ca


# -- openssl as the judge ------------------------------------------------------------------


@needs_openssl
def test_openssl_sees_a_revocation_on_every_instance_at_once(any_ca: CA) -> None:
    ca = any_ca
    kept, doomed = ca.issue("kept.example"), ca.issue("doomed.example")
    for server in (ca.a, ca.b):
        assert_good(openssl_ocsp(server, doomed.path), doomed.path)

    revoke(ca.home, doomed.serial, 1, "key left on a laptop")

    for server in (ca.a, ca.b):
        output = openssl_ocsp(server, doomed.path, "-resp_text")
        assert_revoked(output, doomed.path, "keyCompromise")
        assert "Cert Status: revoked" in output
        assert_good(openssl_ocsp(server, kept.path), kept.path)


@needs_openssl
def test_openssl_nonce_round_trips_and_times_are_an_hour_apart(ca: CA) -> None:
    leaf = ca.issue("nonce.example")
    output = openssl_ocsp(ca.a, leaf.path, "-nonce", "-resp_text")
    assert_good(output, leaf.path)
    assert "OCSP Nonce" in output
    assert "WARNING: no nonce in response" not in output
    assert "Nonce Verify error" not in output


@needs_openssl
def test_openssl_under_the_versioned_path(ca: CA) -> None:
    leaf = ca.issue("versioned.example")
    assert_good(openssl_ocsp(ca.b, leaf.path, path="/1.0/ocsp"), leaf.path)


@needs_openssl
def test_openssl_is_told_unauthorized_for_an_issuer_that_is_not_ours(ca: CA) -> None:
    """The intermediate's own issuer is the offline root: not ours to answer for."""
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, "ocsp", "-issuer", str(ca.home.root), "-cert", str(ca.home.intermediate),
         "-url", f"{ca.a.url}/ocsp", "-CAfile", str(ca.home.root), "-timeout", "20"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert "Responder Error: unauthorized (6)" in result.stdout + result.stderr


# -- the protocol through httpx ------------------------------------------------------------


def test_response_fields_over_post(any_ca: CA) -> None:
    ca = any_ca
    leaf = ca.issue("post.example")
    nonce = secrets.token_bytes(16)
    before = datetime.now(UTC).replace(microsecond=0)
    response = ca.post(ca.a, ocsp_request(leaf.certificate, ca.intermediate, nonce=nonce))
    after = datetime.now(UTC)
    parsed = verified(response, ca.intermediate)
    assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert parsed.serial_number == leaf.serial
    assert parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert (
        parsed.responder_key_hash
        == ocsp.load_der_ocsp_request(
            ocsp_request(leaf.certificate, ca.intermediate)
        ).issuer_key_hash
    )
    assert parsed.certificates == []
    assert before <= parsed.this_update_utc <= after
    assert parsed.next_update_utc == parsed.this_update_utc + timedelta(hours=1)
    assert "no-store" in response.headers["cache-control"]


def test_serial_never_issued_is_unknown(any_ca: CA) -> None:
    ca = any_ca
    serial = secrets.randbits(127) + 1
    parsed = verified(
        ca.post(ca.b, ocsp_request(None, ca.intermediate, serial=serial)), ca.intermediate
    )
    assert parsed.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    assert parsed.serial_number == serial


def test_revocation_time_and_reason_over_post(ca: CA) -> None:
    leaf = ca.issue("superseded.example")
    revoke(ca.home, leaf.serial, 4, "replaced")
    parsed = verified(
        ca.post(ca.b, ocsp_request(leaf.certificate, ca.intermediate)), ca.intermediate
    )
    assert parsed.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert parsed.revocation_reason == x509.ReasonFlags.superseded
    revoked_at = parsed.revocation_time_utc
    assert revoked_at is not None
    assert datetime.now(UTC) - revoked_at < timedelta(minutes=1)


def base64_with_plus_and_slash(leaf: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A request whose base64 holds '+', '/' and '=', the characters GET must survive."""
    for _ in range(10_000):
        # The nonce's length moves the padding, its bytes the alphabet.
        der = ocsp_request(leaf, issuer, nonce=secrets.token_bytes(8 + secrets.randbelow(25)))
        text = base64.b64encode(der).decode()
        if "+" in text and "/" in text and text.endswith("="):
            return der
    raise AssertionError("no request with '+', '/' and '=' in its base64")


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda der: base64.b64encode(der).decode(), id="raw"),
        pytest.param(lambda der: quote(base64.b64encode(der).decode(), safe=""), id="escaped"),
        pytest.param(lambda der: base64.urlsafe_b64encode(der).decode().rstrip("="), id="urlsafe"),
    ],
)
def test_get_form(ca: CA, encode: object) -> None:
    assert callable(encode)
    leaf = ca.issue("get.example")
    der = base64_with_plus_and_slash(leaf.certificate, ca.intermediate)
    for path in ("/ocsp/", "/1.0/ocsp/"):
        with ca.a.client() as http:
            response = http.get(path + encode(der))
        parsed = verified(response, ca.intermediate)
        assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD
        assert parsed.serial_number == leaf.serial
        assert response.headers["cache-control"].startswith("max-age=3600")
        assert "expires" in response.headers
        assert "last-modified" in response.headers


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda http: http.post("/ocsp", content=b"\x30\x03junk"), id="post-der"),
        pytest.param(lambda http: http.post("/ocsp", content=b""), id="post-empty"),
        pytest.param(lambda http: http.get("/ocsp/bm90IGFuIE9DU1AgcmVxdWVzdA=="), id="get-der"),
        pytest.param(lambda http: http.get("/ocsp/%%%not-base64"), id="get-base64"),
    ],
)
def test_malformed_request_gets_an_ocsp_error_not_json(ca: CA, send: object) -> None:
    assert callable(send)
    with ca.a.client() as http:
        response = send(http)
    assert response.status_code == 200
    assert response.headers["content-type"] == OCSP_RESPONSE
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_foreign_issuer_is_unauthorized(ca: CA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Somebody Else CA")])
    now = datetime.now(UTC)
    stranger = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    response = ca.post(ca.a, ocsp_request(None, stranger, serial=12345))
    assert response.status_code == 200
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


# -- key rotation ----------------------------------------------------------------------------


def rotate_intermediate(home: CAHome) -> tuple[Path, x509.Certificate]:
    """Activate a new intermediate (same subject, new key) and retire the old one, as a
    rotation would; return the new certificate and where it was written."""
    root_key = load_private_key(
        (home.home / "secrets" / "root_ca_key").read_bytes(), PASSWORD, what="root key"
    )
    root = x509.load_pem_x509_certificate(home.root.read_bytes())
    old = x509.load_pem_x509_certificate(home.intermediate.read_bytes())
    key = generate_private_key("EC")
    new = sign_intermediate_csr(
        build_intermediate_csr(key, name="Test CA"),
        root_cert=root,
        root_key=root_key,
        now=datetime.now(UTC),
    )
    key_file = home.home / "secrets" / "intermediate_ca_key_2"
    key_file.write_bytes(encrypt_private_key(key, PASSWORD))
    os.chmod(key_file, 0o600)
    engine = create_engine(database_url(home))
    try:
        version = EventStore(engine).stream_version(ev.AUTHORITY_STREAM)
    finally:
        engine.dispose()
    old_id = key_id(old.public_key())  # type: ignore[arg-type]
    activated = NewEvent(
        ev.AUTHORITY_STREAM,
        ev.KeyActivated.TYPE,
        {
            "key_id": key_id(key.public_key()),
            "role": "x509_intermediate",
            "certificate": pem(new),
            "public_key": public_pem(key.public_key()),
            "key_ref": {"type": "file", "path": "secrets/intermediate_ca_key_2"},
            "fingerprint": fingerprint(new),
        },
    )
    retired = NewEvent(
        ev.AUTHORITY_STREAM, ev.KeyRetired.TYPE, {"key_id": old_id, "role": "x509_intermediate"}
    )
    append(home, [activated, retired], {ev.AUTHORITY_STREAM: version})
    path = home.home.parent / "intermediate_2.pem"
    path.write_text(pem(new))
    return path, new


@needs_openssl
def test_retired_intermediate_still_answers_for_what_it_issued(tmp_path: Path) -> None:
    home = init_ca(tmp_path)
    running = start_ca(home)
    try:
        key, kid = provisioner_key(home)
        ca = CA(home, running, running, key, kid, tmp_path)
        old_leaf = ca.issue("before.example")
        new_path, new_intermediate = rotate_intermediate(home)
        new_leaf = ca.issue("after.example")
        assert new_leaf.certificate.issuer == new_intermediate.subject
        assert new_leaf.certificate.verify_directly_issued_by(new_intermediate) is None

        # Each certificate is answered by the key that issued it.
        assert_good(openssl_ocsp(running, old_leaf.path), old_leaf.path)
        assert_good(openssl_ocsp(running, new_leaf.path, issuer=new_path), new_leaf.path)

        # Named under the other of our keys (same subject, other key): unknown.
        parsed = verified(
            ca.post(running, ocsp_request(old_leaf.certificate, new_intermediate)),
            new_intermediate,
        )
        assert parsed.certificate_status == ocsp.OCSPCertStatus.UNKNOWN

        revoke(home, old_leaf.serial, 5, "service retired")
        assert_revoked(openssl_ocsp(running, old_leaf.path), old_leaf.path, "cessationOfOperation")
    finally:
        running.stop()


@needs_openssl
def test_only_the_first_of_several_certificates_is_answered(ca: CA) -> None:
    """cryptography writes one SingleResponse per response; openssl says so for the rest."""
    first, second = ca.issue("first.example"), ca.issue("second.example")
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, "ocsp", "-issuer", str(ca.home.intermediate), "-cert", str(first.path),
         "-cert", str(second.path), "-url", f"{ca.a.url}/ocsp", "-CAfile", str(ca.home.root),
         "-timeout", "20"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "Response verify OK" in output, output
    assert f"{first.path}: good" in output, output
    assert "No Status found" in output, output
