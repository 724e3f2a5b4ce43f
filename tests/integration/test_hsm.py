"""An intermediate whose key lives in a SoftHSM2 token: `ledgerca init --kms`, then a real
`ledgerca serve` issues certificates, a CRL and OCSP responses, judged by openssl."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from support.binaries import OPENSSL, needs_openssl
from support.ca_server import (
    PASSWORD,
    PROVISIONER_PASSWORD,
    CAHome,
    RunningCA,
    free_port,
    ledgerca,
    mint_token,
    provisioner_key,
    request_certificate,
    start_ca,
)
from support.softhsm import MODULE, SoftHSMToken, needs_softhsm
from support.waiting import wait_until

pytestmark = [needs_softhsm, needs_openssl]
KMS_LABEL = "ledgerca-intermediate"


def init_args(base: Path, port: int, *extra: str) -> list[str]:
    base.mkdir(parents=True, exist_ok=True)
    (base / "ca.pw").write_bytes(PASSWORD)
    (base / "prov.pw").write_bytes(PROVISIONER_PASSWORD)
    return [
        "init", "--name", "HSM CA", "--dns", "localhost,127.0.0.1",
        "--address", f"127.0.0.1:{port}", "--password-file", str(base / "ca.pw"),
        "--provisioner-password-file", str(base / "prov.pw"), *extra,
    ]  # fmt: skip


def kms_args(token: SoftHSMToken, label: str = KMS_LABEL) -> tuple[str, ...]:
    return ("--kms", token.uri(label), "--pkcs11-module", MODULE, "--pin-file", str(token.pin_file))


def key_refs(home: Path) -> list[dict[str, str]]:
    out = ledgerca("ledger", "log", "--json", "--type", "authority.key_activated", home=home)
    return [json.loads(line)["data"]["key_ref"] for line in out.stdout.splitlines()]


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60, check=False)


@dataclass
class HSMCA:
    home: CAHome
    server: RunningCA
    token: SoftHSMToken
    init_output: str


@pytest.fixture
def hsm_ca(softhsm: SoftHSMToken, tmp_path: Path) -> Iterator[HSMCA]:
    port = free_port()
    base = tmp_path / "ca"
    result = ledgerca(*init_args(base, port, *kms_args(softhsm)), home=base / "home")
    home = CAHome(base / "home", port, base / "ca.pw", base / "prov.pw")
    server = start_ca(home)
    try:
        yield HSMCA(home, server, softhsm, result.stdout)
    finally:
        server.stop()


def issue(ca: HSMCA, name: str, directory: Path) -> tuple[x509.Certificate, Path, Path]:
    response, _key = request_certificate(ca.server, name)
    assert response.status_code == 201, response.text
    body = response.json()
    leaf = directory / f"{name}.crt"
    leaf.write_text(body["crt"])
    chain = directory / f"{name}-chain.crt"
    chain.write_text(body["ca"])
    return x509.load_pem_x509_certificate(body["crt"].encode()), leaf, chain


def test_the_ledger_names_the_key_by_uri_and_no_key_file_exists(hsm_ca: HSMCA) -> None:
    refs = key_refs(hsm_ca.home.home)
    assert refs[0] == {"type": "file", "path": "secrets/root_ca_key"}
    assert refs[1]["type"] == "pkcs11"
    assert refs[1]["uri"].startswith(f"pkcs11:token={hsm_ca.token.label};object={KMS_LABEL};id=")
    assert refs[1]["uri"].endswith(";type=private")
    assert set(refs[1]) == {"type", "uri"}  # no PIN, no module
    assert not (hsm_ca.home.home / "secrets" / "intermediate_ca_key").exists()
    assert "Intermediate key created in the token" in hsm_ca.init_output
    pin = hsm_ca.token.pin_file.read_text().strip()
    log = ledgerca("ledger", "log", "--json", home=hsm_ca.home.home).stdout
    assert pin not in log
    assert pin not in hsm_ca.server.output()


def test_openssl_verifies_a_certificate_the_hsm_signed(hsm_ca: HSMCA, tmp_path: Path) -> None:
    certificate, leaf, chain = issue(hsm_ca, "svc.example", tmp_path)
    result = openssl(
        "verify", "-CAfile", str(hsm_ca.home.root), "-untrusted", str(chain), str(leaf)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{leaf}: OK" in result.stdout
    intermediate = x509.load_pem_x509_certificate(hsm_ca.home.intermediate.read_bytes())
    certificate.verify_directly_issued_by(intermediate)


def test_openssl_verifies_the_crl_the_hsm_signed(hsm_ca: HSMCA, tmp_path: Path) -> None:
    certificate, _leaf, _chain = issue(hsm_ca, "doomed.example", tmp_path)
    key, kid = provisioner_key(hsm_ca.home)
    token = mint_token(
        key, kid, subject=str(certificate.serial_number), sans=[],
        audience=f"{hsm_ca.server.url}/1.0/revoke",
    )  # fmt: skip
    with hsm_ca.server.client() as http:
        revoked = http.post(
            "/1.0/revoke",
            json={"serial": str(certificate.serial_number), "ott": token, "reasonCode": 1},
        )
        assert revoked.status_code == 200, revoked.text
        # generate_on_revoke: the next CRL lists it; poll until a worker has published it.

        def listing() -> bytes | None:
            der = http.get("/1.0/crl").content
            listed = x509.load_der_x509_crl(der).get_revoked_certificate_by_serial_number(
                certificate.serial_number
            )
            return der if listed is not None else None

        published = wait_until(listing, 30, "a CRL listing the revoked certificate")
    der = tmp_path / "crl.der"
    der.write_bytes(published)
    result = openssl(
        "crl", "-inform", "DER", "-in", str(der), "-CAfile", str(hsm_ca.home.intermediate),
        "-noout", "-verify",
    )  # fmt: skip
    assert "verify OK" in result.stdout + result.stderr, result.stdout + result.stderr


def test_openssl_verifies_an_ocsp_response_the_hsm_signed(hsm_ca: HSMCA, tmp_path: Path) -> None:
    _certificate, leaf, _chain = issue(hsm_ca, "ocsp.example", tmp_path)
    result = openssl(
        "ocsp", "-issuer", str(hsm_ca.home.intermediate), "-cert", str(leaf),
        "-url", f"{hsm_ca.server.url}/ocsp", "-CAfile", str(hsm_ca.home.root),
        "-timeout", "20", "-nonce",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Response verify OK" in output
    assert f"{leaf}: good" in output


def test_the_server_tls_certificate_chains_through_the_hsm_intermediate(hsm_ca: HSMCA) -> None:
    served = x509.load_pem_x509_certificate(
        (hsm_ca.home.home / "certs" / "server_tls.crt").read_bytes()
    )
    intermediate = x509.load_pem_x509_certificate(hsm_ca.home.intermediate.read_bytes())
    served.verify_directly_issued_by(intermediate)
    assert intermediate.fingerprint(hashes.SHA256()) != served.fingerprint(hashes.SHA256())


# -- failures: one clear line, nothing changed ----------------------------------------------


def token_labels(token: SoftHSMToken) -> set[str]:
    """Labels of the private keys in the token, read in a process of its own."""
    script = (
        "import pkcs11, sys\n"
        "t = pkcs11.lib(sys.argv[1]).get_token(token_label=sys.argv[2])\n"
        "with t.open(user_pin=open(sys.argv[3]).read().strip()) as s:\n"
        "    print('\\n'.join(o.label for o in"
        " s.get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, MODULE, token.label, str(token.pin_file)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return set(out.stdout.split())


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("ledgerca: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_init_with_a_wrong_pin_says_so_and_leaves_nothing(
    softhsm: SoftHSMToken, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("0000\n")
    wrong.chmod(0o600)
    args = init_args(tmp_path, free_port(), "--kms", softhsm.uri(KMS_LABEL))
    args += ["--pkcs11-module", MODULE, "--pin-file", str(wrong)]
    result = ledgerca(*args, home=tmp_path / "home", check=False)
    assert_one_line_error(result, f"wrong PIN for PKCS#11 token '{softhsm.label}'")
    assert not (tmp_path / "home").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".home")]


def test_init_refuses_a_pin_file_others_can_read(softhsm: SoftHSMToken, tmp_path: Path) -> None:
    softhsm.pin_file.chmod(0o644)
    result = ledgerca(
        *init_args(tmp_path, free_port(), *kms_args(softhsm)), home=tmp_path / "home", check=False
    )
    assert_one_line_error(result, "is open to other users (mode 0644): chmod 600")
    assert not (tmp_path / "home").exists()


def test_init_that_fails_after_creating_the_key_removes_it_from_the_token(
    softhsm: SoftHSMToken, tmp_path: Path
) -> None:
    args = init_args(tmp_path, free_port(), *kms_args(softhsm))
    (tmp_path / "prov.pw").unlink()  # read after the key was made
    result = ledgerca(*args, home=tmp_path / "home", check=False)
    assert_one_line_error(result, "password file for the provisioner admin not found")
    assert not (tmp_path / "home").exists()
    assert KMS_LABEL not in token_labels(softhsm)


def test_init_uses_a_key_the_token_already_holds(softhsm: SoftHSMToken, tmp_path: Path) -> None:
    first = ledgerca(
        *init_args(tmp_path / "a", free_port(), *kms_args(softhsm)), home=tmp_path / "a" / "home"
    )
    second = ledgerca(
        *init_args(tmp_path / "b", free_port(), *kms_args(softhsm)), home=tmp_path / "b" / "home"
    )
    assert "Intermediate key created in the token" in first.stdout
    assert "Intermediate key found in the token" in second.stdout
    assert key_refs(tmp_path / "a" / "home")[1] == key_refs(tmp_path / "b" / "home")[1]
    assert token_labels(softhsm) == {KMS_LABEL}


def test_serve_says_which_key_is_missing_from_the_token(
    softhsm: SoftHSMToken, tmp_path: Path
) -> None:
    base = tmp_path / "ca"
    port = free_port()
    ledgerca(*init_args(base, port, *kms_args(softhsm)), home=base / "home")
    uri = key_refs(base / "home")[1]["uri"]
    script = (
        "import pkcs11, sys\n"
        "t = pkcs11.lib(sys.argv[1]).get_token(token_label=sys.argv[2])\n"
        "with t.open(rw=True, user_pin=open(sys.argv[3]).read().strip()) as s:\n"
        "    for o in list(s.get_objects({pkcs11.Attribute.LABEL: sys.argv[4]})): o.destroy()\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, MODULE, softhsm.label, str(softhsm.pin_file), KMS_LABEL],
        check=True, timeout=60,
    )  # fmt: skip
    serve = ledgerca(
        "serve", "--address", f"127.0.0.1:{port}", "--password-file", str(base / "ca.pw"),
        home=base / "home", check=False,
    )  # fmt: skip
    assert_one_line_error(serve, f"the intermediate key: no private key '{KMS_LABEL}' id ")
    assert uri.split("id=")[1].split(";")[0].replace("%", "") in serve.stderr


def test_serve_with_a_wrong_pin_fails_before_binding(softhsm: SoftHSMToken, tmp_path: Path) -> None:
    base = tmp_path / "ca"
    port = free_port()
    ledgerca(*init_args(base, port, *kms_args(softhsm)), home=base / "home")
    softhsm.pin_file.write_text("0000\n")
    serve = ledgerca(
        "serve", "--address", f"127.0.0.1:{port}", "--password-file", str(base / "ca.pw"),
        home=base / "home", check=False,
    )  # fmt: skip
    assert_one_line_error(serve, "the intermediate key: wrong PIN for PKCS#11 token")


def test_rotation_creates_the_new_key_in_the_token_and_the_server_signs_with_it(
    hsm_ca: HSMCA, tmp_path: Path
) -> None:
    old = x509.load_pem_x509_certificate(hsm_ca.home.intermediate.read_bytes())
    rotated = ledgerca(
        "rotate", "intermediate", "--kms", hsm_ca.token.uri("intermediate-2"),
        "--root-password-file", str(hsm_ca.home.password_file), home=hsm_ca.home.home,
    )  # fmt: skip
    assert "new key in the token: pkcs11:token=" in rotated.stdout
    assert token_labels(hsm_ca.token) == {KMS_LABEL, "intermediate-2"}
    assert key_refs(hsm_ca.home.home)[-1]["uri"].startswith(
        f"pkcs11:token={hsm_ca.token.label};object=intermediate-2;id="
    )
    new = x509.load_pem_x509_certificate(hsm_ca.home.intermediate.read_bytes())
    assert new.public_key() != old.public_key()

    certificate, leaf, chain = issue(hsm_ca, "after-rotation.example", tmp_path)
    certificate.verify_directly_issued_by(new)
    result = openssl(
        "verify", "-CAfile", str(hsm_ca.home.root), "-untrusted", str(chain), str(leaf)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rotation_refuses_a_label_the_token_already_holds(hsm_ca: HSMCA) -> None:
    before = key_refs(hsm_ca.home.home)
    result = ledgerca(
        "rotate", "intermediate", "--kms", hsm_ca.token.uri(KMS_LABEL),
        "--root-password-file", str(hsm_ca.home.password_file), home=hsm_ca.home.home,
        check=False,
    )  # fmt: skip
    assert_one_line_error(result, "give the new intermediate key a new object label")
    assert key_refs(hsm_ca.home.home) == before
