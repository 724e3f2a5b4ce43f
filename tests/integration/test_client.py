"""The client verbs against a real `ledgerca serve` over TLS on loopback.

One CA serves the whole module. The client has a home of its own, so every test goes
through the real bootstrap: the root is fetched by fingerprint, not copied from the CA.
"""

from __future__ import annotations

import base64
import json
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from joserfc import jwk
from support.binaries import CURL, needs_curl, needs_openssl
from support.ca_server import RunningCA, init_ca, start_ca
from support.cli import clean_error, in_parallel, ok, openssl, run

from ca.client import session as client_session
from ca.client.session import TrustError, normalize_fingerprint
from ca.client.tokens import (
    ProvisionerSigner,
    choose_provisioner,
    csr_fingerprint,
    list_provisioners,
    sign_audience,
    signing_algorithm,
    token_claims,
    token_validity,
)
from ca.errors import BadRequest, ConfigError
from ca.home import Home
from ca.provisioners.jwk import JWKProvisioner, verify_token
from ca.provisioners.jwk_keys import thumbprint
from ca.tokens import audiences


@dataclass
class Client:
    """A bootstrapped client home and what it needs to ask the module's CA for things."""

    ca: RunningCA
    home: Path
    password_file: Path
    work: Path

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run(*args, home=self.home)

    def certificate(
        self, subject: str, *args: str | Path, name: str | None = None
    ) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
        stem = name or subject
        crt, key = self.work / f"{stem}.crt", self.work / f"{stem}.key"
        result = self(
            "certificate", subject, crt, key,
            "--provisioner-password-file", self.password_file, *args,
        )  # fmt: skip
        return crt, key, result


def root_fingerprint(running: RunningCA) -> str:
    root = x509.load_pem_x509_certificate(running.ca.root.read_bytes())
    return root.fingerprint(hashes.SHA256()).hex()


@pytest.fixture(scope="module")
def running_ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCA]:
    running = start_ca(init_ca(tmp_path_factory.mktemp("ca")))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def client(running_ca: RunningCA, tmp_path_factory: pytest.TempPathFactory) -> Client:
    base = tmp_path_factory.mktemp("client")
    home = base / "home"
    fingerprint = root_fingerprint(running_ca)
    # Upper case with colons, as people paste it from other tools.
    pasted = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    result = ok(run("bootstrap", "--ca-url", running_ca.url, "--fingerprint", pasted, home=home))
    assert str(Home(home).root_cert) in result.stdout
    work = base / "work"
    work.mkdir()
    return Client(running_ca, home, running_ca.ca.provisioner_password_file, work)


def split_bundle(crt: Path) -> tuple[Path, Path]:
    leaf, intermediate = x509.load_pem_x509_certificates(crt.read_bytes())
    paths = crt.with_suffix(".leaf.pem"), crt.with_suffix(".intermediate.pem")
    for path, certificate in zip(paths, (leaf, intermediate), strict=True):
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return paths


def jws_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value


def served_provisioner(running: RunningCA, name: str = "admin") -> dict[str, Any]:
    root = x509.load_pem_x509_certificate(running.ca.root.read_bytes())
    with client_session.Session(running.url, root).http() as http:
        listing = http.get("/provisioners").json()["provisioners"]
    return next(dict(p) for p in listing if p["name"] == name)


def load_leaf(crt: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(crt.read_bytes())[0]


# -- bootstrap ---------------------------------------------------------------------------


def test_bootstrap_saves_the_root_and_the_ca_url(client: Client) -> None:
    home = Home(client.home)
    saved = x509.load_pem_x509_certificate(home.root_cert.read_bytes())
    served = x509.load_pem_x509_certificate(client.ca.ca.root.read_bytes())
    assert saved == served
    config = tomllib.loads((home.config_dir / "client.toml").read_text())
    assert config == {
        "ca_url": client.ca.url,
        "fingerprint": root_fingerprint(client.ca),
        "root": "certs/root_ca.crt",
    }
    # Bootstrapping again against the same CA keeps the same root, without --force.
    again = client_session.bootstrap(home, client.ca.url, config["fingerprint"])
    assert again.root_unchanged


def test_bootstrap_with_a_wrong_fingerprint_fails_and_saves_nothing(
    running_ca: RunningCA, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    error = clean_error(
        run("bootstrap", "--ca-url", running_ca.url, "--fingerprint", "ab" * 32, home=home)
    )
    assert f"has no root with fingerprint {'ab' * 32}" in error and "HTTP 404" in error
    assert not (home / "certs" / "root_ca.crt").exists()
    assert not (home / "config" / "client.toml").exists()
    assert "ledgerca bootstrap" in clean_error(run("token", "x.example", home=home))
    with pytest.raises(ConfigError, match="not a SHA-256 fingerprint"):
        normalize_fingerprint("abc")


def test_bootstrap_refuses_a_root_whose_fingerprint_differs(
    running_ca: RunningCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server (or something in between) answering /root/{fp} with another certificate."""
    impostor = running_ca.ca.intermediate.read_text()

    def lying_client(ca_url: str, verify: Any) -> httpx.Client:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ca": impostor}))
        return httpx.Client(base_url=ca_url, transport=transport)

    monkeypatch.setattr(client_session, "_client", lying_client)
    home = Home(tmp_path / "home")
    with pytest.raises(TrustError, match="refusing to trust it"):
        client_session.bootstrap(home, running_ca.url, root_fingerprint(running_ca))
    assert not home.path.exists()


# -- certificate -------------------------------------------------------------------------


@needs_openssl
def test_certificates_of_every_key_type_chain_to_the_bootstrapped_root(client: Client) -> None:
    def request(kty: str) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
        return client.certificate(
            f"{kty.lower()}.example", "--kty", kty, "--san", f"{kty.lower()}.example",
            "--san", "10.0.0.7",
        )  # fmt: skip

    results = in_parallel(request, ["EC", "RSA", "OKP"])
    root = Home(client.home).root_cert
    for kty, (crt, key, result) in results.items():
        ok(result)
        assert "Serial:" in result.stdout and "Not after:" in result.stdout
        leaf, intermediate = split_bundle(crt)
        verified = openssl("verify", "-CAfile", root, "-untrusted", intermediate, leaf)
        assert verified.stdout.strip().endswith(": OK"), kty
        assert key.stat().st_mode & 0o777 == 0o600
        assert crt.stat().st_mode & 0o777 == 0o644
        assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        assert load_leaf(crt).public_key() == private.public_key()
    assert isinstance(load_leaf(results["RSA"][0]).public_key(), rsa.RSAPublicKey)
    assert isinstance(load_leaf(results["OKP"][0]).public_key(), ed25519.Ed25519PublicKey)


@needs_curl
def test_curl_trusts_the_ca_through_the_bootstrapped_root(client: Client) -> None:
    assert CURL is not None
    root = Home(client.home).root_cert
    health = subprocess.run(
        [CURL, "--silent", "--show-error", "--cacert", str(root), f"{client.ca.url}/health"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(health.stdout) == {"status": "ok"}


def test_certificate_refuses_to_overwrite_existing_files(client: Client) -> None:
    crt, key = client.work / "exists.crt", client.work / "exists.key"
    crt.write_text("keep me")
    result = client(
        "certificate", "exists.example", crt, key,
        "--provisioner-password-file", client.password_file,
    )  # fmt: skip
    assert "--force" in clean_error(result)
    assert crt.read_text() == "keep me" and not key.exists()


def test_not_after_sets_the_validity_within_the_provisioner_maximum(client: Client) -> None:
    results = in_parallel(
        lambda d: client.certificate(f"for-{d}.example", "--not-after", d), ["1h", "48h"]
    )
    crt, _, result = results["1h"]
    ok(result)
    leaf = load_leaf(crt)
    # One hour from now, plus the one-minute backdate of notBefore.
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(hours=1, minutes=1)
    crt, key, result = results["48h"]
    error = clean_error(result)
    assert (
        "The request was forbidden by the certificate authority: requested duration of 48h0m0s"
        " is more than the authorized maximum certificate duration of 24h0m0s." in error
    )
    assert "HTTP 403" in error
    assert not crt.exists() and not key.exists()


def test_wrong_provisioner_password_fails_cleanly(client: Client) -> None:
    wrong = client.work / "wrong.pw"
    wrong.write_text("not the password\n")
    crt, key = client.work / "wrong.crt", client.work / "wrong.key"
    result = client(
        "certificate", "wrong.example", crt, key, "--provisioner-password-file", wrong
    )  # fmt: skip
    assert "wrong password for provisioner 'admin'" in clean_error(result)
    assert not crt.exists() and not key.exists()


def test_without_a_password_file_or_terminal_the_token_is_refused(client: Client) -> None:
    error = clean_error(client("token", "x.example", "--provisioner", "admin"))
    assert "no password for provisioner 'admin': give --provisioner-password-file" in error


# -- token -------------------------------------------------------------------------------


def test_token_is_minted_as_step_mints_it_and_is_single_use(client: Client) -> None:
    result = ok(
        client(
            "token", "web.example", "--san", "web.example", "--san", "www.web.example",
            "--provisioner", "admin", "--provisioner-password-file", client.password_file,
        )
    )  # fmt: skip
    token = result.stdout.strip()
    assert result.stdout == token + "\n"  # nothing else on stdout
    header, claims = jws_part(token, 0), jws_part(token, 1)
    assert header == {
        "alg": "ES256",
        "kid": served_provisioner(client.ca)["key"]["kid"],
        "typ": "JWT",
    }
    assert claims["iss"] == "admin"
    assert claims["sub"] == "web.example"
    assert claims["aud"] == f"{client.ca.url}/1.0/sign"
    assert claims["sans"] == ["web.example", "www.web.example"]
    assert claims["sha"] == root_fingerprint(client.ca)
    assert len(claims["jti"]) == 64 and int(claims["jti"], 16) >= 0
    assert claims["iat"] == claims["nbf"] and claims["exp"] - claims["nbf"] == 300
    assert "cnf" not in claims

    # No --san: the CSR carries the token's SANs.
    crt, _, first = client.certificate("web.example", "--token", token)
    ok(first)
    names = load_leaf(crt).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == ["web.example", "www.web.example"]
    _, key, second = client.certificate("web.example", "--token", token, name="again")
    assert "HTTP 401" in clean_error(second)
    assert not key.exists()


# -- inspect -----------------------------------------------------------------------------


def test_inspect_shows_the_sans_and_the_provisioner(client: Client) -> None:
    crt, _, result = client.certificate(
        "app.example", "--san", "app.example", "--san", "192.0.2.10", "--san", "ops@example.com"
    )
    ok(result)
    text, as_json = in_parallel(
        lambda args: ok(client("inspect", crt, *args)).stdout, [(), ("--json",)]
    ).values()
    assert "dns:app.example, ip:192.0.2.10, email:ops@example.com" in text
    assert "admin (JWK" in text
    assert "serverAuth, clientAuth" in text
    assert f"{load_leaf(crt).serial_number} (0x{load_leaf(crt).serial_number:x})" in text
    summary = json.loads(as_json)
    assert summary["provisioner"]["name"] == "admin"
    assert summary["provisioner"]["credential_id"] == served_provisioner(client.ca)["key"]["kid"]
    assert summary["subject"] == "CN=app.example"
    assert summary["validity"] == "24h1m0s"
    assert summary["public_key"] == "EC secp256r1"
    assert summary["bundle"] == 2


# -- tokens, in process (no server needed) -----------------------------------------------


@pytest.mark.parametrize("kty", ["EC", "OKP", "RSA"])
def test_tokens_of_every_provisioner_key_type_pass_step_ca_verification(kty: str) -> None:
    key: jwk.Key
    match kty:
        case "EC":
            key = jwk.generate_key("EC", "P-256")
        case "OKP":
            key = jwk.generate_key("OKP", "Ed25519")
        case _:
            key = jwk.generate_key("RSA", 2048)
    public = dict(key.as_dict(private=False))
    kid = thumbprint(public)
    signer = ProvisionerSigner("admin", kid, signing_algorithm(key), key)
    now = datetime.now(UTC)
    token = signer.token(
        token_claims(
            issuer="admin",
            subject="svc.example",
            audience=sign_audience("https://ca.example:9443"),
            sans=None,
            root_der=b"root",
            now=now,
            csr_der=b"csr",
        )
    )
    verified = verify_token(
        token,
        JWKProvisioner(id="admin:" + kid, name="admin", kid=kid, public_jwk=public),
        accepted_audiences=audiences(["ca.example"]),
        now=now,
        ca_started=now - timedelta(minutes=1),
    )
    assert verified.sans == ("svc.example",)
    assert verified.csr_fingerprint == csr_fingerprint(b"csr")
    assert signer.alg == {"EC": "ES256", "OKP": "EdDSA", "RSA": "RS256"}[kty]


def test_provisioner_lookup_follows_pagination_and_names_the_candidates() -> None:
    pages = {
        "": {"provisioners": [{"type": "ACME", "name": "acme"}], "nextCursor": "1a"},
        "1a": {
            "provisioners": [
                {"type": "JWK", "name": "ops", "key": {"kid": "k1"}, "encryptedKey": "jwe"},
                {"type": "jwk", "name": "dev", "key": {"kid": "k2"}},
            ],
            "nextCursor": "",
        },
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[request.url.params.get("cursor", "")])

    with httpx.Client(base_url="https://ca.test", transport=httpx.MockTransport(answer)) as http:
        listing = list_provisioners(http)
    assert [p["name"] for p in listing] == ["acme", "ops", "dev"]
    with pytest.raises(ConfigError, match=r"several JWK provisioners \(ops, dev\)"):
        choose_provisioner(listing, None)
    with pytest.raises(ConfigError, match="is a ACME provisioner"):
        choose_provisioner(listing, "acme")
    assert choose_provisioner(listing, "dev").encrypted_key is None  # fetched by kid later
    assert choose_provisioner(listing, "ops").kid == "k1"


def test_token_validity_keeps_step_cli_bounds() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert token_validity(now) == (now, now + timedelta(minutes=5))
    assert token_validity(now, not_after="1h")[1] == now + timedelta(hours=1)
    with pytest.raises(BadRequest, match="more than 1h"):
        token_validity(now, not_after="2h")
    with pytest.raises(BadRequest, match="--not-after"):
        token_validity(now, not_after="soon")
