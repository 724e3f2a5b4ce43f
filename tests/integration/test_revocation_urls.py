"""With `crl_url` and `ocsp_url` configured, leaves point relying parties at the CA."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID
from support.binaries import needs_openssl
from support.ca_server import init_ca, request_certificate, start_ca
from support.waiting import wait_until


@needs_openssl
def test_leaves_carry_the_configured_urls_and_openssl_checks_them(tmp_path: Path) -> None:
    ca = init_ca(tmp_path)
    base = f"https://localhost:{ca.port}"
    config = ca.home / "config" / "ca.toml"
    text = config.read_text()
    head, _, rest = text.partition("\n[")
    config.write_text(f'{head}\ncrl_url = "{base}/1.0/crl"\nocsp_url = "{base}/ocsp"\n\n[{rest}')
    running = start_ca(ca)
    try:
        response, _ = request_certificate(running, "urls.example")
        assert response.status_code == 201, response.text
        with running.client() as client:
            leaf = x509.load_pem_x509_certificate(response.json()["crt"].encode())
            cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
            assert [n.value for p in cdp for n in p.full_name or []] == [f"{base}/1.0/crl"]
            aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
            ocsp = [d.access_location.value for d in aia
                    if d.access_method == AuthorityInformationAccessOID.OCSP]  # fmt: skip
            assert ocsp == [f"{base}/ocsp"]
            # The CRL is complete (no Issuing Distribution Point), so it covers the leaf.
            crl = wait_until(
                lambda: (response := client.get("/1.0/crl?pem")).status_code == 200 and response,
                30,
                "a published CRL",
            )
        leaf_file, crl_file = tmp_path / "leaf.pem", tmp_path / "crl.pem"
        leaf_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        crl_file.write_text(crl.text)
        verify = subprocess.run(
            ["openssl", "verify", "-crl_check", "-CAfile", str(ca.root), "-untrusted",
             str(ca.intermediate), "-CRLfile", str(crl_file), str(leaf_file)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stdout + verify.stderr
        status = subprocess.run(
            ["openssl", "ocsp", "-issuer", str(ca.intermediate), "-cert", str(leaf_file),
             "-url", ocsp[0], "-CAfile", str(ca.root)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert f"{leaf_file}: good" in status.stdout, status.stdout + status.stderr
        assert "Response verify OK" in status.stderr + status.stdout
    finally:
        running.stop()
