"""Keys in a real SoftHSM2 token: they sign what cryptography's builders ask, verifiably, from
any thread, and never leave the token."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from support.softhsm import SoftHSMToken, needs_softhsm

from ca.config import CAConfig, load_config, save_config
from ca.errors import PasswordError, SignerError
from ca.home import Home
from ca.keys.files import PrivateKey, ensure_private_dir
from ca.keys.pkcs11 import PKCS11Settings, create_key, delete_created_key, load_key, pkcs11_ref
from ca.keys.refs import load_signer

pytestmark = needs_softhsm
NOW = datetime.now(UTC)
NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HSM test")])


def settings(token: SoftHSMToken) -> PKCS11Settings:
    return PKCS11Settings(module=token.module, pin_file=str(token.pin_file))


def new_key(token: SoftHSMToken, label: str, kty: str = "EC") -> PrivateKey:
    return create_key(
        token.uri(label), settings(token), token.directory, kty=kty, rsa_bits=2048
    ).key


def self_signed(key: PrivateKey) -> x509.Certificate:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(NAME)
        .issuer_name(NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, algorithm)
    )


@pytest.mark.parametrize("kty", ["EC", "OKP", "RSA"])
def test_a_certificate_signed_in_the_token_verifies_with_its_public_key(
    softhsm: SoftHSMToken, kty: str
) -> None:
    key = new_key(softhsm, f"ca-{kty}", kty)
    certificate = self_signed(key)
    certificate.verify_directly_issued_by(certificate)
    assert certificate.public_key() == key.public_key()


def test_ecdsa_signs_sha256_sha384_and_prehashed_digests(softhsm: SoftHSMToken) -> None:
    key = new_key(softhsm, "ec")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert (key.curve.name, key.key_size) == ("secp256r1", 256)
    public = key.public_key()
    for algorithm in (hashes.SHA256(), hashes.SHA384()):
        public.verify(key.sign(b"message", ec.ECDSA(algorithm)), b"message", ec.ECDSA(algorithm))
    digest = hashlib.sha256(b"message").digest()
    prehashed = ec.ECDSA(utils.Prehashed(hashes.SHA256()))
    public.verify(key.sign(digest, prehashed), b"message", ec.ECDSA(hashes.SHA256()))


def test_rsa_signs_pkcs1v15_and_pss(softhsm: SoftHSMToken) -> None:
    key = new_key(softhsm, "rsa", "RSA")
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    public = key.public_key()
    pkcs1 = padding.PKCS1v15()
    public.verify(key.sign(b"m", pkcs1, hashes.SHA256()), b"m", pkcs1, hashes.SHA256())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    public.verify(key.sign(b"m", pss, hashes.SHA256()), b"m", pss, hashes.SHA256())


def test_crl_and_ocsp_builders_sign_with_the_token_key(softhsm: SoftHSMToken) -> None:
    key = new_key(softhsm, "issuer")
    issuer = self_signed(key)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(NAME)
        .last_update(NOW)
        .next_update(NOW + timedelta(hours=1))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(7).revocation_date(NOW).build()
        )
        .sign(key, hashes.SHA256())
    )
    assert crl.is_signature_valid(key.public_key())  # type: ignore[arg-type]
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=issuer,
            issuer=issuer,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW,
            next_update=NOW + timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        .sign(key, hashes.SHA256())
    )
    public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


def test_threads_sign_concurrently_each_in_its_own_session(softhsm: SoftHSMToken) -> None:
    key = new_key(softhsm, "busy")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    messages = [f"message {i}".encode() for i in range(64)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        signatures = list(pool.map(lambda m: key.sign(m, ec.ECDSA(hashes.SHA256())), messages))
    for message, signature in zip(messages, signatures, strict=True):
        key.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_a_key_ledgerca_creates_cannot_leave_the_token(softhsm: SoftHSMToken) -> None:
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    key = new_key(softhsm, "sealed")
    with pytest.raises(SignerError, match="lives in the HSM and cannot be exported"):
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    with pytest.raises(SignerError, match="cannot be exported"):
        key.private_numbers()  # type: ignore[union-attr]
    # Ask the token itself, in a session of our own (logged in: this process is).
    token = pkcs11.lib(softhsm.module).get_token(token_label=softhsm.label)
    with token.open() as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="sealed")
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.TOKEN] is True


def test_an_existing_key_with_the_label_is_used_not_replaced(softhsm: SoftHSMToken) -> None:
    first = create_key(softhsm.uri("int"), settings(softhsm), softhsm.directory, kty="EC")
    again = create_key(softhsm.uri("int"), settings(softhsm), softhsm.directory, kty="EC")
    assert first.created and not again.created
    assert again.uri == first.uri
    assert again.key.public_key() == first.key.public_key()
    loaded = load_key(str(first.uri), settings(softhsm), softhsm.directory)
    assert loaded.public_key() == first.key.public_key()


def test_undoing_a_creation_removes_the_key(softhsm: SoftHSMToken) -> None:
    created = create_key(softhsm.uri("gone"), settings(softhsm), softhsm.directory, kty="EC")
    delete_created_key(created)
    with pytest.raises(SignerError, match="no private key 'gone'"):
        load_key(str(created.uri), settings(softhsm), softhsm.directory)


def test_load_signer_takes_module_and_pin_from_the_homes_pkcs11_table(
    softhsm: SoftHSMToken, tmp_path: Path
) -> None:
    """Any signing path (SSH CA, ledger key) gets HSM keys through load_signer, given the
    `[pkcs11]` table of the home's config."""
    uri = create_key(softhsm.uri("ledger"), settings(softhsm), tmp_path, kty="OKP").uri
    home = Home(tmp_path / "home")
    ensure_private_dir(home.config_dir)
    config = CAConfig("t", ("localhost",), "127.0.0.1:1", "sqlite://", pkcs11=settings(softhsm))
    save_config(home.config_file, config)
    pkcs11 = load_config(home).pkcs11
    key = load_signer(home, pkcs11_ref(uri), b"", what="ledger key", pkcs11=pkcs11)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    key.public_key().verify(key.sign(b"checkpoint"), b"checkpoint")


def test_a_wrong_pin_is_a_clear_error(softhsm: SoftHSMToken) -> None:
    wrong = softhsm.directory / "wrong-pin"
    wrong.write_text("0000\n")
    wrong.chmod(0o600)
    bad = PKCS11Settings(module=softhsm.module, pin_file=str(wrong))
    with pytest.raises(SignerError, match=f"wrong PIN for PKCS#11 token '{softhsm.label}'"):
        load_key(softhsm.uri("any"), bad, softhsm.directory)
    # Also once this process is logged in with the right PIN.
    new_key(softhsm, "k")
    with pytest.raises(SignerError, match="wrong PIN"):
        load_key(softhsm.uri("k"), bad, softhsm.directory)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("pkcs11:token=ledgerca-test;object=missing", "no private key 'missing' in PKCS#11 token"),
        ("pkcs11:token=elsewhere;object=k", "no PKCS#11 token labelled 'elsewhere'"),
    ],
)
def test_a_missing_token_or_key_is_a_clear_error(
    softhsm: SoftHSMToken, uri: str, message: str
) -> None:
    with pytest.raises(SignerError, match=message):
        load_key(uri, settings(softhsm), softhsm.directory)


def test_a_pin_file_others_can_read_is_refused(softhsm: SoftHSMToken) -> None:
    softhsm.pin_file.chmod(0o644)
    with pytest.raises(PasswordError, match=r"open to other users \(mode 0644\): chmod 600"):
        load_key(softhsm.uri("k"), settings(softhsm), softhsm.directory)


def test_the_uri_can_carry_module_and_pin_source(softhsm: SoftHSMToken) -> None:
    new_key(softhsm, "self-contained")
    uri = (
        f"{softhsm.uri('self-contained')}?pin-source=file:{softhsm.pin_file}"
        f"&module-path={softhsm.module}"
    )
    key = load_key(uri, PKCS11Settings(), softhsm.directory)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
