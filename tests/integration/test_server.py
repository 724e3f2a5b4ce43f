"""`ledgerca serve` as a client sees it: TLS, step-ca's endpoints and shapes, limits, logs.

One CA is served for the whole module; every request goes through a real TLS socket on
loopback, and real clients (openssl, curl) judge the TLS side.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey
from sqlalchemy import select
from support.binaries import CURL, OPENSSL, needs_curl, needs_openssl
from support.ca_server import (
    PROVISIONER_PASSWORD,
    CAHome,
    RunningCA,
    database_url,
    free_port,
    init_ca,
    log_records,
    mint_token,
    request_log,
    start_ca,
)

from ca.provisioners.jwk_keys import create_provisioner_key, decrypt_provisioner_key
from ledger import EventStore, NewEvent, create_engine
from projections import events as ev
from projections.provisioners import provisioners as provisioners_table
from projections.runner import Projections

PREFIXES = ["", "/1.0"]
GET_ROUTES = [
    "/health",
    "/version",
    "/roots",
    "/roots.pem",
    "/intermediates",
    "/intermediates.pem",
    "/federation",
    "/provisioners",
]
NOT_FOUND = (
    "The requested resource could not be found. "
    "Please see the certificate authority logs for more info."
)


# -- fixtures and helpers ------------------------------------------------------------------


def add_provisioners(ca: CAHome, names: list[str]) -> dict[str, Any]:
    """Append `provisioner.added` events as `ledgerca init` writes them; return the keys."""
    keys = {name: create_provisioner_key(b"x", iterations=1000) for name in names}
    events = []
    for name, key in keys.items():
        pid = str(uuid.uuid4())
        events.append(
            NewEvent(
                ev.provisioner_stream(pid),
                ev.ProvisionerAdded.TYPE,
                {
                    "id": pid,
                    "name": name,
                    "type": "JWK",
                    "key": key.public_jwk,
                    "encrypted_key": key.encrypted_key,
                    "claims": {},
                    "options": {},
                },
            )
        )
    engine = create_engine(database_url(ca))
    try:
        store = EventStore(engine, inline=Projections().inline_applier())
        store.append(events, actor={"cli": "test"})
    finally:
        engine.dispose()
    return keys


def provisioner_names(ca: CAHome) -> list[str]:
    """The provisioners in force, in list (insertion) order, read from the projection."""
    engine = create_engine(database_url(ca))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(provisioners_table.c.name).order_by(provisioners_table.c.added_position)
            )
            return [str(name) for (name,) in rows]
    finally:
        engine.dispose()


def issued_events(ca: CAHome) -> list[dict[str, Any]]:
    engine = create_engine(database_url(ca))
    try:
        return [e.data for e in EventStore(engine).read(types=[ev.X509Issued.TYPE])]
    finally:
        engine.dispose()


def make_csr(common_name: str, sans: list[str]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in sans]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def assert_step_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.text.endswith("\n")
    body = response.json()
    assert set(body) == {"status", "message"}
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    return dict(body)


def openssl(*args: str, stdin: str = "", timeout: float = 15) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def s_client(server: RunningCA, *args: str) -> subprocess.CompletedProcess[str]:
    return openssl(
        "s_client",
        "-connect", f"127.0.0.1:{server.port}",
        "-servername", "localhost",
        "-CAfile", str(server.ca.root),
        *args,
    )  # fmt: skip


def negotiated(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """(protocol, cipher) from s_client's "New, TLSv1.2, Cipher is X" line."""
    match = re.search(r"^New, (\S+), Cipher is (\S+)$", result.stdout, re.MULTILINE)
    assert match is not None, result.stdout
    return match[1], match[2]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CAHome:
    return init_ca(tmp_path_factory.mktemp("server-ca"))


@pytest.fixture(scope="module")
def server(ca: CAHome) -> Iterator[RunningCA]:
    running = start_ca(ca)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def admin_key(server: RunningCA) -> tuple[ECKey, str]:
    """The admin provisioner's private key, as `step ca token` gets it: its kid from
    /provisioners, its JWE from /provisioners/{kid}/encrypted-key, decrypted with the password.
    (Decrypting costs ~3 s of PBES2, so it is done once.)"""
    with server.client() as http:
        listed = http.get("/provisioners").json()["provisioners"]
        kid = next(p["key"]["kid"] for p in listed if p["name"] == "admin")
        encrypted = http.get(f"/provisioners/{kid}/encrypted-key").json()["key"]
    key = decrypt_provisioner_key(encrypted, PROVISIONER_PASSWORD, name="admin")
    assert isinstance(key, ECKey)
    return key, kid


@pytest.fixture
def client(server: RunningCA) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


@pytest.fixture(scope="module")
def crowded(ca: CAHome, server: RunningCA) -> list[str]:
    """25 more provisioners (26 with `admin`), appended to the ledger while serving."""
    add_provisioners(ca, [f"extra-{i:02d}" for i in range(25)])
    return provisioner_names(ca)


# -- TLS -----------------------------------------------------------------------------------


@needs_openssl
def test_tls_1_1_handshake_is_refused(server: RunningCA) -> None:
    # SECLEVEL=0 so that our own OpenSSL really offers TLS 1.1: the refusal is the server's.
    result = s_client(server, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    assert result.returncode != 0
    assert "CONNECTED" in result.stdout
    assert "Cipher is (NONE)" in result.stdout
    assert "no protocols available" not in result.stderr


@needs_openssl
@pytest.mark.parametrize(("flag", "version"), [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls_1_2_and_1_3_connect_and_verify(server: RunningCA, flag: str, version: str) -> None:
    result = s_client(server, flag)
    assert result.returncode == 0, result.stdout + result.stderr
    # "New, TLSv1.3, Cipher is …" is the handshake summary; the "Protocol  :" line of the
    # session block may be missing for TLS 1.3 when stdin closes before the session ticket.
    assert negotiated(result)[0] == version, result.stdout
    assert "Verify return code: 0 (ok)" in result.stdout


@needs_openssl
def test_tls_1_2_negotiates_one_of_step_cas_two_suites(server: RunningCA) -> None:
    result = s_client(server, "-tls1_2")
    assert result.returncode == 0, result.stderr
    version, cipher = negotiated(result)
    assert version == "TLSv1.2"
    assert cipher in {"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES128-GCM-SHA256"}
    # A suite outside the configured pair is not offered.
    refused = s_client(server, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384")
    assert refused.returncode != 0
    assert "Cipher is (NONE)" in refused.stdout


def attempt_renegotiation(server: RunningCA, timeout: float = 15) -> str:
    """Connect with TLS 1.2 and ask for a renegotiation ("R" on s_client's stdin, typed once
    the handshake is done); return what s_client printed."""
    assert OPENSSL is not None
    process = subprocess.Popen(
        [
            OPENSSL, "s_client", "-connect", f"127.0.0.1:{server.port}", "-tls1_2",
            "-CAfile", str(server.ca.root),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()

    def wait_for(text: str) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in list(lines)) or process.poll() is not None:
                return any(text in line for line in list(lines))
            time.sleep(0.05)
        return False

    try:
        assert wait_for("Verify return code"), "".join(lines)  # the handshake is done
        process.stdin.write("R\n")
        process.stdin.flush()
        wait_for("renegotiation")  # the refusal, or nothing if it was accepted
        time.sleep(0.2)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        reader.join(timeout=10)
        process.stdin.close()
        process.stdout.close()
    return "".join(lines)


@needs_openssl
def test_tls_1_2_renegotiation_is_refused(server: RunningCA) -> None:
    # A real client-initiated renegotiation rather than s_client's "Secure Renegotiation IS
    # supported" line, which only reports the RFC 5746 extension (OpenSSL always sends it).
    # OpenSSL 3 servers also refuse client renegotiation by default: this checks the outcome.
    output = attempt_renegotiation(server)
    assert "RENEGOTIATING" in output, output
    assert "no renegotiation" in output, output
    with server.client() as http:
        assert http.get("/health").status_code == 200


@needs_openssl
def test_refused_renegotiation_does_not_spoil_a_clean_shutdown(ca: CAHome) -> None:
    running = start_ca(ca, port=free_port())
    try:
        assert "no renegotiation" in attempt_renegotiation(running)
        with running.client() as http:
            assert http.get("/health").status_code == 200
    finally:
        running.stop()
    output = running.output()
    assert running.process.returncode == 0, output
    assert "Traceback" not in output


@needs_openssl
def test_server_certificate_is_issued_by_the_intermediate_and_recorded(
    server: RunningCA, ca: CAHome, tmp_path: Path
) -> None:
    pem = ssl.get_server_certificate(("127.0.0.1", server.port), ca_certs=str(ca.root))
    certificate = x509.load_pem_x509_certificate(pem.encode())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    intermediate = x509.load_pem_x509_certificate(ca.intermediate.read_bytes())
    assert certificate.issuer == intermediate.subject

    leaf = tmp_path / "server.crt"
    leaf.write_text(pem)
    result = openssl(
        "verify", "-CAfile", str(ca.root), "-untrusted", str(ca.intermediate), str(leaf)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{leaf}: OK" in result.stdout

    recorded = [e for e in issued_events(ca) if e["serial"] == str(certificate.serial_number)]
    assert len(recorded) == 1
    assert recorded[0]["provisioner"] is None
    assert recorded[0]["token_id"] is None
    assert x509.load_pem_x509_certificate(recorded[0]["certificate"].encode()) == certificate


@needs_curl
def test_curl_trusting_only_the_root_gets_health(server: RunningCA) -> None:
    assert CURL is not None
    result = subprocess.run(
        [CURL, "--silent", "--show-error", "--max-time", "10", "--cacert", str(server.ca.root),
         f"https://localhost:{server.port}/health"],
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"status": "ok"}


# -- endpoints -----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_health_and_version(client: httpx.Client, prefix: str) -> None:
    health = client.get(f"{prefix}/health")
    assert health.status_code == 200
    assert health.text == '{"status":"ok"}\n'
    version = client.get(f"{prefix}/version")
    assert version.status_code == 200
    assert version.text.endswith("\n")
    assert isinstance(version.json()["version"], str)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_root_by_fingerprint_in_any_spelling(client: httpx.Client, ca: CAHome, prefix: str) -> None:
    root_pem = ca.root.read_text()
    digest = x509.load_pem_x509_certificate(root_pem.encode()).fingerprint(hashes.SHA256()).hex()
    dashed = "-".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    for spelling in (digest, digest.upper(), dashed, dashed.upper()):
        response = client.get(f"{prefix}/root/{spelling}")
        assert response.status_code == 200, spelling
        assert response.text.endswith("\n")
        assert response.json() == {"ca": root_pem}
    unknown = client.get(f"{prefix}/root/{'ab' * 32}")
    assert assert_step_error(unknown, 404)["message"] == NOT_FOUND


@pytest.mark.parametrize("prefix", PREFIXES)
def test_roots_intermediates_and_federation(client: httpx.Client, ca: CAHome, prefix: str) -> None:
    root_pem, intermediate_pem = ca.root.read_text(), ca.intermediate.read_text()
    for path, expected in (
        ("/roots", [root_pem]),
        ("/intermediates", [intermediate_pem]),
        ("/federation", [root_pem]),
    ):
        response = client.get(prefix + path)
        assert response.status_code == 201, path  # step-ca answers these with 201 Created
        assert response.text.endswith("\n")
        assert response.json() == {"crts": expected}
    for path, expected_pem in (("/roots.pem", root_pem), ("/intermediates.pem", intermediate_pem)):
        response = client.get(prefix + path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-pem-file")
        assert response.text == expected_pem


@pytest.mark.parametrize("prefix", PREFIXES)
def test_provisioners_lists_the_admin_provisioner(client: httpx.Client, prefix: str) -> None:
    response = client.get(f"{prefix}/provisioners")
    assert response.status_code == 200
    assert response.text.endswith("\n")
    body = response.json()
    assert set(body) == {"provisioners", "nextCursor"}
    admin = body["provisioners"][0]
    assert admin["type"] == "JWK"
    assert admin["name"] == "admin"
    assert admin["key"]["kid"]
    assert "d" not in admin["key"]  # the public key only
    assert admin["encryptedKey"].count(".") == 4


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("path", GET_ROUTES)
def test_head_answers_every_get_route_without_a_body(
    client: httpx.Client, prefix: str, path: str
) -> None:
    # As chi's GetHead in step-ca: the GET handler's status (201 for /roots...), no body.
    get = client.get(prefix + path)
    response = client.head(prefix + path)
    assert response.status_code == get.status_code
    assert response.status_code in (200, 201)
    assert response.content == b""
    assert response.headers["content-type"] == get.headers["content-type"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_unknown_route_and_bad_method_answer_in_step_ca_shape(
    client: httpx.Client, prefix: str
) -> None:
    assert assert_step_error(client.get(f"{prefix}/no-such-route"), 404)["message"] == NOT_FOUND
    assert_step_error(client.delete(f"{prefix}/health"), 405)
    assert_step_error(client.get(f"{prefix}/sign"), 405)
    assert_step_error(client.post(f"{prefix}/roots", json={}), 405)


# -- /provisioners pagination --------------------------------------------------------------


def page_through(client: httpx.Client, limit: str) -> tuple[list[str], list[int]]:
    names: list[str] = []
    sizes: list[int] = []
    cursor = ""
    for _ in range(100):
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/provisioners", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        names += [p["name"] for p in body["provisioners"]]
        sizes.append(len(body["provisioners"]))
        cursor = body["nextCursor"]
        if not cursor:
            return names, sizes
    raise AssertionError("pagination did not end")


def test_provisioners_default_limit_is_20(
    client: httpx.Client, ca: CAHome, crowded: list[str]
) -> None:
    expected = provisioner_names(ca)
    body = client.get("/provisioners").json()
    assert [p["name"] for p in body["provisioners"]] == expected[:20]
    assert body["nextCursor"]
    assert len(body["nextCursor"]) <= 40
    rest = client.get("/provisioners", params={"cursor": body["nextCursor"]}).json()
    assert [p["name"] for p in rest["provisioners"]] == expected[20:40]


def test_provisioners_pages_of_5_cover_every_provisioner_once(
    client: httpx.Client, ca: CAHome, crowded: list[str]
) -> None:
    names, sizes = page_through(client, "5")
    expected = provisioner_names(ca)
    assert len(expected) >= 26
    assert names == expected
    assert all(size == 5 for size in sizes[:-1])
    assert len(sizes) == -(-len(expected) // 5)


@pytest.mark.parametrize(("limit", "size"), [("0", 20), ("-3", 20), ("20", 20), ("7", 7)])
def test_provisioners_limit_below_one_means_the_default(
    client: httpx.Client, crowded: list[str], limit: str, size: int
) -> None:
    body = client.get("/provisioners", params={"limit": limit}).json()
    assert len(body["provisioners"]) == size
    assert body["nextCursor"]


def test_provisioners_limit_is_capped_at_100(
    client: httpx.Client, ca: CAHome, crowded: list[str]
) -> None:
    missing = 105 - len(provisioner_names(ca))
    if missing > 0:
        add_provisioners(ca, [f"bulk-{uuid.uuid4().hex[:8]}" for _ in range(missing)])
    expected = provisioner_names(ca)
    body = client.get("/provisioners", params={"limit": "500"}).json()
    assert [p["name"] for p in body["provisioners"]] == expected[:100]
    assert body["nextCursor"]
    rest = client.get("/provisioners", params={"limit": "500", "cursor": body["nextCursor"]})
    assert [p["name"] for p in rest.json()["provisioners"]] == expected[100:]
    assert rest.json()["nextCursor"] == ""


@pytest.mark.parametrize("limit", ["abc", "1.5", "ten"])
def test_provisioners_non_integer_limit_is_400(client: httpx.Client, limit: str) -> None:
    assert_step_error(client.get("/provisioners", params={"limit": limit}), 400)


def test_provisioner_added_while_serving_is_listed_on_the_next_request(
    client: httpx.Client, ca: CAHome
) -> None:
    client.get("/provisioners")  # warm the cache first
    name = f"live-{uuid.uuid4().hex[:8]}"
    key = add_provisioners(ca, [name])[name]
    names, _ = page_through(client, "100")
    assert names[-1] == name
    response = client.get(f"/1.0/provisioners/{key.kid}/encrypted-key")
    assert response.status_code == 200
    assert response.json() == {"key": key.encrypted_key}


# -- /provisioners/{kid}/encrypted-key -----------------------------------------------------


def test_encrypted_key_decrypts_with_the_provisioner_password(
    client: httpx.Client, admin_key: tuple[ECKey, str]
) -> None:
    key, kid = admin_key
    served = []
    for prefix in PREFIXES:
        response = client.get(f"{prefix}/provisioners/{kid}/encrypted-key")
        assert response.status_code == 200
        assert response.text.endswith("\n")
        body = response.json()
        assert set(body) == {"key"}
        served.append(body["key"])
    assert served[0] == served[1]
    protected = served[0].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    assert header["alg"] == "PBES2-HS256+A128KW"
    assert header["enc"] == "A256GCM"
    # `admin_key` is that JWE decrypted with the provisioner password (see the fixture).
    assert key.is_private
    assert key.thumbprint() == kid


@pytest.mark.parametrize("prefix", PREFIXES)
def test_encrypted_key_of_an_unknown_kid_is_404(client: httpx.Client, prefix: str) -> None:
    response = client.get(f"{prefix}/provisioners/no-such-kid/encrypted-key")
    assert assert_step_error(response, 404)["message"] == NOT_FOUND


# -- X-Request-Id --------------------------------------------------------------------------


def test_request_id_sent_by_the_client_is_logged_beside_the_cas_own(
    client: httpx.Client, server: RunningCA
) -> None:
    # Issue #13: the CA's id is its own; the client's is kept as client_request_id.
    client_id = f"test-{uuid.uuid4()}"
    response = client.get("/health", headers={"X-Request-Id": client_id})
    own = response.headers["x-request-id"]
    assert uuid.UUID(own).version == 4
    logged = request_log(server, client_id)
    assert logged["path"] == "/health"
    assert logged["request_id"] == own
    assert logged["client_request_id"] == client_id


def test_request_id_is_generated_when_absent(client: httpx.Client) -> None:
    first = client.get("/health").headers["x-request-id"]
    second = client.get("/1.0/version").headers["x-request-id"]
    assert uuid.UUID(first).version == 4
    assert uuid.UUID(second).version == 4
    assert first != second
    # Also on errors.
    assert uuid.UUID(client.get("/nowhere").headers["x-request-id"])


# -- limits --------------------------------------------------------------------------------


def test_body_over_64_kib_is_413_with_content_length(client: httpx.Client) -> None:
    response = client.post("/sign", content=b"x" * (64 * 1024 + 1))
    assert_step_error(response, 413)


def test_early_413_announces_that_the_connection_closes(server: RunningCA) -> None:
    # Refused before the body is read, the connection cannot carry another request and the
    # server closes it. Unannounced, a client that reuses it (keep-alive) races the close and
    # its next request fails ("server disconnected"); RFC 9112 §9.6 says to send "close".
    context = ssl.create_default_context(cafile=str(server.ca.root))
    body = b"x" * 100_000
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(
            b"POST /sign HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:1000]
        )
        received = b""
        with contextlib.suppress(ssl.SSLEOFError):  # closed without close_notify
            while chunk := tls.recv(65536):
                received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert head.startswith("http/1.1 413")
    assert "connection: close" in head.splitlines()


def test_body_over_64_kib_is_413_when_chunked(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * 4096

    response = client.post("/1.0/sign", content=chunks())
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_step_error(response, 413)


def test_body_of_exactly_64_kib_is_read(client: httpx.Client) -> None:
    body = b" " * (64 * 1024 - 2) + b"{}"
    response = client.post("/sign", content=body)
    # Read and parsed (an empty object): the CSR is missing, not the body too large.
    assert "missing csr" in assert_step_error(response, 400)["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "error decoding json"),
        (b"[]", "error decoding json"),
        (b'["csr", "ott"]', "error decoding json"),
        (b'"a string"', "error decoding json"),
        (b"\xff\xfe", "error decoding json"),
        (b'{"csr": "not a PEM", "ott": "x.y.z"}', "invalid csr"),
        (b'{"ott": "x.y.z"}', "missing csr"),
    ],
)
def test_malformed_sign_requests_are_400(client: httpx.Client, body: bytes, message: str) -> None:
    error = assert_step_error(client.post("/sign", content=body), 400)
    assert error["message"].startswith("The request could not be completed: ")
    assert message in error["message"]


def test_sign_without_ott_is_400(client: httpx.Client) -> None:
    response = client.post("/sign", json={"csr": make_csr("a.example", ["a.example"])})
    assert "missing ott" in assert_step_error(response, 400)["message"]


def test_headers_over_16_kib_are_refused(server: RunningCA) -> None:
    with server.client() as http:
        try:
            response = http.get("/health", headers={"X-Padding": "a" * (20 * 1024)})
        except httpx.HTTPError:
            pass  # the connection was dropped: refused too
        else:
            assert response.status_code == 431, response.text
    with server.client() as http:
        many = {f"X-Padding-{i}": "a" * 200 for i in range(100)}  # ~21 KiB in 100 headers
        try:
            response = http.get("/health", headers=many)
        except httpx.HTTPError:
            pass
        else:
            assert response.status_code == 431, response.text


def test_server_keeps_serving_after_refusing_bad_requests(server: RunningCA) -> None:
    for send in (
        lambda http: http.post("/sign", content=b"x" * 100_000),
        lambda http: http.post("/sign", content=b"["),
        lambda http: http.get("/health", headers={"X-Padding": "a" * 70_000}),
    ):
        with server.client() as http, contextlib.suppress(httpx.HTTPError):
            send(http)
    with server.client() as http:
        assert http.get("/health").json() == {"status": "ok"}
    assert server.process.poll() is None


# -- logs ----------------------------------------------------------------------------------


def test_one_json_log_line_per_request_and_no_secrets(
    ca: CAHome, admin_key: tuple[ECKey, str]
) -> None:
    # A server of our own, so that its whole output can be read after it stopped.
    running = start_ca(ca, port=free_port())
    try:
        key, kid = admin_key
        token = mint_token(
            key,
            kid,
            subject="log.example",
            audience=f"https://localhost:{running.port}/1.0/sign",
            root_pem=ca.root.read_bytes(),
        )
        with running.client() as http:
            health = http.get("/health", headers={"X-Request-Id": "log-health"})
            signed = http.post(
                "/1.0/sign",
                json={"csr": make_csr("log.example", ["log.example"]), "ott": token},
                headers={"X-Request-Id": "log-sign"},
            )
            replay = http.post(
                "/1.0/sign",
                json={"csr": make_csr("log.example", ["log.example"]), "ott": token},
                headers={"X-Request-Id": "log-replay"},
            )
            missing = http.get("/missing", headers={"X-Request-Id": "log-404"})
        assert health.status_code == 200
        assert signed.status_code == 201, signed.text
        assert replay.status_code == 401
        assert missing.status_code == 404
    finally:
        running.stop()
    output = running.output()
    assert running.process.returncode == 0, output

    records = {
        r["client_request_id"]: r
        for r in log_records(running)
        if r.get("event") == "request" and "client_request_id" in r
    }
    for request_id, path, status in (
        ("log-health", "/health", 200),
        ("log-sign", "/1.0/sign", 201),
        ("log-replay", "/1.0/sign", 401),
        ("log-404", "/missing", 404),
    ):
        record = records[request_id]
        assert record["path"] == path
        assert record["status"] == status
        assert isinstance(record["latency_ms"], (int, float))
    request_lines = [r for r in log_records(running) if r.get("event") == "request"]
    assert len(request_lines) == len({r["request_id"] for r in request_lines})

    leaf = x509.load_pem_x509_certificate(signed.json()["crt"].encode())
    sign_record = records["log-sign"]
    assert sign_record["provisioner"] == "admin"
    assert sign_record["serial"] == str(leaf.serial_number)
    recorded = [e for e in issued_events(ca) if e["serial"] == str(leaf.serial_number)]
    assert len(recorded) == 1
    assert isinstance(sign_record["position"], int) and sign_record["position"] > 0
    assert "token already used" in records["log-replay"]["error"]

    assert token not in output
    for part in token.split("."):
        assert part not in output
    assert PROVISIONER_PASSWORD.decode() not in output
    assert ca.password_file.read_text() not in output
