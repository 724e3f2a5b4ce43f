"""The pure parts of renewal, rekey and revocation: token verification, the renewed
certificate, the renewal rules and the revocation request checks. The clock is passed in."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

import migrations
from ca.authority.lifecycle import check_reason_code, parse_serial, renewal_validity
from ca.client.lifecycle import Credentials, renew_at, renew_token
from ca.errors import AuthError, BadRequest
from ca.pki.claims import Claims
from ca.pki.issuer import CopyProfile, Issuer, issue, prepare
from ca.pki.leaf_rules import LeafRules
from ca.pki.provisioner_extension import ProvisionerExtension, from_certificate
from ca.provisioners.base import authorize_renewal
from ca.provisioners.x5c import verify_renew_token
from ca.tokens import RENEW_TOKEN_ISSUER, audiences
from ledger import EventStore, NewEvent, create_engine
from projections import events as ev
from projections.certificates import AlreadyRevoked, CertificateRevoked, UnknownCertificate
from projections.runner import Projections

NOW = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
AUDIENCES = audiences(["ca.example.test"], "renew")
AUDIENCE = "https://ca.example.test:9443/1.0/renew"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(
    subject: str, key: Any, issuer: tuple[x509.Name, Any] | None, path: int
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (_name(subject), key)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


@dataclass
class Hierarchy:
    root: x509.Certificate
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey

    def leaf(
        self,
        key: Any,
        *,
        cn: str = "svc.example",
        not_before: datetime = NOW - timedelta(hours=1),
        lifetime: timedelta = timedelta(hours=24),
        client_auth: bool = True,
        issuer: tuple[x509.Certificate, Any] | None = None,
    ) -> x509.Certificate:
        issuer_cert, issuer_key = issuer or (self.intermediate, self.intermediate_key)
        eku = [ExtendedKeyUsageOID.SERVER_AUTH] + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else []
        )
        return (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(issuer_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + lifetime)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(cn), x509.DNSName("www." + cn)]),
                critical=False,
            )
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier("http://crl.example/ca.crl")],
                            None,
                            None,
                            None,
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(ProvisionerExtension(1, "admin", "kid-1").to_extension(), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )


@pytest.fixture(scope="module")
def pki() -> Hierarchy:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _ca("Root", root_key, None, 1)
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = _ca("Intermediate", intermediate_key, (root.subject, root_key), 0)
    return Hierarchy(root, intermediate, intermediate_key)


def credentials(pki: Hierarchy, key: Any, leaf: x509.Certificate) -> Credentials:
    return Credentials(Path("crt"), Path("key"), [leaf, pki.intermediate], key)


def verify(pki: Hierarchy, token: str, *, now: datetime = NOW) -> Any:
    return verify_renew_token(
        token, roots=[pki.root], intermediates=[], accepted_audiences=AUDIENCES, now=now
    )


def resign(token: str, key: Any, *, header: dict[str, Any] | None = None,
           claims: dict[str, Any] | None = None) -> str:  # fmt: skip
    """The token with its header/claims changed, signed again by `key` (ES256)."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def part(index: int) -> dict[str, Any]:
        segment = token.split(".")[index]
        value: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        )
        return value

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    new_header = {**part(0), **(header or {})}
    new_claims = {**part(1), **(claims or {})}
    signing_input = f"{b64(json.dumps(new_header).encode())}.{b64(json.dumps(new_claims).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


# -- renewal tokens ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ec", "ed25519"])
def test_a_token_minted_by_the_client_proves_possession_of_the_certificate(
    pki: Hierarchy, kind: str
) -> None:
    key = (
        ec.generate_private_key(ec.SECP256R1())
        if kind == "ec"
        else ed25519.Ed25519PrivateKey.generate()
    )
    leaf = pki.leaf(key)
    token = renew_token(credentials(pki, key, leaf), audience=AUDIENCE, now=NOW)
    verified = verify(pki, token)
    assert verified.certificate == leaf
    assert len(verified.token_id) == 64


def test_an_expired_certificate_still_proves_possession(pki: Hierarchy) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.leaf(key, not_before=NOW - timedelta(days=3))
    token = renew_token(credentials(pki, key, leaf), audience=AUDIENCE, now=NOW)
    assert verify(pki, token).certificate == leaf


def test_a_token_signed_by_another_key_is_refused(pki: Hierarchy) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.leaf(key)
    token = renew_token(credentials(pki, key, leaf), audience=AUDIENCE, now=NOW)
    forged = resign(token, ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(AuthError, match="does not verify with the certificate's key"):
        verify(pki, forged)


def test_a_certificate_from_another_ca_is_refused(pki: Hierarchy) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_root = _ca("Other", other_key, None, 1)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.leaf(key, issuer=(other_root, other_key))
    token = renew_token(
        Credentials(Path("c"), Path("k"), [leaf, other_root], key), audience=AUDIENCE, now=NOW
    )
    with pytest.raises(AuthError, match="does not chain"):
        verify(pki, token)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sub": "other.example"}, "common name"),
        ({"aud": "https://elsewhere.example/1.0/renew"}, "audience"),
        ({"aud": "https://ca.example.test/1.0/sign"}, "audience"),
        ({"iss": "someone"}, "issuer"),
        ({"exp": int((NOW - timedelta(minutes=2)).timestamp())}, "expired"),
        ({"nbf": int((NOW + timedelta(minutes=2)).timestamp())}, "not yet valid"),
        ({"exp": None}, "expiry"),
    ],
)
def test_token_claims_are_checked(pki: Hierarchy, change: dict[str, Any], match: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.leaf(key)
    token = resign(
        renew_token(credentials(pki, key, leaf), audience=AUDIENCE, now=NOW), key, claims=change
    )
    with pytest.raises(AuthError, match=match):
        verify(pki, token)


def test_the_provisioner_name_is_an_accepted_issuer(pki: Hierarchy) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.leaf(key)
    token = renew_token(credentials(pki, key, leaf), audience=AUDIENCE, now=NOW)
    assert verify(pki, resign(token, key, claims={"iss": "admin"})).certificate == leaf
    assert verify(pki, token).certificate == leaf  # step-ca-client/1.0
    assert RENEW_TOKEN_ISSUER == "step-ca-client/1.0"


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ({"x5cInsecure": None}, "x5cInsecure"),
        ({"x5cInsecure": ["not base64!"]}, "not a DER certificate"),
        ({"alg": "HS256"}, "algorithm"),
        ({"alg": "none"}, "algorithm"),
        ({"crit": ["exp"]}, "critical"),
    ],
)
def test_token_header_is_checked(pki: Hierarchy, header: dict[str, Any], match: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.leaf(key)
    token = resign(
        renew_token(credentials(pki, key, leaf), audience=AUDIENCE, now=NOW), key, header=header
    )
    with pytest.raises(AuthError, match=match):
        verify(pki, token)


def test_a_certificate_without_client_auth_cannot_use_the_token_flow(pki: Hierarchy) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.leaf(key, client_auth=False)
    token = renew_token(credentials(pki, key, leaf), audience=AUDIENCE, now=NOW)
    with pytest.raises(AuthError, match="clientAuth"):
        verify(pki, token)


# -- renewal rules -----------------------------------------------------------------------


def test_renewal_rules(pki: Hierarchy) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    valid = pki.leaf(key)
    authorize_renewal(valid, Claims(), now=NOW, via_token=False)
    with pytest.raises(AuthError, match="disabled"):
        authorize_renewal(valid, Claims(disable_renewal=True), now=NOW, via_token=False)
    future = pki.leaf(key, not_before=NOW + timedelta(minutes=5))
    with pytest.raises(AuthError, match="not yet valid"):
        authorize_renewal(future, Claims(), now=NOW, via_token=True)
    expired = pki.leaf(key, not_before=NOW - timedelta(days=2))
    with pytest.raises(AuthError, match="expired on"):
        authorize_renewal(expired, Claims(), now=NOW, via_token=True)
    with pytest.raises(AuthError, match="expired on"):
        authorize_renewal(
            expired, Claims(allow_renewal_after_expiry=True), now=NOW, via_token=False
        )
    authorize_renewal(expired, Claims(allow_renewal_after_expiry=True), now=NOW, via_token=True)


def test_renewal_keeps_the_lifetime() -> None:
    old_start = NOW - timedelta(hours=20)
    old = _stub(old_start, old_start + timedelta(hours=24, minutes=1))
    start, end = renewal_validity(
        old, now=NOW + timedelta(microseconds=5), backdate=timedelta(minutes=1)
    )
    assert start == NOW - timedelta(minutes=1)
    assert end - start == timedelta(hours=24, minutes=1)


def _stub(not_before: datetime, not_after: datetime) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder().subject_name(_name("x")).issuer_name(_name("x"))
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(not_before).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )  # fmt: skip


@pytest.mark.parametrize("rekey", [False, True], ids=["renew", "rekey"])
def test_the_renewed_certificate_copies_names_and_extensions(pki: Hierarchy, rekey: bool) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    old = pki.leaf(key)
    new_key = ec.generate_private_key(ec.SECP256R1()) if rekey else key
    start, end = renewal_validity(old, now=NOW, backdate=timedelta(minutes=1))
    prepared = prepare(
        CopyProfile(old), new_key.public_key(), (start, end),
        Issuer(pki.intermediate, pki.intermediate_key),
        LeafRules.of((pki.root, pki.intermediate), ()), serial=12345,
    )  # fmt: skip
    new = issue(prepared)
    assert new.serial_number == 12345
    assert new.subject.public_bytes() == old.subject.public_bytes()
    assert new.public_key() == new_key.public_key()
    new.verify_directly_issued_by(pki.intermediate)
    old_ext = {e.oid: e for e in old.extensions}
    new_ext = {e.oid: e for e in new.extensions}
    assert set(old_ext) == set(new_ext)
    for oid, extension in old_ext.items():
        if oid == ExtensionOID.SUBJECT_KEY_IDENTIFIER and rekey:
            assert new_ext[oid].value == x509.SubjectKeyIdentifier.from_public_key(
                new_key.public_key()
            )
        elif oid == ExtensionOID.AUTHORITY_KEY_IDENTIFIER:
            issuer_ski = pki.intermediate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            )
            assert new_ext[oid].value.key_identifier == issuer_ski.value.digest
        else:
            assert new_ext[oid] == extension, oid
    provisioner = from_certificate(new)
    assert provisioner is not None and provisioner.name == "admin"


# -- revocation requests -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [("1234", "1234"), ("0x4d2", "1234"), ("0X4D2", "1234"), (" 42 ", "42"),
     (str(2**128 - 1), str(2**128 - 1))],
)  # fmt: skip
def test_serials_are_normalised_to_decimal(given: str, expected: str) -> None:
    assert parse_serial(given) == expected


@pytest.mark.parametrize(
    "given", ["", "abc", "-5", "0", "0x", "12.5", "1_000", "0b101", "0o7", "١٢"]
)
def test_malformed_serials_are_bad_requests(given: str) -> None:
    with pytest.raises(BadRequest):
        parse_serial(given)


def test_reason_codes() -> None:
    assert [check_reason_code(c) for c in (None, 0, 1, 6, 8, 10)] == [0, 0, 1, 6, 8, 10]
    for bad in (-1, 7, 11, True, "1", 1.0):
        with pytest.raises(BadRequest):
            check_reason_code(bad)


# -- the client's schedule ---------------------------------------------------------------


class _FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_renew_when_a_third_of_the_lifetime_is_left_minus_jitter() -> None:
    leaf = _stub(NOW, NOW + timedelta(hours=24))
    assert renew_at(leaf, rng=_FixedRandom(0.0)) == NOW + timedelta(hours=16)  # type: ignore[arg-type]
    jittered = renew_at(leaf, rng=_FixedRandom(0.999))  # type: ignore[arg-type]
    assert (
        NOW + timedelta(hours=16) - timedelta(hours=24) / 20 <= jittered < NOW + timedelta(hours=16)
    )
    given = renew_at(leaf, expires_in=timedelta(hours=1), rng=_FixedRandom(0.0))  # type: ignore[arg-type]
    assert given == NOW + timedelta(hours=23)


# -- the ledger's last word --------------------------------------------------------------


def _issued(serial: str, **links: str | None) -> NewEvent:
    return NewEvent(
        ev.x509_stream(serial),
        ev.X509Issued.TYPE,
        {
            "serial": serial, "certificate": "-", "subject": "CN=x", "sans": [],
            "not_before": "2031-03-01T00:00:00.000000Z", "not_after": "2031-03-02T00:00:00.000000Z",
            "provisioner": None, "issuer_key_id": "k", "token_id": None,
            "renewed_from": links.get("renewed_from"), "rekeyed_from": links.get("rekeyed_from"),
        },
    )  # fmt: skip


def _revoked(serial: str) -> NewEvent:
    return NewEvent(
        ev.x509_stream(serial),
        ev.X509Revoked.TYPE,
        {
            "serial": serial,
            "reason_code": 1,
            "reason": "",
            "revoked_at": "2031-03-01T01:00:00.000000Z",
        },
    )


@pytest.mark.parametrize("link", ["renewed_from", "rekeyed_from"])
def test_the_append_refuses_to_renew_a_certificate_revoked_a_moment_before(
    tmp_path: Path, link: str
) -> None:
    """The check every instance's renewal meets inside the append transaction, whatever
    its own read of the certificate said a moment earlier."""
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    try:
        migrations.upgrade(engine)
        store = EventStore(engine, inline=Projections().inline_applier())
        store.append([_issued("100"), _issued("200")])
        store.append([_issued("101", **{link: "100"})])  # a valid one renews
        store.append([_revoked("100")])
        count = store.count()
        with pytest.raises(CertificateRevoked):
            store.append([_issued("102", **{link: "100"})])
        with pytest.raises(UnknownCertificate):
            store.append([_issued("103", **{link: "999"})])
        with pytest.raises(AlreadyRevoked, match="already revoked"):
            store.append([_revoked("100")])
        with pytest.raises(UnknownCertificate):
            store.append([_revoked("999")])
        # Revoked and renewed in one commit: the order inside it decides.
        with pytest.raises(CertificateRevoked):
            store.append([_revoked("200"), _issued("201", **{link: "200"})])
        assert store.count() == count
    finally:
        engine.dispose()
