"""CRLs from running `ledgerca serve` processes, judged by openssl.

Two servers share one database (SQLite, and PostgreSQL where storage matters); the second
has its own home (a copy of the first, pointed at the same database). Revocations are
appended to the ledger directly — a real ledger change every instance must honour — and
leaves come from `POST /1.0/sign` through a provisioner whose template adds a CRL
Distribution Point (step-ca's advice); the CRL, complete, covers them as it covers leaves
without one (`test_crl_scope.py`).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
import tomllib
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey
from support.binaries import OPENSSL, needs_openssl
from support.ca_server import (
    PASSWORD,
    PROVISIONER_PASSWORD,
    CAHome,
    RunningCA,
    free_port,
    ledgerca,
    mint_token,
    start_ca,
)
from support.waiting import wait_until

from ca.keys.files import load_private_key
from ca.provisioners.jwk_keys import create_provisioner_key, decrypt_provisioner_key
from ledger import EventStore, create_engine, format_time
from projections.events import CRLPublished, ProvisionerAdded, X509Revoked
from projections.runner import Projections

PROVISIONER = "crl-leaves"
WAIT = 10.0


# -- a CA with two servers -----------------------------------------------------------------


def edit_config(home: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = home / "config" / "ca.toml"
    config = tomllib.loads(path.read_text())
    change(config)
    path.write_text(tomli_w.dumps(config))


def init_home(base: Path, database: str | None, root_crl_url: str) -> CAHome:
    base.mkdir(parents=True, exist_ok=True)
    (base / "ca.pw").write_bytes(PASSWORD)
    (base / "prov.pw").write_bytes(PROVISIONER_PASSWORD)
    port = free_port()
    args = [
        "init", "--name", "CRL Test", "--dns", "localhost,127.0.0.1",
        "--address", f"127.0.0.1:{port}", "--password-file", str(base / "ca.pw"),
        "--provisioner-password-file", str(base / "prov.pw"),
        "--intermediate-crl-url", root_crl_url,
    ]  # fmt: skip
    if database:
        args += ["--db", database]
    ledgerca(*args, home=base / "home")
    return CAHome(base / "home", port, base / "ca.pw", base / "prov.pw", database)


def sibling_home(ca: CAHome, name: str, **crl: Any) -> CAHome:
    """Another instance's home: the same keys and database, its own [crl] settings."""
    home = ca.home.parent / name
    shutil.copytree(ca.home, home, ignore=shutil.ignore_patterns("db", "server_tls*"))
    database = ca.database or f"sqlite:///{ca.home / 'db' / 'ledger.sqlite'}"

    def change(config: dict[str, Any]) -> None:
        config["database"] = database
        config["crl"].update(insecure_address="", **crl)

    edit_config(home, change)
    return CAHome(home, free_port(), ca.password_file, ca.provisioner_password_file, ca.database)


@dataclass
class CRLCA:
    home: CAHome
    a: RunningCA
    b: RunningCA
    http_port: int
    root_crl_url: str
    key: ECKey
    kid: str

    @property
    def database(self) -> str:
        return self.home.database or f"sqlite:///{self.home.home / 'db' / 'ledger.sqlite'}"

    def store(self) -> tuple[EventStore, Callable[[], None]]:
        engine = create_engine(self.database)
        return EventStore(engine, inline=Projections().inline_applier()), engine.dispose

    def leaf(self, name: str) -> tuple[int, str]:
        """A leaf from `POST /1.0/sign` on server a: (serial, PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256())
        )
        token = mint_token(
            self.key,
            self.kid,
            subject=name,
            audience=f"https://localhost:{self.a.port}/1.0/sign",
            issuer=PROVISIONER,
            root_pem=self.home.root.read_bytes(),
        )
        body = {"csr": csr.public_bytes(serialization.Encoding.PEM).decode(), "ott": token}
        with self.a.client() as http:
            response = http.post("/1.0/sign", json=body)
        assert response.status_code == 201, response.text
        crt = response.json()["crt"]
        return x509.load_pem_x509_certificate(crt.encode()).serial_number, crt

    def revoke(self, serial: int, reason_code: int = 1) -> int:
        """Append `x509.revoked` to the shared ledger; return its position."""
        store, close = self.store()
        try:
            (recorded,) = store.append(
                [
                    X509Revoked(
                        serial=str(serial),
                        reason_code=reason_code,
                        reason="test",
                        revoked_at=format_time(datetime.now(UTC)),
                    ).to_new_event()
                ],
                actor={"cli": "test"},
            )
        finally:
            close()
        return recorded.position

    def published(self) -> list[dict[str, Any]]:
        store, close = self.store()
        try:
            return [
                {**e.data, "version": e.version, "stream": e.stream}
                for e in store.read(types=[CRLPublished.TYPE])
            ]
        finally:
            close()


def add_provisioner(ca: CAHome, cdp_url: str) -> tuple[ECKey, str]:
    """A JWK provisioner whose leaves carry a CRL Distribution Point (step-ca's advice)."""
    template = (
        '{"subject": {{ subject }}, "sans": {{ sans }}, "keyUsage": ["digitalSignature"],'
        ' "extKeyUsage": ["serverAuth", "clientAuth"],'
        f' "crlDistributionPoints": ["{cdp_url}"]}}'
    )
    created = create_provisioner_key(b"x", iterations=1000)
    event = ProvisionerAdded(
        id=str(uuid.uuid4()),
        name=PROVISIONER,
        type="JWK",
        key=created.public_jwk,
        encrypted_key=created.encrypted_key,
        claims={},
        options={"x509": {"template": template}},
    ).to_new_event()
    engine = create_engine(ca.database or f"sqlite:///{ca.home / 'db' / 'ledger.sqlite'}")
    try:
        EventStore(engine, inline=Projections().inline_applier()).append(
            [event], actor={"cli": "test"}, expected={event.stream: 0}
        )
    finally:
        engine.dispose()
    key = decrypt_provisioner_key(created.encrypted_key, b"x", name=PROVISIONER)
    assert isinstance(key, ECKey)
    return key, str(created.public_jwk["kid"])


def serve_crl_ca(base: Path, database: str | None = None) -> Iterator[CRLCA]:
    root_crl_url = f"http://127.0.0.1:{free_port()}/root.crl"
    home = init_home(base, database, root_crl_url)
    http_port = free_port()

    def change(config: dict[str, Any]) -> None:
        config["crl"].update(poll_interval="200ms", insecure_address=f"127.0.0.1:{http_port}")

    edit_config(home.home, change)
    b_home = sibling_home(home, "home-b", poll_interval="200ms")
    a = start_ca(home)
    try:
        b = start_ca(b_home)
    except BaseException:
        a.stop()
        raise
    try:
        key, kid = add_provisioner(home, f"https://localhost:{home.port}/1.0/crl")
        yield CRLCA(home, a, b, http_port, root_crl_url, key, kid)
    finally:
        a.stop()
        b.stop()


@pytest.fixture(scope="module")
def sqlite_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CRLCA]:
    yield from serve_crl_ca(tmp_path_factory.mktemp("crl-sqlite"))


@pytest.fixture(scope="module")
def postgres_ca(
    tmp_path_factory: pytest.TempPathFactory, module_postgres_url: str
) -> Iterator[CRLCA]:
    yield from serve_crl_ca(tmp_path_factory.mktemp("crl-pg"), module_postgres_url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_ca(request: pytest.FixtureRequest) -> CRLCA:
    ca: CRLCA = request.getfixturevalue(f"{request.param}_ca")
    return ca


@pytest.fixture
def ca(sqlite_ca: CRLCA) -> CRLCA:
    return sqlite_ca


# -- fetching and judging ------------------------------------------------------------------


def get_crl(server: RunningCA, path: str = "/1.0/crl") -> httpx.Response:
    with server.client() as http:
        return http.get(path)


def crl_of(response: httpx.Response) -> x509.CertificateRevocationList:
    assert response.status_code == 200, response.text
    return x509.load_der_x509_crl(response.content)


def number_of(crl: x509.CertificateRevocationList) -> int:
    return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)


def wait_for_crl(
    server: RunningCA, ready: Callable[[x509.CertificateRevocationList], bool]
) -> x509.CertificateRevocationList:
    last: list[x509.CertificateRevocationList] = []

    def published() -> bool:
        # A bool, not the CRL: a CRL listing nothing is falsy (its length is 0).
        response = get_crl(server)
        if response.status_code != 200:
            return False
        last[:] = [x509.load_der_x509_crl(response.content)]
        return ready(last[0])

    try:
        wait_until(published, WAIT, "such a CRL")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last: {last and list(last[0])}") from None
    return last[0]


def listed(crl: x509.CertificateRevocationList) -> set[int]:
    return {r.serial_number for r in crl}


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, *args], capture_output=True, text=True, timeout=30, check=False
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def write(directory: Path, name: str, data: str | bytes) -> str:
    path = directory / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(path)


def pem_crl(server: RunningCA) -> bytes:
    response = get_crl(server, "/1.0/crl?pem")
    assert response.status_code == 200, response.text
    return response.content


# -- serving -------------------------------------------------------------------------------


@needs_openssl
def test_openssl_verifies_the_served_crl_against_the_intermediate(
    ca: CRLCA, tmp_path: Path
) -> None:
    der = get_crl(ca.a).content
    bundle = ca.home.root.read_text() + ca.home.intermediate.read_text()
    result = openssl(
        "crl", "-inform", "DER", "-in", write(tmp_path, "crl.der", der),
        "-CAfile", write(tmp_path, "bundle.pem", bundle), "-verify", "-noout",
    )  # fmt: skip
    assert "verify OK" in result.stdout + result.stderr
    text = openssl("crl", "-inform", "DER", "-in", str(tmp_path / "crl.der"), "-noout", "-text")
    assert "X509v3 CRL Number:" in text.stdout
    # Complete: no Issuing Distribution Point narrows it to some certificates (ca.crl.urls).
    assert "Issuing Distribution Point" not in text.stdout


def test_the_crl_is_der_with_step_ca_headers_and_expires_at_next_update(ca: CRLCA) -> None:
    response = get_crl(ca.a)
    crl = crl_of(response)
    assert response.headers["content-type"] == "application/pkix-crl"
    assert response.headers["content-disposition"] == 'attachment; filename="crl.crl"'
    assert parsedate_to_datetime(response.headers["expires"]) == crl.next_update_utc
    assert parsedate_to_datetime(response.headers["last-modified"]) == crl.last_update_utc
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - crl.last_update_utc == (__import__("datetime").timedelta(hours=24))
    intermediate = x509.load_pem_x509_certificate(ca.home.intermediate.read_bytes())
    assert crl.issuer == intermediate.subject
    assert crl.is_signature_valid(intermediate.public_key())  # type: ignore[arg-type]


def test_pem_and_both_paths_serve_the_same_crl(ca: CRLCA) -> None:
    crl = wait_for_crl(ca.a, lambda c: True)
    number = number_of(crl)
    der = get_crl(ca.a).content
    if number_of(x509.load_der_x509_crl(der)) != number:  # a publication in between
        der = get_crl(ca.a).content
    assert get_crl(ca.a, "/crl").content == der
    response = get_crl(ca.a, "/crl?pem")
    assert response.headers["content-type"] == "application/x-pem-file"
    assert response.content.startswith(b"-----BEGIN X509 CRL-----\n")
    assert x509.load_pem_x509_crl(response.content).public_bytes(serialization.Encoding.DER) == der


def test_the_plain_http_listener_serves_the_same_crl_and_nothing_else(ca: CRLCA) -> None:
    base = f"http://127.0.0.1:{ca.http_port}"
    over_tls = get_crl(ca.a).content
    plain = httpx.get(base + "/crl", timeout=10)
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/pkix-crl"
    if plain.content != over_tls:  # a publication in between
        over_tls = get_crl(ca.a).content
    assert plain.content == over_tls
    assert httpx.get(base + "/1.0/crl", timeout=10).content == plain.content
    assert httpx.head(base + "/1.0/crl", timeout=10).status_code == 200
    for method, path in [("GET", "/health"), ("GET", "/roots"), ("POST", "/1.0/sign"),
                         ("POST", "/crl")]:  # fmt: skip
        refused = httpx.request(method, base + path, timeout=10, json={})
        assert refused.status_code == 404, (method, path)
        assert refused.json()["status"] == 404


def test_an_instance_with_crls_disabled_answers_404(ca: CRLCA) -> None:
    disabled = start_ca(sibling_home(ca.home, "home-disabled", enabled=False))
    try:
        wait_for_crl(ca.a, lambda c: True)  # the others publish; this one still says no
        response = get_crl(disabled)
        assert response.status_code == 404
        assert response.json() == {
            "status": 404,
            "message": "The requested resource could not be found. "
            "Please see the certificate authority logs for more info.",
        }
    finally:
        disabled.stop()


# -- revocations across instances ----------------------------------------------------------


@needs_openssl
def test_a_revocation_reaches_the_crl_of_another_instance_and_openssl_rejects_the_leaf(
    any_ca: CRLCA, tmp_path: Path
) -> None:
    ca = any_ca
    revoked_serial, revoked_pem = ca.leaf("revoked.example")
    _, good_pem = ca.leaf("good.example")
    before = number_of(wait_for_crl(ca.b, lambda c: True))

    ca.revoke(revoked_serial, reason_code=1)

    # The other instance publishes on its NOTIFY wake-up or its next poll; wait_for_crl's
    # timeout bounds the wait, and no timing is asserted (this machine's speed varies).
    crl = wait_for_crl(ca.b, lambda c: revoked_serial in listed(c))
    assert number_of(crl) > before
    (entry,) = [r for r in crl if r.serial_number == revoked_serial]
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )

    served = pem_crl(ca.b)
    crl_file = write(tmp_path, "crl.pem", served)
    common = ["verify", "-crl_check", "-CAfile", str(ca.home.root),
              "-untrusted", str(ca.home.intermediate), "-CRLfile", crl_file]  # fmt: skip
    good = openssl(*common, write(tmp_path, "good.pem", good_pem))
    assert good.stdout.strip().endswith(": OK")
    bad = openssl(*common, write(tmp_path, "revoked.pem", revoked_pem), check=False)
    assert bad.returncode != 0
    assert "certificate revoked" in bad.stdout + bad.stderr


def test_two_instances_never_publish_two_crls_under_one_number(any_ca: CRLCA) -> None:
    ca = any_ca
    serials = [ca.leaf(f"race-{n}.example")[0] for n in range(4)]
    for serial in serials:
        ca.revoke(serial, reason_code=4)
        time.sleep(0.05)
    crl_a = wait_for_crl(ca.a, lambda c: set(serials) <= listed(c))
    crl_b = wait_for_crl(ca.b, lambda c: number_of(c) >= number_of(crl_a))

    by_stream: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in ca.published():
        by_stream[event["stream"]].append(event)
    (events,) = by_stream.values()  # one issuer
    numbers = [e["number"] for e in events]
    assert numbers == list(range(1, len(numbers) + 1))
    assert [e["version"] for e in events] == numbers
    throughs = [e["revoked_through"] for e in events]
    assert throughs == sorted(throughs)
    # One number, one CRL: what either server serves is the recorded DER for its number.
    recorded = {e["number"]: base64.b64decode(e["der"]) for e in events}
    for crl in (crl_a, crl_b):
        assert recorded[number_of(crl)] == crl.public_bytes(serialization.Encoding.DER)


# -- index.txt and openssl ca --------------------------------------------------------------


@needs_openssl
def test_openssl_ca_gencrl_over_our_index_txt_lists_exactly_the_revoked_serials(
    ca: CRLCA, tmp_path: Path
) -> None:
    # As our CRLs say it: no reason for unspecified, none for the codes `openssl ca` lacks.
    reasons = {
        1: x509.ReasonFlags.key_compromise,
        4: x509.ReasonFlags.superseded,
        9: None,
        0: None,
    }
    revoked = {}
    for code in reasons:
        serial, _ = ca.leaf(f"index-{code}.example")
        ca.revoke(serial, reason_code=code)
        revoked[serial] = code
    ca.leaf("index-valid.example")

    out = ledgerca("crl", "index", "--out", str(tmp_path / "index.txt"), home=ca.home.home)
    assert "certificate(s) written" in out.stderr
    lines = (tmp_path / "index.txt").read_text().splitlines()
    by_serial = {int(line.split("\t")[3], 16): line.split("\t") for line in lines}
    for serial in revoked:
        assert by_serial[serial][0] == "R"
    assert any(fields[0] == "V" for fields in by_serial.values())
    every_revoked = {s for s, fields in by_serial.items() if fields[0] == "R"}

    key = load_private_key(
        (ca.home.home / "secrets" / "intermediate_ca_key").read_bytes(), PASSWORD
    )
    key_file = tmp_path / "intermediate.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    (tmp_path / "crlnumber").write_text("01\n")
    config = f"""
[ ca ]
default_ca = ledgerca
[ ledgerca ]
database = {tmp_path}/index.txt
crlnumber = {tmp_path}/crlnumber
certificate = {ca.home.intermediate}
private_key = {key_file}
default_md = sha256
default_crl_days = 1
unique_subject = no
"""
    openssl("ca", "-gencrl", "-batch", "-config", write(tmp_path, "openssl.cnf", config),
            "-out", str(tmp_path / "gen.crl"))  # fmt: skip
    generated = x509.load_pem_x509_crl((tmp_path / "gen.crl").read_bytes())
    assert listed(generated) == every_revoked
    entries = {r.serial_number: r for r in generated}
    for serial, code in revoked.items():
        try:
            reason = entries[serial].extensions.get_extension_for_class(x509.CRLReason).value
        except x509.ExtensionNotFound:
            reason = None
        assert (reason.reason if reason else None) == reasons[code]


# -- the root's CRL ------------------------------------------------------------------------


@needs_openssl
def test_a_root_crl_revoking_the_intermediate_makes_openssl_reject_its_leaves(
    ca: CRLCA, tmp_path: Path
) -> None:
    _, leaf_pem = ca.leaf("chain.example")
    intermediate = x509.load_pem_x509_certificate(ca.home.intermediate.read_bytes())
    distribution = intermediate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert distribution.value[0].full_name == [x509.UniformResourceIdentifier(ca.root_crl_url)]

    root_args = ["crl", "root", "--root-cert", str(ca.home.root),
                 "--root-key", str(ca.home.home / "secrets" / "root_ca_key"),
                 "--password-file", str(ca.home.password_file)]  # fmt: skip
    clean = ledgerca(*root_args, "--out", str(tmp_path / "clean.crl"), home=tmp_path / "none")
    assert "Root CRL number 1 with 0 entries" in clean.stdout
    revoking = ledgerca(
        *root_args, "--revoke", str(intermediate.serial_number), "--reason-code", "keyCompromise",
        "--previous", str(tmp_path / "clean.crl"), "--out", str(tmp_path / "revoked.crl"),
        home=tmp_path / "none",
    )  # fmt: skip
    assert "Root CRL number 2 with 1 entries" in revoking.stdout
    root_crl = x509.load_der_x509_crl((tmp_path / "revoked.crl").read_bytes())
    assert listed(root_crl) == {intermediate.serial_number}

    intermediate_crl = write(tmp_path, "intermediate.crl", pem_crl(ca.a))
    leaf = write(tmp_path, "leaf.pem", leaf_pem)

    def verify(root_crl_der: Path) -> subprocess.CompletedProcess[str]:
        as_pem = openssl("crl", "-inform", "DER", "-in", str(root_crl_der)).stdout
        return openssl(
            "verify", "-crl_check_all", "-CAfile", str(ca.home.root),
            "-untrusted", str(ca.home.intermediate),
            "-CRLfile", write(tmp_path, root_crl_der.name + ".pem", as_pem),
            "-CRLfile", intermediate_crl, leaf, check=False,
        )  # fmt: skip

    accepted = verify(tmp_path / "clean.crl")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    rejected = verify(tmp_path / "revoked.crl")
    assert rejected.returncode != 0
    assert "error 23 at 1 depth lookup: certificate revoked" in rejected.stdout + rejected.stderr


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        (("--root-cert", "r.crt", "--intermediate-cert", "i.crt", "--intermediate-key", "i.key"),
         "--intermediate-crl-url needs the root key"),
        ((), "is not an http://, https:// or ldap:// URL"),
    ],
)  # fmt: skip
def test_init_refuses_an_intermediate_crl_url_it_cannot_honour(
    tmp_path: Path, extra: tuple[str, ...], complaint: str
) -> None:
    url = "http://crl.example/root.crl" if extra else "ftp://crl.example/root.crl"
    result = ledgerca(
        "init", "--name", "X", "--dns", "localhost", "--address", "127.0.0.1:9000",
        *extra, "--intermediate-crl-url", url, home=tmp_path / "home", check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert complaint in result.stderr
    assert not (tmp_path / "home").exists()


# -- the client verb -----------------------------------------------------------------------


def test_crl_get_checks_the_signature_and_writes_the_crl(ca: CRLCA, tmp_path: Path) -> None:
    out = tmp_path / "ca.crl"
    result = ledgerca(
        "crl", "get", "--ca-url", ca.a.url, "--root", str(ca.home.root), "--out", str(out),
        home=tmp_path / "client",
    )  # fmt: skip
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    crl = x509.load_der_x509_crl(out.read_bytes())
    assert int(fields["CRL number"]) == number_of(crl)
    assert int(fields["Entries"]) == len(crl)
    assert fields["Signature"].strip().startswith("valid")
    pem_out = tmp_path / "ca.pem"
    ledgerca("crl", "get", "--ca-url", ca.a.url, "--root", str(ca.home.root),
             "--out", str(pem_out), "--pem", home=tmp_path / "client")  # fmt: skip
    assert pem_out.read_bytes().startswith(b"-----BEGIN X509 CRL-----")


def test_crl_get_refuses_a_ca_that_does_not_chain_to_the_given_root(
    ca: CRLCA, tmp_path: Path
) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other Root")])
    now = datetime.now(UTC)
    root = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(other.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .sign(other, hashes.SHA256())
    )  # fmt: skip
    root_file = write(tmp_path, "other.crt", root.public_bytes(serialization.Encoding.PEM))
    result = ledgerca("crl", "get", "--ca-url", ca.a.url, "--root", root_file,
                      home=tmp_path / "client", check=False)  # fmt: skip
    assert result.returncode == 1
    assert "ledgerca: error:" in result.stderr and "Traceback" not in result.stderr
