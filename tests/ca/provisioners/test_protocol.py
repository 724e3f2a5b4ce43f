"""The Provisioner protocol: each type grants what it supports, with what it records, and
refuses the rest with a reason that names the type and the operation. Pure: the clock and
the CA's names come in a `Context`."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from joserfc import jwk, jws

from ca.errors import AuthError, PolicyError
from ca.pki.claims import Claims
from ca.provisioners.base import Context, Provisioner, ProvisionerRef, Unprovisioned
from ca.provisioners.jwk import JWKProvisioner
from ca.provisioners.sshpop import SSHPOP
from ca.ssh.options import SSHOptions

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
CONTEXT = Context(now=NOW, ca_started=NOW - timedelta(hours=1), dns_names=("ca.example",))
BASE = "https://ca.example/1.0"


def _provisioner(claims: dict[str, Any] | None = None) -> tuple[JWKProvisioner, jwk.ECKey]:
    private = jwk.ECKey.generate_key("P-256")
    public = dict(private.as_dict(private=False))
    public["kid"] = private.thumbprint()
    row = (json.dumps(public), json.dumps(claims or {}), "{}")
    return JWKProvisioner.from_row("prov-1", "ops", *row), private


def _token(provisioner: JWKProvisioner, private: jwk.ECKey, **claims: Any) -> str:
    payload = {
        "iss": provisioner.name,
        "sub": "svc.example",
        "aud": f"{BASE}/sign",
        "sans": ["svc.example"],
        "jti": secrets.token_hex(16),
        "iat": int(NOW.timestamp()),
        "nbf": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
    }
    payload.update(claims)
    header = {"alg": "ES256", "kid": provisioner.kid, "typ": "JWT"}
    return jws.serialize_compact(header, json.dumps(payload), private, algorithms=["ES256"])


def _csr(name: str) -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _certificate(not_before: datetime, not_after: datetime) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svc.example")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(99)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )


def test_every_type_implements_the_protocol() -> None:
    provisioner, _ = _provisioner()
    implementations: list[Provisioner] = [provisioner, SSHPOP("p-1", "sshpop"), Unprovisioned()]
    assert [p.ref for p in implementations] == [
        ProvisionerRef("prov-1", "ops", "JWK"),
        ProvisionerRef("p-1", "sshpop", "SSHPOP"),
        None,
    ]


def test_a_jwk_sign_grant_records_the_provisioner_by_id_and_carries_its_extension() -> None:
    provisioner, private = _provisioner()
    grant = provisioner.authorize_sign(_token(provisioner, private), _csr("svc.example"), CONTEXT)
    assert grant.provisioner == ProvisionerRef("prov-1", "ops", "JWK")
    assert [san.value for san in grant.sans] == ["svc.example"]
    assert [e.name for e in grant.extensions] == ["ops"]
    assert grant.template is None


def test_disabled_smallstep_extensions_leave_the_extension_out() -> None:
    provisioner, private = _provisioner({"disableSmallstepExtensions": True})
    grant = provisioner.authorize_sign(_token(provisioner, private), _csr("svc.example"), CONTEXT)
    assert grant.extensions == ()


def test_a_sign_token_cannot_revoke() -> None:
    provisioner, private = _provisioner()
    token = _token(provisioner, private, sub="99")
    with pytest.raises(AuthError, match="audience"):
        provisioner.authorize_revoke(token, "99", CONTEXT)


def test_a_revoke_token_names_the_serial_in_any_base() -> None:
    provisioner, private = _provisioner()
    token = _token(provisioner, private, sub="0x63", aud=f"{BASE}/revoke")
    assert provisioner.authorize_revoke(token, "99", CONTEXT).provisioner == provisioner.ref
    other = _token(provisioner, private, sub="100", aud=f"{BASE}/revoke")
    with pytest.raises(PolicyError, match="not the serial number 99"):
        provisioner.authorize_revoke(other, "99", CONTEXT)


def test_renewal_follows_the_provisioners_claims() -> None:
    current = _certificate(NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    expired = _certificate(NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    strict, _ = _provisioner()
    lenient, _ = _provisioner({"allowRenewalAfterExpiry": True})
    disabled, _ = _provisioner({"disableRenewal": True})
    assert isinstance(strict.authorize_renew(current, CONTEXT, via_token=False), Claims)
    with pytest.raises(AuthError, match="does not allow renewal after expiry"):
        strict.authorize_renew(expired, CONTEXT, via_token=True)
    assert lenient.authorize_renew(expired, CONTEXT, via_token=True).allow_renewal_after_expiry
    with pytest.raises(AuthError, match="renew is disabled"):
        disabled.authorize_rekey(current, CONTEXT)
    with pytest.raises(AuthError, match="expired"):
        Unprovisioned().authorize_renew(expired, CONTEXT, via_token=True)


@pytest.mark.parametrize(
    ("provisioner", "operation", "match"),
    [
        (
            SSHPOP("p-1", "sshpop"),
            lambda p: p.authorize_sign("t", _csr("a.example"), CONTEXT),
            "SSHPOP.*X.509",
        ),
        (
            SSHPOP("p-1", "sshpop"),
            lambda p: p.authorize_revoke("t", "1", CONTEXT),
            "SSHPOP.*X.509 revocation",
        ),
        (
            SSHPOP("p-1", "sshpop"),
            lambda p: p.authorize_ssh_sign("t", SSHOptions(), CONTEXT),
            "SSH signing",
        ),
        (_provisioner()[0], lambda p: p.authorize_ssh_renew("t", CONTEXT), "JWK.*SSH renewal"),
        (_provisioner()[0], lambda p: p.authorize_ssh_rekey("t", CONTEXT), "JWK.*SSH rekey"),
        (Unprovisioned(), lambda p: p.authorize_revoke("t", "1", CONTEXT), "no provisioner"),
    ],
)
def test_what_a_type_does_not_support_is_refused(
    provisioner: Provisioner, operation: Any, match: str
) -> None:
    with pytest.raises(AuthError, match=match):
        operation(provisioner)
