"""Every certificate the CA issues can be checked with the CRL it publishes.

A CRL whose Issuing Distribution Point names a URI covers only certificates whose CRL
Distribution Point names the same URI; OpenSSL refuses the others with "different CRL scope"
(error 44), good and revoked alike. So the scope the CRL claims and the distribution points
the leaves carry must agree (`ca.crl.urls`), for each way of setting up a CA:

* `default` — `ledgerca init` and nothing more: leaves without a CDP, a complete CRL;
* `crl-url` — `init --crl-url` (and `--intermediate-crl-url`): leaves carry the URL of the
  plain-HTTP listener, where the CRL is fetched from;
* `scoped` — `[crl] idp_url` (step-ca's `idpURL`): the CRL names it, the leaves carry it.

The judges are `openssl verify -crl_check` / `-crl_check_all` on what a real `ledgerca
serve` issued and published, and pkilint's CRL linter.
"""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from support.binaries import OPENSSL, needs_openssl
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
from support.pkilint import crl_findings
from support.waiting import wait_until

from ca.config import load_config, save_config
from ca.home import Home

pytestmark = needs_openssl

WAIT = 30.0


@dataclass
class Flavour:
    name: str
    ca: CAHome
    running: RunningCA
    crl_source: str
    """Where relying parties fetch the CRL: the leaves' CDP if they carry one."""
    leaf_cdp: str | None
    idp: str | None
    intermediate_cdp: str | None

    def leaf(self, name: str) -> x509.Certificate:
        response, _ = request_certificate(self.running, name)
        assert response.status_code == 201, response.text
        return x509.load_pem_x509_certificate(response.json()["crt"].encode())

    def revoke(self, certificate: x509.Certificate) -> None:
        """`POST /1.0/revoke` with a one-time token, reason keyCompromise."""
        serial = str(certificate.serial_number)
        key, kid = provisioner_key(self.ca)
        token = mint_token(key, kid, subject=serial, audience=f"{self.running.url}/1.0/revoke")
        with self.running.client() as client:
            response = client.post(
                "/1.0/revoke", json={"serial": serial, "ott": token, "reasonCode": 1}
            )
        assert response.status_code == 200, response.text

    def fetch_crl(self) -> x509.CertificateRevocationList:
        """The CRL from where the leaves say it is (else the CA's `/1.0/crl`, over HTTPS),
        once the first one is published (a moment after the server starts)."""

        def get() -> httpx.Response | None:
            if self.crl_source.startswith("https://"):
                with self.running.client() as client:
                    response = client.get(self.crl_source)
            else:
                response = httpx.get(self.crl_source, timeout=30)
            return response if response.status_code == 200 else None

        response = wait_until(get, WAIT, f"a CRL served at {self.crl_source}")
        assert response.headers["content-type"] == "application/pkix-crl"
        return x509.load_der_x509_crl(response.content)

    def crl_listing(self, certificate: x509.Certificate) -> x509.CertificateRevocationList:
        found: list[x509.CertificateRevocationList] = []

        def listed() -> bool:
            found[:] = [self.fetch_crl()]
            return (
                found[0].get_revoked_certificate_by_serial_number(certificate.serial_number)
                is not None
            )

        wait_until(listed, WAIT, f"a CRL at {self.crl_source} listing the revoked leaf")
        return found[0]


def set_crl(ca: CAHome, **settings: str) -> None:
    home = Home(ca.home)
    config = load_config(home)
    crl = dataclasses.replace(config.crl, **settings)
    save_config(home.config_file, dataclasses.replace(config, crl=crl))


def start_flavour(name: str, base: Path) -> Flavour:
    http_port = free_port()
    plain = f"http://127.0.0.1:{http_port}"
    if name == "default":
        ca = init_ca(base, name="CRL Scope Default")
        set_crl(ca, poll_interval="200ms")
        leaf_cdp, idp, intermediate_cdp = None, None, None
    elif name == "crl-url":
        intermediate_cdp = f"{plain}/root.crl"
        ca = init_ca(
            base,
            name="CRL Scope URL",
            extra=("--crl-url", f"{plain}/crl", "--intermediate-crl-url", intermediate_cdp),
            fresh=True,
        )
        set_crl(ca, poll_interval="200ms", insecure_address=f"127.0.0.1:{http_port}")
        leaf_cdp, idp = f"{plain}/crl", None
    else:
        ca = init_ca(base, name="CRL Scope IDP")
        leaf_cdp = idp = f"{plain}/1.0/crl"
        set_crl(ca, poll_interval="200ms", insecure_address=f"127.0.0.1:{http_port}", idp_url=idp)
        intermediate_cdp = None
    running = start_ca(ca)
    source = leaf_cdp or f"{running.url}/1.0/crl"
    return Flavour(name, ca, running, source, leaf_cdp, idp, intermediate_cdp)


@pytest.fixture(scope="module", params=["default", "crl-url", "scoped"])
def flavour(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flavour]:
    started = start_flavour(request.param, tmp_path_factory.mktemp(f"scope-{request.param}"))
    try:
        yield started
    finally:
        started.running.stop()


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=30, check=False)


def pem_file(
    directory: Path, name: str, thing: x509.Certificate | x509.CertificateRevocationList
) -> str:
    path = directory / name
    path.write_bytes(thing.public_bytes(serialization.Encoding.PEM))
    return str(path)


def verify(
    flavour: Flavour,
    tmp_path: Path,
    certificate: x509.Certificate,
    *crls: str,
    check_all: bool = False,
) -> subprocess.CompletedProcess[str]:
    ca = flavour.ca
    crl_args = [arg for crl in crls for arg in ("-CRLfile", crl)]
    return openssl(
        "verify", "-crl_check_all" if check_all else "-crl_check", "-CAfile", str(ca.root),
        "-untrusted", str(ca.intermediate), *crl_args,
        pem_file(tmp_path, f"{certificate.serial_number}.pem", certificate),
    )  # fmt: skip


def distribution_points(certificate: x509.Certificate) -> list[str]:
    try:
        cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for point in cdp for name in point.full_name or []]


def idp_of(crl: x509.CertificateRevocationList) -> list[str] | None:
    try:
        extension = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    except x509.ExtensionNotFound:
        return None
    assert extension.critical
    return [str(name.value) for name in extension.value.full_name or []]


# -- the intermediate's CRL and the leaves ---------------------------------------------------


def test_the_crl_claims_the_scope_the_leaves_carry(flavour: Flavour) -> None:
    leaf = flavour.leaf(f"scope-{flavour.name}.example")
    expected_cdp = [flavour.leaf_cdp] if flavour.leaf_cdp else []
    assert distribution_points(leaf) == expected_cdp
    crl = flavour.fetch_crl()
    assert idp_of(crl) == ([flavour.idp] if flavour.idp else None)


def test_openssl_accepts_a_good_leaf_and_rejects_a_revoked_one(
    flavour: Flavour, tmp_path: Path
) -> None:
    good = flavour.leaf(f"good-{flavour.name}.example")
    revoked = flavour.leaf(f"revoked-{flavour.name}.example")
    flavour.revoke(revoked)
    crl = pem_file(tmp_path, "crl.pem", flavour.crl_listing(revoked))

    accepted = verify(flavour, tmp_path, good, crl)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert accepted.stdout.strip().endswith(": OK")
    rejected = verify(flavour, tmp_path, revoked, crl)
    assert rejected.returncode != 0
    assert "error 23 at 0 depth lookup: certificate revoked" in rejected.stdout + rejected.stderr


def test_a_complete_crl_covers_the_cas_own_tls_certificate(
    flavour: Flavour, tmp_path: Path
) -> None:
    if flavour.idp is not None:
        pytest.skip("a scoped CRL covers only certificates carrying its URL (ca.crl.urls)")
    served = ssl.get_server_certificate(("127.0.0.1", flavour.running.port))
    server = x509.load_pem_x509_certificate(served.encode())
    result = verify(flavour, tmp_path, server, pem_file(tmp_path, "crl.pem", flavour.fetch_crl()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_pkilint_finds_nothing_to_warn_about_in_the_published_crl(flavour: Flavour) -> None:
    revoked = flavour.leaf(f"linted-{flavour.name}.example")
    flavour.revoke(revoked)
    der = flavour.crl_listing(revoked).public_bytes(serialization.Encoding.DER)
    for profile in ("PKIX", "BR"):
        assert crl_findings(der, kind="CRL", profile=profile) == [], profile


# -- the root's CRL and the intermediate -----------------------------------------------------


def test_the_root_crl_covers_the_intermediate_with_or_without_its_distribution_point(
    flavour: Flavour, tmp_path: Path
) -> None:
    if flavour.name == "scoped":
        pytest.skip("the root CRL does not depend on the intermediate's CRL settings")
    ca = flavour.ca
    intermediate = x509.load_pem_x509_certificate(ca.intermediate.read_bytes())
    expected = [flavour.intermediate_cdp] if flavour.intermediate_cdp else []
    assert distribution_points(intermediate) == expected
    leaf = flavour.leaf(f"chain-{flavour.name}.example")
    intermediate_crl = pem_file(tmp_path, "intermediate.crl", flavour.fetch_crl())

    root_args = ["crl", "root", "--root-cert", str(ca.root),
                 "--root-key", str(ca.home / "secrets" / "root_ca_key"),
                 "--password-file", str(ca.password_file), "--pem"]  # fmt: skip
    clean, revoking = tmp_path / "clean.crl", tmp_path / "revoking.crl"
    ledgerca(*root_args, "--out", str(clean), home=tmp_path / "none")
    ledgerca(
        *root_args, "--revoke", str(intermediate.serial_number), "--reason-code",
        "keyCompromise", "--previous", str(clean), "--out", str(revoking),
        home=tmp_path / "none",
    )  # fmt: skip
    root_crl = x509.load_pem_x509_crl(revoking.read_bytes())
    assert idp_of(root_crl) is None

    accepted = verify(flavour, tmp_path, leaf, str(clean), intermediate_crl, check_all=True)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    rejected = verify(flavour, tmp_path, leaf, str(revoking), intermediate_crl, check_all=True)
    assert rejected.returncode != 0
    assert "error 23 at 1 depth lookup: certificate revoked" in rejected.stdout + rejected.stderr
    der = root_crl.public_bytes(serialization.Encoding.DER)
    for profile in ("PKIX", "BR"):
        assert crl_findings(der, kind="ARL", profile=profile) == [], profile
