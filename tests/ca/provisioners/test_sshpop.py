"""SSHPOP verification, pure: a certificate of ours, valid now, signing its own token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from support.ssh import NOW, make_certificate

from ca.client.ssh import sshpop_token
from ca.errors import AuthError
from ca.provisioners.sshpop import verify_sshpop
from ca.ssh.certificates import certificate_line

AUD = "https://ca.internal/1.0/ssh/renew"
ACCEPTED = frozenset({AUD, "https://ca.internal/ssh/renew"})

CA = ec.generate_private_key(ec.SECP256R1())
HOST = ec.generate_private_key(ec.SECP256R1())


def _token(cert_line: str, key: object, *, audience: str = AUD + "#sshpop/sshpop") -> str:
    return sshpop_token(cert_line, key, audience=audience, subject="1234", now=NOW)


def test_a_current_certificate_of_ours_proves_possession() -> None:
    line = certificate_line(make_certificate(CA, HOST))
    verified = verify_sshpop(
        _token(line, HOST), ca_keys=[CA.public_key()], accepted_audiences=ACCEPTED, now=NOW
    )
    assert verified.serial == "1234" and verified.subject == "1234" and verified.token_id


@pytest.mark.parametrize(
    "case, message",
    [
        ("expired", "expired"),
        ("not yet valid", "not yet valid"),
        ("foreign CA", "not signed by this CA"),
        ("wrong key", "does not verify"),
        ("other audience", "audience"),
    ],
)
def test_sshpop_tokens_are_refused_with_the_reason(case: str, message: str) -> None:
    start, key, ca, audience = NOW - timedelta(hours=1), HOST, CA, AUD
    if case == "expired":
        start = NOW - timedelta(days=2)
    elif case == "not yet valid":
        start = NOW + timedelta(hours=1)
    elif case == "foreign CA":
        ca = ed25519.Ed25519PrivateKey.generate()  # type: ignore[assignment]
    elif case == "wrong key":
        key = ec.generate_private_key(ec.SECP256R1())
    elif case == "other audience":
        audience = "https://elsewhere.example/1.0/ssh/renew"
    line = certificate_line(make_certificate(ca, HOST, start=start))
    with pytest.raises(AuthError, match=message):
        verify_sshpop(
            _token(line, key, audience=audience),
            ca_keys=[CA.public_key()],
            accepted_audiences=ACCEPTED,
            now=NOW,
        )
