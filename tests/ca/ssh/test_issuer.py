"""The one SSH issuer: requests are checked before anything is signed, renewals copy the old
certificate, and what is signed verifies against the CA key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from ca.errors import PolicyError
from ca.ssh.certificates import SSHRequest, cert_type_of, texts, times_of
from ca.ssh.issuer import issue, prepare, renewal_of

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


def _request(**changes: object) -> SSHRequest:
    fields: dict[str, object] = {
        "cert_type": "host",
        "key_id": "web-1",
        "principals": ("web-1.internal", "10.0.0.7"),
        "valid_after": NOW,
        "valid_before": NOW + timedelta(hours=1),
        "critical_options": (("source-address", "10.0.0.0/8"),),
    }
    fields.update(changes)
    return SSHRequest(**fields)  # type: ignore[arg-type]


def test_issue_signs_what_was_prepared() -> None:
    ca_key = ed25519.Ed25519PrivateKey.generate()
    host_key = ed25519.Ed25519PrivateKey.generate().public_key()
    certificate = issue(prepare(_request(), host_key, ca_key, serial=77))
    certificate.verify_cert_signature()
    assert certificate.signature_key() == ca_key.public_key()
    assert certificate.serial == 77
    assert cert_type_of(certificate) == "host"
    assert texts(certificate.valid_principals) == ("web-1.internal", "10.0.0.7")
    assert times_of(certificate) == (NOW, NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"valid_before": NOW}, "expire before it starts"),
        ({"principals": ("web\x00evil",)}, "NUL"),
        ({"key_id": "id\x00"}, "NUL"),
    ],
)
def test_prepare_refuses_before_signing(changes: dict[str, object], match: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(PolicyError, match=match):
        prepare(_request(**changes), key.public_key(), key)


def test_a_renewal_says_what_the_old_certificate_said_from_now() -> None:
    ca_key = ed25519.Ed25519PrivateKey.generate()
    host_key = ed25519.Ed25519PrivateKey.generate().public_key()
    old = issue(prepare(_request(), host_key, ca_key))
    later = NOW + timedelta(days=3)
    renewed = renewal_of(old, valid_after=later)
    assert renewed == _request(valid_after=later, valid_before=later + timedelta(hours=1))
    short = issue(prepare(_request(valid_before=NOW + timedelta(minutes=1)), host_key, ca_key))
    assert renewal_of(short, valid_after=later).valid_before == later + timedelta(minutes=5)
