"""Real CAs for tests: a newly initialised home (a copy of one real `ledgerca init`, see
`support.pristine`), `ledgerca serve` on a free loopback port with real TLS (one, or a pair
on one database), and one-time tokens minted the way step's CLI mints them."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.jwk import ECKey

from ca.provisioners.jwk_keys import decrypt_provisioner_key
from ledger import EventStore, create_engine
from support import pristine
from support.cli import cli_env, run
from support.waiting import wait_until

PASSWORD = b"ca-password-for-tests"
PROVISIONER_PASSWORD = b"provisioner-password-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ledgerca(
    *args: str, home: Path, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`support.cli.run` in the test's working directory, by default checked."""
    return run(*args, home=home, cwd=Path.cwd(), timeout=timeout, check=check)


@dataclass
class CAHome:
    home: Path
    port: int
    password_file: Path
    provisioner_password_file: Path
    database: str | None = None

    @property
    def root(self) -> Path:
        return self.home / "certs" / "root_ca.crt"

    @property
    def intermediate(self) -> Path:
        return self.home / "certs" / "intermediate_ca.crt"

    def provisioner(self, name: str = "admin") -> dict[str, Any]:
        """The first provisioner.added payload for `name` in the ledger (public key,
        encrypted key), read from the database directly."""
        engine = create_engine(database_url(self))
        try:
            for event in EventStore(engine).read(types=("provisioner.added",)):
                if event.data["name"] == name:
                    return dict(event.data)
        finally:
            engine.dispose()
        raise LookupError(name)


def init_ca(
    base: Path,
    *,
    database: str | None = None,
    name: str = "Test CA",
    extra: tuple[str, ...] = (),
    fresh: bool = False,
) -> CAHome:
    """A newly initialised CA in `base/home` (passwords in `base`), on the embedded SQLite
    ledger or the empty PostgreSQL `database`.

    A copy of a pristine CA of the same name and `extra` init options (see
    `support.pristine`), unless `fresh` (or a `database` that is not PostgreSQL's) asks for
    a `ledgerca init` of its own: keys no other CA in the session has."""
    base.mkdir(parents=True, exist_ok=True)
    password_file = base / "ca.pw"
    password_file.write_bytes(PASSWORD)
    provisioner_password_file = base / "prov.pw"
    provisioner_password_file.write_bytes(PROVISIONER_PASSWORD)
    port = free_port()
    home = base / "home"

    def init_args(port: int, database: str | None) -> list[str]:
        args = [
            "init", "--name", name, "--dns", "localhost,127.0.0.1",
            "--address", f"127.0.0.1:{port}",
            "--password-file", str(password_file),
            "--provisioner-password-file", str(provisioner_password_file),
            *extra,
        ]  # fmt: skip
        return [*args, "--db", database] if database else args

    if fresh or (database is not None and not database.startswith("postgresql")):
        ledgerca(*init_args(port, database), home=home)
    else:
        pristine.clone(
            home,
            kind=json.dumps([name, *extra]),
            address=f"127.0.0.1:{port}",
            database=database,
            init_args=init_args(free_port(), None),
            env=cli_env(),
        )
    return CAHome(home, port, password_file, provisioner_password_file, database)


@dataclass
class RunningCA:
    ca: CAHome
    process: subprocess.Popen[str]
    port: int
    log_file: Path

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return self.log_file.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def client(self, **kwargs: Any) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.ca.root))
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, verify=context, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_ca(
    ca: CAHome, *, port: int | None = None, workers: int = 1, extra: tuple[str, ...] = ()
) -> RunningCA:
    port = port or ca.port
    log_file = ca.home.parent / f"serve-{port}.log"
    log = log_file.open("a")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "ca", "--home", str(ca.home), "serve",
            "--address", f"127.0.0.1:{port}", "--password-file", str(ca.password_file),
            "--workers", str(workers), *extra,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
    )  # fmt: skip
    log.close()  # the child holds its own descriptor
    running = RunningCA(ca, process, port, log_file)

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(
                f"ledgerca serve exited with {process.returncode}:\n{running.output()}"
            )
        try:
            with running.client() as client:
                return client.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 60, f"ledgerca serve answers /health on port {port}")
    except AssertionError:
        running.stop()
        raise
    return running


@contextlib.contextmanager
def serve_pair(ca: CAHome, *, b_workers: int = 1) -> Iterator[tuple[RunningCA, RunningCA]]:
    """Two `ledgerca serve` processes on one CA home and database: `a` on the CA's port,
    `b` (with `b_workers` workers) on another; both stopped afterwards."""
    a = start_ca(ca)
    try:
        b = start_ca(ca, port=free_port(), workers=b_workers)
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def provisioner_key(ca: CAHome, name: str = "admin") -> tuple[ECKey, str]:
    """The private key and kid of the CA's provisioner `name` (password PROVISIONER_PASSWORD)."""
    data = ca.provisioner(name)
    return _decrypted(data["encrypted_key"], name), str(data["key"]["kid"])


@functools.cache
def _decrypted(encrypted_key: str, name: str) -> ECKey:
    # 600,000 PBES2 iterations per decryption; copies of a pristine CA share the ciphertext.
    key = decrypt_provisioner_key(encrypted_key, PROVISIONER_PASSWORD, name=name)
    assert isinstance(key, ECKey)
    return key


def mint_token(
    key: ECKey,
    kid: str,
    *,
    subject: str,
    audience: str,
    issuer: str = "admin",
    sans: list[str] | None = None,
    root_pem: bytes | None = None,
    lifetime: int = 300,
    not_before: int | None = None,
    issued_at: int | None = None,
    alg: str = "ES256",
    extra: dict[str, Any] | None = None,
) -> str:
    """A JWK one-time token as `step ca token` mints it."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "sans": sans if sans is not None else [subject],
        "jti": secrets.token_hex(32),
        "iat": issued_at if issued_at is not None else now,
        "nbf": not_before if not_before is not None else now,
        "exp": now + lifetime,
    }
    if root_pem is not None:
        der = x509.load_pem_x509_certificate(root_pem).public_bytes(serialization.Encoding.DER)
        claims["sha"] = hashlib.sha256(der).hexdigest()
    claims.update(extra or {})
    header = {"alg": alg, "kid": kid, "typ": "JWT"}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key, algorithms=[alg])


def make_csr(subject: str) -> tuple[str, Any]:
    """A P-256 key and a CSR (PEM) with CN=subject: what a client sends to /sign."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def request_certificate(
    running: RunningCA,
    subject: str,
    *,
    key: ECKey | None = None,
    kid: str | None = None,
    issuer: str = "admin",
    **body: str,
) -> tuple[httpx.Response, Any]:
    """POST /1.0/sign with a fresh token for `subject`; returns the response and the key."""
    if key is None or kid is None:
        key, kid = provisioner_key(running.ca, issuer)
    token = mint_token(key, kid, subject=subject, issuer=issuer, audience=f"{running.url}/1.0/sign")
    csr, private = make_csr(subject)
    with running.client() as client:
        response = client.post("/1.0/sign", json={"csr": csr, "ott": token, **body})
    return response, private


def database_url(ca: CAHome) -> str:
    """The URL of the CA's ledger: its PostgreSQL database, or the embedded SQLite file."""
    return ca.database or f"sqlite:///{ca.home / 'db' / 'ledger.sqlite'}"


BACKGROUND_EVENTS = frozenset({"crl.published", "ledger.checkpoint"})
"""What a serving CA's background jobs append on their own schedule (the first CRL a moment
after start, say), never a request."""


def event_count(ca: CAHome) -> int:
    """How many events in the CA's ledger a request could have written (all but
    BACKGROUND_EVENTS), read directly from its database: a refusal must leave it unchanged."""
    engine = create_engine(database_url(ca))
    try:
        return sum(event.type not in BACKGROUND_EVENTS for event in EventStore(engine).read())
    finally:
        engine.dispose()


def log_records(running: RunningCA) -> list[dict[str, Any]]:
    """The server's JSON log lines, parsed (other lines are skipped)."""
    records = []
    for line in running.output().splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def request_log(running: RunningCA, request_id: str, timeout: float = 5) -> dict[str, Any]:
    """The access-log record of one request (written just after its response is sent), by
    the CA's request id or by the X-Request-Id the client sent (its `client_request_id`)."""

    def record() -> dict[str, Any] | None:
        for record in log_records(running):
            if record.get("event") == "request" and request_id in (
                record.get("request_id"),
                record.get("client_request_id"),
            ):
                return record
        return None

    try:
        return wait_until(record, timeout, f"a log line for request {request_id}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{running.output()}") from None
