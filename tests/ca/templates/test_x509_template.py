"""X.509 templates: values can never become structure, and the result is read strictly."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca.errors import BadRequest, PolicyError
from ca.templates import TemplateFail, render_json
from ca.templates.x509 import (
    DEFAULT_LEAF_TEMPLATE,
    SAN,
    BasicConstraints,
    CertificateTemplate,
    Subject,
    create_sans,
    csr_view,
    default_leaf,
    render,
    template_data,
)

INJECTION = 'a", "isCA": true, "x": "'
ARRAY_BREAKOUT = 'x"}], "basicConstraints": {"isCA": true}, "keyUsage": ["certSign"], "y": [{"a": "'


def _csr(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    cn: str = "www.example.com",
    names: list[x509.GeneralName] | None = None,
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
            ]
        )
    )
    names = names if names is not None else [x509.DNSName(cn)]
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


@pytest.fixture(scope="module")
def ec_csr() -> x509.CertificateSigningRequest:
    return _csr(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def rsa_csr() -> x509.CertificateSigningRequest:
    return _csr(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _data(
    csr: x509.CertificateSigningRequest,
    *,
    cn: str = "www.example.com",
    sans: list[str] | None = None,
    user: dict[str, Any] | None = None,
    key_type: Any = "EC",
) -> dict[str, Any]:
    token = {"sub": cn, "sans": sans or [cn], "iss": "admin"}
    return template_data(cn, sans or [cn], token, csr, user, key_type)


# --- the default leaf template --------------------------------------------------------


def test_the_default_leaf_has_the_token_subject_and_sans_and_step_cas_usages(
    ec_csr: x509.CertificateSigningRequest,
) -> None:
    data = _data(ec_csr, sans=["www.example.com", "10.0.0.1", "ops@example.com"])
    assert render(DEFAULT_LEAF_TEMPLATE, data) == CertificateTemplate(
        subject=Subject(common_name="www.example.com"),
        sans=(
            SAN("dns", "www.example.com"),
            SAN("ip", "10.0.0.1"),
            SAN("email", "ops@example.com"),
        ),
        key_usage=("digitalSignature",),
        ext_key_usage=("serverAuth", "clientAuth"),
        basic_constraints=None,
    )


def test_an_rsa_key_also_gets_key_encipherment(rsa_csr: x509.CertificateSigningRequest) -> None:
    result = render(DEFAULT_LEAF_TEMPLATE, _data(rsa_csr, key_type="RSA"))
    assert set(result.key_usage) == {"digitalSignature", "keyEncipherment"}


@pytest.mark.parametrize("key_type", ["EC", "OKP"])
def test_other_keys_get_digital_signature_only(
    ec_csr: x509.CertificateSigningRequest, key_type: str
) -> None:
    result = render(DEFAULT_LEAF_TEMPLATE, _data(ec_csr, key_type=key_type))
    assert result.key_usage == ("digitalSignature",)


@pytest.mark.parametrize("key_type", ["EC", "OKP", "RSA"])
@pytest.mark.parametrize(
    "cn, sans",
    [
        ("www.example.com", ["www.example.com"]),
        ("svc", ["ops@example.com", "10.0.0.1", "spiffe://example/svc", "a.example", "::1"]),
        (INJECTION, [ARRAY_BREAKOUT, "b.example", "b.example"]),
        ("nothing", []),
    ],
)
def test_issuance_without_the_template_engine_gives_what_the_default_template_renders(
    ec_csr: x509.CertificateSigningRequest, key_type: str, cn: str, sans: list[str]
) -> None:
    data = template_data(cn, sans, {"sub": cn}, ec_csr, None, key_type)
    assert default_leaf(cn, sans, key_type) == render(DEFAULT_LEAF_TEMPLATE, data)


# --- injection ------------------------------------------------------------------------


@pytest.mark.parametrize("subject", [INJECTION, ARRAY_BREAKOUT, "\\", '"', "}\n{", "{{ 7*7 }}"])
def test_a_subject_cannot_inject_anything(
    ec_csr: x509.CertificateSigningRequest, subject: str
) -> None:
    result = render(DEFAULT_LEAF_TEMPLATE, _data(ec_csr, cn=subject, sans=["ok.example"]))
    assert result.subject.common_name == subject
    assert result.basic_constraints is None
    assert result.key_usage == ("digitalSignature",)
    assert result.sans == (SAN("dns", "ok.example"),)


def test_a_san_cannot_inject_anything(ec_csr: x509.CertificateSigningRequest) -> None:
    result = render(DEFAULT_LEAF_TEMPLATE, _data(ec_csr, sans=[ARRAY_BREAKOUT, INJECTION]))
    assert result.sans == (SAN("dns", ARRAY_BREAKOUT), SAN("dns", INJECTION))
    assert result.basic_constraints is None
    assert result.key_usage == ("digitalSignature",)


CUSTOM = """{
  "subject": {"commonName": {{ insecure.user.name }}, "organization": {{ token.iss }}},
  "sans": {{ sans }}
}"""


def test_template_data_cannot_inject_anything(ec_csr: x509.CertificateSigningRequest) -> None:
    result = render(CUSTOM, _data(ec_csr, user={"name": ARRAY_BREAKOUT}))
    assert result.subject == Subject(common_name=ARRAY_BREAKOUT, organization=("admin",))
    assert result.basic_constraints is None


def test_structured_template_data_is_refused_where_a_string_is_expected(
    ec_csr: x509.CertificateSigningRequest,
) -> None:
    with pytest.raises(BadRequest, match=r"subject.commonName must be a string, got an object"):
        render(CUSTOM, _data(ec_csr, user={"name": {"isCA": True}}))


def test_a_value_interpolated_inside_quotes_cannot_parse(
    ec_csr: x509.CertificateSigningRequest,
) -> None:
    # Without the engine's framing this would render ["pre-", 1, "-post"].
    template = '{"subject": {"commonName": "pre-{{ insecure.user.name }}-post"}}'
    with pytest.raises(BadRequest, match=r"is inside a quoted string; remove the quotes"):
        render(template, _data(ec_csr, user={"name": ", 1, "}))


def test_strings_are_built_inside_the_expression(ec_csr: x509.CertificateSigningRequest) -> None:
    template = '{"subject": {"commonName": {{ "pre-" ~ insecure.user.name | upper }}}}'
    result = render(template, _data(ec_csr, user={"name": 'x"y'}))
    assert result.subject.common_name == 'pre-X"Y'


def test_even_a_template_delegating_structure_to_data_cannot_make_a_ca(
    ec_csr: x509.CertificateSigningRequest,
) -> None:
    template = '{"subject": {{ subject }}, "basicConstraints": {{ insecure.user.bc }}}'
    with pytest.raises(PolicyError, match=r"templates cannot issue CA certificates"):
        render(template, _data(ec_csr, user={"bc": {"isCA": True, "maxPathLen": 0}}))


# --- the sandbox ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__",
        "''.__class__.__mro__[1].__subclasses__()",
        "fail.__globals__",
        "insecure.user.update({'x': 1})",
        "range.__self__",
    ],
)
def test_sandbox_escapes_are_refused_not_executed(
    ec_csr: x509.CertificateSigningRequest, expression: str
) -> None:
    with pytest.raises(BadRequest, match=r"^template: line 1: ") as refused:
        render("{{ " + expression + " }}", _data(ec_csr, user={}))
    assert not isinstance(refused.value, TemplateFail)


@pytest.mark.parametrize("name", ["lipsum", "cycler", "joiner", "self"])
def test_only_the_documented_globals_exist(
    ec_csr: x509.CertificateSigningRequest, name: str
) -> None:
    with pytest.raises(BadRequest, match=r"undefined|unsafe|cannot be written as JSON"):
        render("{{ " + name + " }}", _data(ec_csr))


def test_include_and_import_have_nothing_to_load(ec_csr: x509.CertificateSigningRequest) -> None:
    with pytest.raises(BadRequest, match=r"no loader"):
        render('{% include "/etc/passwd" %}', _data(ec_csr))


# --- errors an operator can act on -----------------------------------------------------


def test_fail_returns_the_authors_message(ec_csr: x509.CertificateSigningRequest) -> None:
    template = (
        "{% if insecure.user.team is not defined %}"
        '{{ fail("templateData.team is required") }}'
        "{% endif %}"
    )
    with pytest.raises(TemplateFail) as failed:
        render(template, _data(ec_csr, user={}))
    assert failed.value.message == "templateData.team is required"
    assert failed.value.status == 400


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ('{"subject": {}, "foo": 1}', "template: unknown field 'foo'"),
        ('{"subject": {"email": "a@b"}}', "template: unknown field 'subject.email'"),
        ('{"notAfter": "2030-01-01T00:00:00Z"}', "template: unknown field 'notAfter'"),
        ('{"sans": [{"type": "dns", "value": "a", "x": 1}]}', "unknown field 'sans\\[0\\].x'"),
        ("[]", "template: the template must be an object, got a list"),
        ('{"subject": "cn"}', "template: subject must be an object, got a string"),
        ('{"subject": {"commonName": ["a"]}}', "subject.commonName must be a string, got a list"),
        ('{"subject": {"organization": [1]}}', "subject.organization must be a string or a list"),
        ('{"sans": {"type": "dns"}}', "template: sans must be a list, got an object"),
        ('{"sans": [{"type": "x400", "value": "a"}]}', "sans\\[0\\].type must be one of dns"),
        ('{"sans": [{"type": "dns", "value": 1}]}', "sans\\[0\\].value must be a string"),
        ('{"sans": [{"type": "dns", "value": ""}]}', "a dns name cannot be empty"),
        ('{"ipAddresses": ["10.0.0.300"]}', "ipAddresses: '10.0.0.300' is not an IP address"),
        ('{"ipAddresses": ["fe80::1%eth0"]}', "is not an IP address"),
        ('{"uris": ["example.com/x"]}', "the URI 'example.com/x' has no scheme"),
        ('{"keyUsage": ["signEverything"]}', "keyUsage: unknown usage 'signEverything'"),
        ('{"extKeyUsage": ["any"]}', "extKeyUsage: unknown usage 'any'"),
        ('{"basicConstraints": {"isCA": "false"}}', "isCA must be true or false, got a string"),
        ('{"basicConstraints": {"maxPathLen": true}}', "maxPathLen must be an integer"),
        ('{"basicConstraints": {"maxPathLen": 2}}', "maxPathLen needs isCA true"),
        ('{"ocspServer": [null]}', "ocspServer must be a string or a list of strings"),
        ('{"subject": {}, "subject": {}}', "template: duplicate field 'subject'"),
        ('{"a": NaN}', "NaN is not valid JSON"),
        ('{"subject": {}', "line 1 column 15 of the output is not valid JSON"),
    ],
)
def test_a_wrong_template_names_the_problem(
    ec_csr: x509.CertificateSigningRequest, template: str, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        render(template, _data(ec_csr))


def test_a_syntax_error_names_the_line(ec_csr: x509.CertificateSigningRequest) -> None:
    with pytest.raises(BadRequest, match=r"^template: line 3: "):
        render('{\n  "subject": {{ subject }},\n  {% if %}\n}', _data(ec_csr))


def test_an_undefined_variable_names_the_variable_and_line(
    ec_csr: x509.CertificateSigningRequest,
) -> None:
    with pytest.raises(BadRequest, match=r"^template: line 2: 'nonsense' is undefined$"):
        render('{\n  "subject": {"commonName": {{ nonsense }}}\n}', _data(ec_csr))
    with pytest.raises(BadRequest, match=r"has no attribute 'team'"):
        render('{"subject": {"commonName": {{ insecure.user.team }}}}', _data(ec_csr, user={}))


def test_an_undefined_variable_may_be_given_a_default(
    ec_csr: x509.CertificateSigningRequest,
) -> None:
    template = '{"subject": {"commonName": {{ insecure.user.team | default("ops") }}}}'
    assert render(template, _data(ec_csr, user={})).subject.common_name == "ops"


@pytest.mark.parametrize(
    "template",
    [
        '{"basicConstraints": {"isCA": true}}',
        '{"basicConstraints": {"isCA": true, "maxPathLen": 0}}',
        '{"keyUsage": ["digitalSignature", "certSign"]}',
        '{"keyUsage": "CertSign"}',
    ],
)
def test_a_template_cannot_make_a_ca(ec_csr: x509.CertificateSigningRequest, template: str) -> None:
    with pytest.raises(PolicyError, match=r"^templates cannot issue CA certificates$"):
        render(template, _data(ec_csr))


def test_a_leaf_may_say_it_is_not_a_ca(ec_csr: x509.CertificateSigningRequest) -> None:
    result = render('{"basicConstraints": {"isCA": false}}', _data(ec_csr))
    assert result.basic_constraints == BasicConstraints(is_ca=False, max_path_len=None)


# --- every allowed field ----------------------------------------------------------------


def test_every_allowed_field_is_read(ec_csr: x509.CertificateSigningRequest) -> None:
    document = {
        "subject": {
            "commonName": "svc",
            "country": "FR",
            "organization": ["Acme", "Acme Labs"],
            "organizationalUnit": ["Ops"],
            "locality": "Paris",
            "province": "IDF",
            "streetAddress": "1 rue de la Paix",
            "postalCode": "75002",
            "serialNumber": "42",
        },
        "sans": [{"type": "dns", "value": "svc.example"}, {"type": "uri", "value": "spiffe://a/b"}],
        "dnsNames": ["svc.example", "alt.example"],
        "ipAddresses": "2001:db8::1",
        "emailAddresses": ["ops@example.com"],
        "uris": [],
        "keyUsage": ["digitalsignature", "keyAgreement", "digitalSignature"],
        "extKeyUsage": ["clientAuth", "codeSigning", "emailProtection", "timeStamping"],
        "basicConstraints": None,
        "crlDistributionPoints": ["http://crl.example/ca.crl"],
        "ocspServer": "http://ocsp.example",
        "issuingCertificateURL": ["http://ca.example/ca.crt"],
    }
    template = "{{ insecure.user.document }}"
    result = render(template, _data(ec_csr, user={"document": document}))
    assert result == CertificateTemplate(
        subject=Subject(
            common_name="svc",
            country=("FR",),
            organization=("Acme", "Acme Labs"),
            organizational_unit=("Ops",),
            locality=("Paris",),
            province=("IDF",),
            street_address=("1 rue de la Paix",),
            postal_code=("75002",),
            serial_number=("42",),
        ),
        sans=(
            SAN("dns", "svc.example"),
            SAN("uri", "spiffe://a/b"),
            SAN("dns", "alt.example"),
            SAN("ip", "2001:db8::1"),
            SAN("email", "ops@example.com"),
        ),
        key_usage=("digitalSignature", "keyAgreement"),
        ext_key_usage=("clientAuth", "codeSigning", "emailProtection", "timeStamping"),
        basic_constraints=None,
        crl_distribution_points=("http://crl.example/ca.crl",),
        ocsp_server=("http://ocsp.example",),
        issuing_certificate_url=("http://ca.example/ca.crt",),
    )


# --- bounds -----------------------------------------------------------------------------


def test_a_template_over_64_kib_is_refused(ec_csr: x509.CertificateSigningRequest) -> None:
    template = '{"subject": {}' + " " * 64 * 1024 + "}"
    with pytest.raises(BadRequest, match=r"template: larger than 64 KiB"):
        render(template, _data(ec_csr))


def test_an_output_over_256_kib_is_refused(ec_csr: x509.CertificateSigningRequest) -> None:
    template = '{"dnsNames": [{% for i in range(100000) %}{{ insecure.user.n }},{% endfor %}"x"]}'
    with pytest.raises(BadRequest, match=r"template: output larger than 256 KiB"):
        render(template, _data(ec_csr, user={"n": "n" * 100}))


# --- the data ---------------------------------------------------------------------------


def test_template_data_has_the_documented_shape(ec_csr: x509.CertificateSigningRequest) -> None:
    token = {"sub": "www.example.com", "sans": ["www.example.com"], "jti": "1"}
    data = template_data("www.example.com", ["www.example.com"], token, ec_csr, {"a": 1}, "EC")
    assert data == {
        "subject": {"commonName": "www.example.com"},
        "sans": [{"type": "dns", "value": "www.example.com"}],
        "token": token,
        "insecure": {"cr": csr_view(ec_csr), "user": {"a": 1}},
        "key_type": "EC",
    }
    json.dumps(data)  # plain JSON all the way down
    assert template_data("a", [], {}, ec_csr, None, "EC")["insecure"]["user"] == {}


def test_the_csr_view_shows_what_the_requester_asked_for(
    rsa_csr: x509.CertificateSigningRequest,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("a.example"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        x509.RFC822Name("ops@example.com"),
        x509.UniformResourceIdentifier("spiffe://a/b"),
    ]
    assert csr_view(_csr(key, "a.example", names)) == {
        "subject": {"commonName": "a.example", "organization": ["Acme"]},
        "dnsNames": ["a.example"],
        "ipAddresses": ["10.0.0.1"],
        "emailAddresses": ["ops@example.com"],
        "uris": ["spiffe://a/b"],
        "sans": [
            {"type": "dns", "value": "a.example"},
            {"type": "ip", "value": "10.0.0.1"},
            {"type": "email", "value": "ops@example.com"},
            {"type": "uri", "value": "spiffe://a/b"},
        ],
        "publicKeyAlgorithm": "ECDSA",
    }
    assert csr_view(rsa_csr)["publicKeyAlgorithm"] == "RSA"


def test_create_sans_classifies_like_step_ca() -> None:
    assert create_sans(
        ["spiffe://a/b", "ops@example.com", "::1", "www.example.com", "10.0.0.1", "localhost"]
    ) == [
        {"type": "dns", "value": "www.example.com"},
        {"type": "dns", "value": "localhost"},
        {"type": "ip", "value": "::1"},
        {"type": "ip", "value": "10.0.0.1"},
        {"type": "email", "value": "ops@example.com"},
        {"type": "uri", "value": "spiffe://a/b"},
    ]


def test_render_json_is_format_agnostic() -> None:
    assert render_json('{"principals": {{ p }}}', {"p": ["alice", INJECTION]}) == {
        "principals": ["alice", INJECTION]
    }
