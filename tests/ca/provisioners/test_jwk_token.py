"""JWK one-time tokens: accepted when step's CLI would mint them, refused for every other reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwk, jws
from joserfc.errors import SecurityWarning

from ca.errors import AuthError, BadRequest, ConfigError, PolicyError
from ca.pki.csr import parse_csr
from ca.pki.sans import SAN, split_sans
from ca.provisioners.jwk import JWKProvisioner, VerifiedToken, authorize_csr, verify_token
from ca.provisioners.jwk_keys import create_provisioner_key, decrypt_provisioner_key
from ca.tokens import audience_matches, audiences, peek

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
CA_STARTED = NOW - timedelta(hours=1)
AUDIENCE = "https://ca.example:9443/1.0/sign"
ACCEPTED = audiences(["ca.example", "10.0.0.7", "::1"])
PASSWORD = b"provisioner password"
DROP = object()  # a claim or header value meaning "leave it out"


@dataclass(frozen=True)
class Issuer:
    """A provisioner as the CA knows it, with the private key a client signs tokens with."""

    provisioner: JWKProvisioner
    private: jwk.Key


def _issuer(private: jwk.Key, name: str = "admin") -> Issuer:
    public = dict(private.as_dict(private=False))
    public["kid"] = private.thumbprint()
    row = (json.dumps(public), json.dumps({}), json.dumps({}))
    return Issuer(JWKProvisioner.from_row("id-" + name, name, *row), private)


@pytest.fixture(scope="module")
def ec_issuer() -> Issuer:
    """The default provisioner: EC P-256, its private key decrypted from `encryptedKey`."""
    created = create_provisioner_key(PASSWORD, iterations=1000)
    private = decrypt_provisioner_key(created.encrypted_key, PASSWORD)
    provisioner = JWKProvisioner.from_row(
        "id-admin", "admin", json.dumps(created.public_jwk), "{}", "{}"
    )
    assert provisioner.kid == created.kid
    return Issuer(provisioner, private)


@pytest.fixture(scope="module")
def rsa_issuer() -> Issuer:
    return _issuer(jwk.generate_key("RSA", 2048))


@pytest.fixture(scope="module")
def ed25519_issuer() -> Issuer:
    return _issuer(jwk.generate_key("OKP", "Ed25519"))


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def _claims(**overrides: Any) -> dict[str, Any]:
    """What `step ca token www.example --san www.example --san 10.0.0.9` puts in a token."""
    claims: dict[str, Any] = {
        "iss": "admin",
        "sub": "www.example",
        "aud": AUDIENCE,
        "sans": ["www.example", "10.0.0.9"],
        "sha": secrets.token_hex(32),
        "jti": secrets.token_hex(32),
        "iat": _timestamp(NOW),
        "nbf": _timestamp(NOW),
        "exp": _timestamp(NOW + timedelta(minutes=5)),
    }
    return _apply(claims, overrides)


def _apply(values: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for name, value in overrides.items():
        if value is DROP:
            values.pop(name, None)
        else:
            values[name] = value
    return values


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def _mint(
    issuer: Issuer, alg: str = "ES256", *, header: dict[str, Any] | None = None, **claims: Any
) -> str:
    """Sign a token with joserfc, the way step's CLI does with go-jose."""
    protected = _apply({"alg": alg, "kid": issuer.provisioner.kid, "typ": "JWT"}, header or {})
    payload = json.dumps(_claims(**claims))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc frowns on EdDSA
        return jws.serialize_compact(protected, payload, issuer.private, algorithms=[alg])


def _es256_by_hand(issuer: Issuer, **header: Any) -> str:
    """For headers joserfc refuses to sign with (no alg, crit...): sign with cryptography."""
    protected = _apply({"alg": "ES256", "kid": issuer.provisioner.kid, "typ": "JWT"}, header)
    signing_input = f"{_segment(protected)}.{_segment(_claims())}"
    private = issuer.private.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _verify(token: str, issuer: Issuer, **overrides: Any) -> VerifiedToken:
    options: dict[str, Any] = {
        "accepted_audiences": ACCEPTED,
        "now": NOW,
        "ca_started": CA_STARTED,
    }
    return verify_token(token, issuer.provisioner, **(options | overrides))


# -- accepted -----------------------------------------------------------------------------


def test_step_cli_style_token_is_accepted(ec_issuer: Issuer) -> None:
    jti = secrets.token_hex(32)
    verified = _verify(_mint(ec_issuer, jti=jti), ec_issuer)
    assert verified.token_id == jti
    assert verified.subject == "www.example"
    assert verified.sans == ("www.example", "10.0.0.9")
    assert verified.issuer == "admin"
    assert verified.audience == AUDIENCE
    assert verified.issued_at == verified.not_before == NOW
    assert verified.expires == NOW + timedelta(minutes=5)
    assert verified.csr_fingerprint is None
    assert verified.claims["jti"] == jti


def test_token_without_jti_is_identified_by_the_sha256_of_the_whole_token(
    ec_issuer: Issuer,
) -> None:
    for missing in (DROP, ""):
        token = _mint(ec_issuer, jti=missing)
        assert _verify(token, ec_issuer).token_id == hashlib.sha256(token.encode()).hexdigest()


def test_sans_default_to_the_subject(ec_issuer: Issuer) -> None:
    assert _verify(_mint(ec_issuer, sans=DROP), ec_issuer).sans == ("www.example",)
    assert _verify(_mint(ec_issuer, sans=[]), ec_issuer).sans == ("www.example",)


@pytest.mark.parametrize(
    "audience",
    [
        "https://ca.example/1.0/sign",
        "https://ca.example:443/1.0/sign",
        "https://ca.example:1234/sign",
        "https://10.0.0.7:9000/1.0/sign",
        "https://[::1]:9443/1.0/sign",
        "step-certificate-authority",
        ["https://elsewhere.example/1.0/sign", AUDIENCE],
    ],
)
def test_any_port_and_the_unversioned_path_are_accepted_audiences(
    ec_issuer: Issuer, audience: str | list[str]
) -> None:
    assert _verify(_mint(ec_issuer, aud=audience), ec_issuer).subject == "www.example"


def test_numeric_dates_may_be_floats(ec_issuer: Issuer) -> None:
    exp = NOW.timestamp() + 300.5
    verified = _verify(_mint(ec_issuer, iat=NOW.timestamp() + 0.25, exp=exp), ec_issuer)
    assert verified.expires == datetime.fromtimestamp(exp, tz=UTC)


def test_leeway_is_one_minute(ec_issuer: Issuer) -> None:
    token = _mint(ec_issuer, nbf=_timestamp(NOW + timedelta(seconds=59)))
    assert _verify(token, ec_issuer).subject == "www.example"
    expires = NOW + timedelta(minutes=5)
    assert _verify(token, ec_issuer, now=expires + timedelta(seconds=59)).subject
    with pytest.raises(AuthError, match="token expired"):
        _verify(token, ec_issuer, now=expires + timedelta(seconds=61))


def test_token_minted_in_the_second_the_ca_started_is_accepted(ec_issuer: Issuer) -> None:
    started = NOW.replace(microsecond=600_000)
    assert _verify(_mint(ec_issuer), ec_issuer, ca_started=started).subject == "www.example"


def test_csr_binding_is_read_from_cnf(ec_issuer: Issuer) -> None:
    token = _mint(ec_issuer, cnf={"x5rt#S256": "abc"})
    assert _verify(token, ec_issuer).csr_fingerprint == "abc"


@pytest.mark.parametrize("alg", ["RS256", "PS256", "RS512", "PS384"])
def test_rsa_provisioner_accepts_pkcs1_and_pss_signatures(rsa_issuer: Issuer, alg: str) -> None:
    assert _verify(_mint(rsa_issuer, alg), rsa_issuer).subject == "www.example"


def test_ed25519_provisioner_accepts_eddsa(ed25519_issuer: Issuer) -> None:
    assert _verify(_mint(ed25519_issuer, "EdDSA"), ed25519_issuer).subject == "www.example"


# -- refused ------------------------------------------------------------------------------


def _unsigned(issuer: Issuer) -> str:
    header = {"alg": "none", "kid": issuer.provisioner.kid, "typ": "JWT"}
    return f"{_segment(header)}.{_segment(_claims())}."


def _hmac_with_public_key(issuer: Issuer) -> str:
    """The classic confusion: HS256 keyed with the public key, which anyone can fetch."""
    header = {"alg": "HS256", "kid": issuer.provisioner.kid, "typ": "JWT"}
    signing_input = f"{_segment(header)}.{_segment(_claims())}"
    public_pem = issuer.provisioner.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _tampered_signature(issuer: Issuer) -> str:
    token = _mint(issuer)
    head, _, signature = token.rpartition(".")
    # A character in the middle: the last one may only carry padding bits.
    flipped = "A" if signature[20] != "A" else "B"
    return f"{head}.{signature[:20]}{flipped}{signature[21:]}"


def _signed_by_another_key(issuer: Issuer) -> str:
    impostor = Issuer(issuer.provisioner, jwk.generate_key("EC", "P-256"))
    return _mint(impostor)


def _tampered_claims(issuer: Issuer) -> str:
    header, _, signature = _mint(issuer).split(".")
    return f"{header}.{_segment(_claims(sub='admin.example'))}.{signature}"


REFUSALS: dict[str, tuple[Callable[[Issuer], str], str]] = {
    "alg none": (_unsigned, "'none' is refused"),
    "HS256 keyed with the public key": (_hmac_with_public_key, "HMAC"),
    "alg of another key type": (lambda i: _es256_by_hand(i, alg="RS256"), "does not fit"),
    "no alg": (lambda i: _es256_by_hand(i, alg=DROP), "has no 'alg'"),
    "unknown kid": (lambda i: _mint(i, header={"kid": "not-the-kid"}), "kid does not match"),
    "no kid": (lambda i: _mint(i, header={"kid": DROP}), "kid does not match"),
    "critical header": (lambda i: _es256_by_hand(i, crit=["exp"], exp=1), "critical header"),
    "flipped signature character": (_tampered_signature, "signature does not verify"),
    "signed by another key": (_signed_by_another_key, "signature does not verify"),
    "claims changed after signing": (_tampered_claims, "signature does not verify"),
    "wrong issuer": (lambda i: _mint(i, iss="someone-else"), "issuer 'someone-else'"),
    "wrong audience host": (
        lambda i: _mint(i, aud="https://evil.example/1.0/sign"),
        "audience 'https://evil.example/1.0/sign' is not accepted",
    ),
    "audience of another operation": (
        lambda i: _mint(i, aud="https://ca.example/1.0/renew"),
        "is not accepted",
    ),
    "audience with a fragment": (
        lambda i: _mint(i, aud="https://ca.example/1.0/sign#x5c/admin"),
        "is not accepted",
    ),
    "no audience": (lambda i: _mint(i, aud=DROP), "is not accepted"),
    "empty subject": (lambda i: _mint(i, sub=""), "subject ('sub') is missing or empty"),
    "no subject": (lambda i: _mint(i, sub=DROP), "subject ('sub') is missing or empty"),
    "no expiry": (lambda i: _mint(i, exp=DROP), "no expiry"),
    "expired beyond the leeway": (
        lambda i: _mint(i, exp=_timestamp(NOW - timedelta(seconds=61))),
        "token expired",
    ),
    "not valid until after the leeway": (
        lambda i: _mint(i, nbf=_timestamp(NOW + timedelta(seconds=61))),
        "token not yet valid",
    ),
    "issued in the future": (
        lambda i: _mint(i, iat=_timestamp(NOW + timedelta(minutes=2))),
        "issued in the future",
    ),
    "issued before the CA started": (
        lambda i: _mint(i, iat=_timestamp(CA_STARTED - timedelta(seconds=1))),
        "token issued before the bootstrap of certificate authority",
    ),
    "exp as a string": (lambda i: _mint(i, exp="tomorrow"), "'exp' is not a number"),
    "exp out of range": (lambda i: _mint(i, exp=10**30), "'exp' is out of range"),
    "sans not an array": (lambda i: _mint(i, sans="www.example"), "'sans' must be an array"),
    "cnf without x5rt#S256": (lambda i: _mint(i, cnf={"jkt": "x"}), "'cnf' must be an object"),
    "jti not a string": (lambda i: _mint(i, jti=7), "'jti' is not a string"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_bad_tokens_are_refused_with_the_reason(ec_issuer: Issuer, case: str) -> None:
    build, reason = REFUSALS[case]
    with pytest.raises(AuthError, match=re.escape(reason)):
        _verify(build(ec_issuer), ec_issuer)


def test_rsa_provisioner_refuses_ec_and_hmac_algorithms(
    rsa_issuer: Issuer, ec_issuer: Issuer
) -> None:
    with pytest.raises(AuthError, match="does not fit"):
        _verify(_mint(ec_issuer, header={"kid": rsa_issuer.provisioner.kid}), rsa_issuer)
    with pytest.raises(AuthError, match="HMAC"):
        _verify(_hmac_with_public_key(rsa_issuer), rsa_issuer)


def test_ed25519_provisioner_refuses_a_tampered_signature(ed25519_issuer: Issuer) -> None:
    token = _mint(ed25519_issuer, "EdDSA")
    head, _, signature = token.rpartition(".")
    with pytest.raises(AuthError, match="signature does not verify"):
        _verify(f"{head}.{signature[::-1]}", ed25519_issuer)


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!!.e30.", "W10.e30.", "e30.bm90IGpzb24.", "e30.e30.not base64"],
)
def test_peek_refuses_malformed_tokens(token: str) -> None:
    with pytest.raises(AuthError, match="malformed token"):
        peek(token)


def test_peek_reads_issuer_and_kid_without_verifying(ec_issuer: Issuer) -> None:
    unverified = peek(_tampered_claims(ec_issuer))
    assert unverified.claims["iss"] == "admin"
    assert unverified.header["kid"] == ec_issuer.provisioner.kid


# -- provisioners -------------------------------------------------------------------------


def test_kid_defaults_to_the_thumbprint_and_the_key_is_parsed_once() -> None:
    private = jwk.generate_key("EC", "P-384")
    public = json.dumps(private.as_dict(private=False))
    provisioner = JWKProvisioner.from_row("id", "ops", public, "{}", '{"x509": {}}')
    assert provisioner.kid == private.thumbprint()
    assert provisioner.algorithms == {"ES384"}
    assert provisioner.options == {"x509": {}}


@pytest.mark.parametrize(
    "key_json",
    ['{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"}', '{"kty": "EC"}', "[]", "not json"],
)
def test_unusable_provisioner_keys_are_a_configuration_error(key_json: str) -> None:
    with pytest.raises(ConfigError):
        JWKProvisioner.from_row("id", "ops", key_json, "{}", "{}")


# -- audiences ----------------------------------------------------------------------------


def test_audiences_are_step_cas() -> None:
    assert audiences(["ca.example", "::1"]) == {
        "step-certificate-authority",
        "https://ca.example/1.0/sign",
        "https://ca.example/sign",
        "https://[::1]/1.0/sign",
        "https://[::1]/sign",
    }
    assert audiences(["ca.example"], "renew") == {
        "https://ca.example/1.0/renew",
        "https://ca.example/renew",
    }
    assert "step-certificate-authority" in audiences(["ca.example"], "revoke")


@pytest.mark.parametrize(
    ("aud", "expected"),
    [
        ("https://ca.example/1.0/sign", True),
        ("https://ca.example:9443/1.0/sign", True),
        ("HTTPS://ca.example:9443/1.0/sign", True),
        ("https://[::1]:8443/sign", True),
        (["x", "https://ca.example:1/sign"], True),
        ("https://ca.example:https/1.0/sign", False),
        ("https://ca.example/1.0/sign#x5c/admin", False),
        ("https://ca.example/1.0/sign/", False),
        ("http://ca.example/1.0/sign", False),
        ("https://user@ca.example/1.0/sign", False),
        ([], False),
    ],
)
def test_audience_matches(aud: str | list[str], expected: bool) -> None:
    assert audience_matches(aud, ACCEPTED) is expected


# -- SANs ---------------------------------------------------------------------------------


def test_split_sans_types_names_as_step_does() -> None:
    assert split_sans(
        [
            "WWW.Example.COM",
            "10.0.0.9",
            "2001:DB8::0:1",
            "::ffff:10.0.0.1",
            "ops@example.com",
            "spiffe://example.org/ns/web",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "mailto:ops@example.com",
        ]
    ) == [
        SAN("dns", "www.example.com"),
        SAN("ip", "10.0.0.9"),
        SAN("ip", "2001:db8::1"),
        SAN("ip", "10.0.0.1"),
        SAN("email", "ops@example.com"),
        SAN("uri", "spiffe://example.org/ns/web"),
        SAN("uri", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"),
        SAN("uri", "mailto:ops@example.com"),
    ]


@given(st.ip_addresses(v=4) | st.ip_addresses(v=6), st.booleans())
def test_ip_addresses_of_both_families_are_typed_ip(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, exploded: bool
) -> None:
    [san] = split_sans([ip.exploded if exploded else str(ip)])
    assert san.type == "ip"
    mapped = getattr(ip, "ipv4_mapped", None)
    assert ipaddress.ip_address(san.value) == (mapped or ip)
    assert san.value == str(mapped or ip)


@given(
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}(\.[A-Za-z][A-Za-z0-9-]{0,20}){0,3}", fullmatch=True)
)
def test_host_names_are_typed_dns_and_lowercased(name: str) -> None:
    assert split_sans([name]) == [SAN("dns", name.lower())]


# -- certificate requests -----------------------------------------------------------------

TOKEN_SANS = ["www.example", "api.example", "10.0.0.9"]


@pytest.fixture(scope="module")
def csr_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _csr(
    key: Any, common_name: str | None = "www.example", sans: list[x509.GeneralName] | None = None
) -> x509.CertificateSigningRequest:
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


def _dns(*names: str) -> list[x509.GeneralName]:
    return [x509.DNSName(name) for name in names]


def _ip(address: str) -> x509.GeneralName:
    return x509.IPAddress(ipaddress.ip_address(address))


def _token(ec_issuer: Issuer, **claims: Any) -> VerifiedToken:
    return _verify(_mint(ec_issuer, sans=TOKEN_SANS, **claims), ec_issuer)


def test_csr_with_the_token_sans_gets_the_token_sans(
    ec_issuer: Issuer, csr_key: ec.EllipticCurvePrivateKey
) -> None:
    csr = _csr(csr_key, sans=[*_dns("api.example", "WWW.example"), _ip("10.0.0.9")])
    assert authorize_csr(_token(ec_issuer), csr) == [
        SAN("dns", "www.example"),
        SAN("dns", "api.example"),
        SAN("ip", "10.0.0.9"),
    ]


@pytest.mark.parametrize(
    "sans",
    [None, _dns("www.example", "api.example")],
    ids=["no SANs at all", "no SANs of one type"],
)
def test_csr_that_leaves_out_a_type_of_san_still_gets_the_token_sans(
    ec_issuer: Issuer, csr_key: ec.EllipticCurvePrivateKey, sans: list[x509.GeneralName] | None
) -> None:
    granted = authorize_csr(_token(ec_issuer), _csr(csr_key, common_name=None, sans=sans))
    assert [san.value for san in granted] == TOKEN_SANS


@pytest.mark.parametrize(
    ("sans", "reason"),
    [
        (_dns("www.example"), "DNS names do not match the token: missing api.example"),
        (
            _dns("www.example", "api.example", "evil.example"),
            "not in the token evil.example",
        ),
        ([*_dns("www.example", "api.example"), _ip("10.0.0.10")], "IP addresses do not match"),
        ([x509.RFC822Name("ops@example.com")], "emails do not match"),
    ],
)
def test_csr_sans_must_equal_the_token_sans_of_their_type(
    ec_issuer: Issuer,
    csr_key: ec.EllipticCurvePrivateKey,
    sans: list[x509.GeneralName],
    reason: str,
) -> None:
    with pytest.raises(PolicyError, match=reason):
        authorize_csr(_token(ec_issuer), _csr(csr_key, sans=sans))


def test_csr_common_name_must_be_the_subject_or_a_san(
    ec_issuer: Issuer, csr_key: ec.EllipticCurvePrivateKey
) -> None:
    assert authorize_csr(_token(ec_issuer), _csr(csr_key, common_name="api.example"))
    with pytest.raises(PolicyError, match=re.escape("common name 'evil.example'")):
        authorize_csr(_token(ec_issuer), _csr(csr_key, common_name="evil.example"))


def test_token_bound_to_a_csr_accepts_only_that_csr(
    ec_issuer: Issuer, csr_key: ec.EllipticCurvePrivateKey
) -> None:
    csr = _csr(csr_key)
    der = csr.public_bytes(serialization.Encoding.DER)
    token = _token(ec_issuer, cnf={"x5rt#S256": _b64(hashlib.sha256(der).digest())})
    assert authorize_csr(token, csr)
    with pytest.raises(AuthError, match="bound to another certificate request"):
        authorize_csr(token, _csr(csr_key, common_name="api.example"))


def test_csr_with_a_broken_signature_is_a_bad_request(csr_key: ec.EllipticCurvePrivateKey) -> None:
    der = bytearray(_csr(csr_key).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    pem = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(BadRequest, match="invalid csr: its signature does not verify"):
        parse_csr(pem)


def test_weak_and_unsupported_csr_keys_are_refused(ec_issuer: Issuer) -> None:
    weak_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (weak on purpose)
    with pytest.raises(PolicyError, match="RSA key has 1024 bits"):
        authorize_csr(_token(ec_issuer), _csr(weak_rsa))
    with pytest.raises(PolicyError, match="DSAPublicKey is not supported"):
        authorize_csr(_token(ec_issuer), _csr(dsa.generate_private_key(key_size=1024)))  # noqa: S505
    with pytest.raises(PolicyError, match="secp256k1 is not supported"):
        authorize_csr(_token(ec_issuer), _csr(ec.generate_private_key(ec.SECP256K1())))
