"""Findings 9 (DNS names, email policies) and 7 (bounded policies and SAN counts), and the
DNS part of finding 8, against `ledgerca serve`. With no name policy set, a DNS SAN outside
LDH/IDNA rules is a 400 that writes nothing, from the token or from the CSR, and a U-label
is not a 500 but a 400 naming its A-label. An email deny entry stops every spelling of the
mailbox; policies and SAN lists are bounded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.ca_server import (
    CAHome,
    RunningCA,
    event_count,
    init_ca,
    ledgerca,
    mint_token,
    provisioner_key,
    start_ca,
)

from ca.pki.sans import MAX_SANS
from ca.policy.names import MAX_ENTRIES

BAD_NAMES = [
    "a\x00b.example",
    "a b.example",
    "a..example",
    "-a.example",
    "a_b.example",
    "*.",
    "xn--zz.example",
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA]]:
    ca = init_ca(tmp_path_factory.mktemp("names"))
    running = start_ca(ca)
    try:
        yield ca, running
    finally:
        running.stop()


def _csr(common_name: str, dns: list[str]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if dns:
        # cryptography refuses to encode a U-label; an attacker's CSR carries raw bytes, and
        # ASCII-only bad names are what reaches the CA through a CSR in practice.
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _sign(running: RunningCA, *, sans: list[str], csr: str) -> tuple[int, str]:
    key, kid = provisioner_key(running.ca)
    token = mint_token(
        key, kid, subject="ok.example", sans=sans, audience=f"{running.url}/1.0/sign"
    )
    with running.client() as client:
        response = client.post("/1.0/sign", json={"csr": csr, "ott": token})
    return response.status_code, response.text


@pytest.mark.parametrize("name", [*BAD_NAMES, "bücher.example"])
def test_a_bad_dns_name_in_the_token_is_a_400_that_writes_nothing(
    served: tuple[CAHome, RunningCA], name: str
) -> None:
    ca, running = served
    before = event_count(ca)
    status, text = _sign(running, sans=["ok.example", name], csr=_csr("ok.example", []))
    assert status == 400, text
    assert event_count(ca) == before
    if not name.isascii():
        assert "xn--bcher-kva.example" in text


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_dns_name_in_the_csr_is_a_400_that_writes_nothing(
    served: tuple[CAHome, RunningCA], name: str
) -> None:
    ca, running = served
    before = event_count(ca)
    status, text = _sign(
        running, sans=["ok.example", name], csr=_csr("ok.example", ["ok.example", name])
    )
    assert status == 400, text
    assert event_count(ca) == before


def test_wildcards_and_a_labels_still_issue(served: tuple[CAHome, RunningCA]) -> None:
    _, running = served
    names = ["ok.example", "*.ok.example", "xn--bcher-kva.example"]
    status, text = _sign(running, sans=names, csr=_csr("ok.example", names))
    assert status == 201, text


@pytest.fixture(scope="module")
def denying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA]]:
    base = tmp_path_factory.mktemp("email-policy")
    ca = init_ca(base)
    policy = base / "policy.json"
    policy.write_text(json.dumps({"deny": {"email": ["admin@corp.com"]}}))
    ledgerca("policy", "set", str(policy), home=ca.home)
    running = start_ca(ca)
    try:
        yield ca, running
    finally:
        running.stop()


@pytest.mark.parametrize(
    "mailbox",
    ["admin@corp.com", "Admin@corp.com", "admin@CORP.com", '"admin"@corp.com', '"ADMIN"@Corp.Com'],
)
def test_an_email_deny_entry_stops_every_spelling_of_the_mailbox(
    denying: tuple[CAHome, RunningCA], mailbox: str
) -> None:
    ca, running = denying
    before = event_count(ca)
    status, text = _sign(running, sans=["ok.example", mailbox], csr=_csr("ok.example", []))
    assert status == 403, text
    assert "admin@corp.com" in text
    assert event_count(ca) == before


def test_other_mailboxes_of_the_domain_still_issue(denying: tuple[CAHome, RunningCA]) -> None:
    _, running = denying
    status, text = _sign(running, sans=["ok.example", "alice@corp.com"], csr=_csr("ok.example", []))
    assert status == 201, text


def test_an_oversized_policy_and_too_many_sans_are_refused_and_write_nothing(
    served: tuple[CAHome, RunningCA], tmp_path: Path
) -> None:
    ca, running = served
    before = event_count(ca)
    policy = tmp_path / "huge.json"
    policy.write_text(
        json.dumps({"deny": {"dns": [f"h{i}.example" for i in range(MAX_ENTRIES + 1)]}})
    )
    refused = ledgerca("policy", "set", str(policy), home=ca.home, check=False)
    assert refused.returncode != 0 and f"at most {MAX_ENTRIES}" in refused.stderr
    sans = ["ok.example", *(f"s{i}.ok.example" for i in range(MAX_SANS))]
    status, text = _sign(running, sans=sans, csr=_csr("ok.example", []))
    assert status == 400 and f"at most {MAX_SANS}" in text, text
    assert event_count(ca) == before
