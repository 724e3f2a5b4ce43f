"""Finding 5 of the security review: no template can mint a CA power, against `ledgerca serve`.

A template asking for the OCSP signing EKU, a CA's subject, CA:TRUE, certSign or crlSign,
or an OCSP responder the CA did not configure is refused when the provisioner is added, by
the same rule (`ca.pki.leaf_rules.refuse_authority_powers`) that checks every leaf before
release; a template that asks for such a power only for some request data gets a 403 at
issuance. Nothing is written and nothing signed leaves the CA.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from support.ca_server import (
    CAHome,
    RunningCA,
    event_count,
    init_ca,
    ledgerca,
    make_csr,
    mint_token,
    provisioner_key,
    start_ca,
)

DATA_DRIVEN = (
    '{"subject": {{ subject }}, "sans": {{ sans }},'
    ' "keyUsage": {{ insecure.user.ku if insecure.user.ku is defined else ["digitalSignature"] }},'
    ' "extKeyUsage": {{ insecure.user.eku if insecure.user.eku is defined else ["serverAuth"] }}}'
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA]]:
    ca = init_ca(tmp_path_factory.mktemp("templates"))
    template = ca.home.parent / "data-driven.tpl"
    template.write_text(DATA_DRIVEN)
    _add(ca, "data-driven", template)
    running = start_ca(ca)
    try:
        yield ca, running
    finally:
        running.stop()


def _add(ca: CAHome, name: str, template: Path, *, check: bool = True) -> str:
    result = ledgerca(
        "provisioner", "add", name, "--password-file", str(ca.provisioner_password_file),
        "--x509-template", str(template), home=ca.home, check=check,
    )  # fmt: skip
    return result.stderr


def _intermediate_subject(ca: CAHome) -> str:
    """The template JSON of the intermediate's subject (O and CN, as `init` names it)."""
    intermediate = x509.load_pem_x509_certificate(ca.intermediate.read_bytes())
    fields = {"commonName": intermediate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    organization = intermediate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert {a.oid for a in intermediate.subject} <= {NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME}
    return json.dumps(
        {
            "commonName": str(fields["commonName"][0].value),
            "organization": [str(o.value) for o in organization],
        }
    )


@pytest.mark.parametrize(
    "body, refusal",
    [
        ('"extKeyUsage": ["ocspSigning"], "subject": {intermediate}', "ocspSigning"),
        ('"extKeyUsage": ["ocspSigning"], "subject": {{{{ subject }}}}', "ocspSigning"),
        ('"subject": {intermediate}', "a CA's subject"),
        ('"subject": {{{{ subject }}}}, "keyUsage": ["crlSign"]', "crlSign"),
        ('"subject": {{{{ subject }}}}, "keyUsage": ["certSign"]', "CA certificates"),
        ('"subject": {{{{ subject }}}}, "basicConstraints": {{"isCA": true}}', "CA certificates"),
        ('"subject": {{{{ subject }}}}, "ocspServer": "http://evil.example/ocsp"', "evil.example"),
        ('"subject": {{{{ subject }}}}, "issuingCertificateURL": "http://evil.example/ca"', "evil"),
    ],
)
def test_a_template_with_a_ca_power_is_refused_when_the_provisioner_is_added(
    served: tuple[CAHome, RunningCA], tmp_path: Path, body: str, refusal: str
) -> None:
    ca, _ = served
    template = tmp_path / "bad.tpl"
    text = "{" + body.format(intermediate=_intermediate_subject(ca)) + ', "sans": {{ sans }}}'
    template.write_text(text)
    before = event_count(ca)
    error = _add(ca, "bad", template, check=False)
    assert "ledgerca: error:" in error and refusal in error, error
    assert event_count(ca) == before


@pytest.mark.parametrize(
    "data, refusal",
    [
        ({"eku": ["ocspSigning"]}, "ocspSigning"),
        ({"ku": ["crlSign"]}, "crlSign"),  # was a 500 on every issuance
        ({"ku": ["digitalSignature", "certSign"]}, "CA certificates"),
    ],
)
def test_a_power_asked_for_only_by_request_data_is_refused_before_release(
    served: tuple[CAHome, RunningCA], data: dict[str, list[str]], refusal: str
) -> None:
    ca, running = served
    key, kid = provisioner_key(ca, "data-driven")
    subject = "svc.example.internal"
    token = mint_token(
        key, kid, subject=subject, issuer="data-driven", audience=f"{running.url}/1.0/sign"
    )
    csr, _ = make_csr(subject)
    before = event_count(ca)
    with running.client() as client:
        response = client.post("/1.0/sign", json={"csr": csr, "ott": token, "templateData": data})
    assert response.status_code == 403, response.text
    assert refusal in response.json()["message"]
    assert event_count(ca) == before


def test_the_same_template_issues_an_ordinary_leaf(served: tuple[CAHome, RunningCA]) -> None:
    ca, running = served
    key, kid = provisioner_key(ca, "data-driven")
    token = mint_token(
        key, kid, subject="ok.example.internal", issuer="data-driven",
        audience=f"{running.url}/1.0/sign",
    )  # fmt: skip
    csr, _ = make_csr("ok.example.internal")
    with running.client() as client:
        response = client.post("/1.0/sign", json={"csr": csr, "ott": token})
    assert response.status_code == 201, response.text
