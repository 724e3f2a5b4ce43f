"""cryptography private-key objects whose private half lives in a PKCS#11 token.

cryptography supports such keys officially ("Cloud KMS and HSM Asymmetric Keys"): subclass
its key ABCs and route `sign()` to the HSM, and `CertificateBuilder`, the CRL and OCSP
builders and `SSHCertificateBuilder` all sign with them. Everything that would need the
private key itself (export, numbers, key agreement, decryption) raises SignerError.

Digests are computed here and the token signs them with the raw mechanisms (`CKM_ECDSA`,
`CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`): SoftHSM has no `CKM_ECDSA_SHA256`, and
this way `Prehashed` works too. PKCS#11 returns ECDSA signatures as raw r‖s; X.509 wants DER.
"""

from __future__ import annotations

from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, utils
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from pkcs11 import MGF, Mechanism

from ca.errors import SignerError
from ca.keys.pkcs11_token import HSMKeyObject

__all__ = ["HSMECKey", "HSMEd25519Key", "HSMRSAKey"]

# DER DigestInfo prefixes (RFC 8017 §9.2 note 1): CKM_RSA_PKCS signs DigestInfo ‖ digest.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_PSS_PARAMS = {
    "sha256": (Mechanism.SHA256, MGF.SHA256),
    "sha384": (Mechanism.SHA384, MGF.SHA384),
    "sha512": (Mechanism.SHA512, MGF.SHA512),
}


def _in_hsm(what: str) -> NoReturn:
    raise SignerError(f"the key lives in the HSM and cannot be exported ({what})")


def _digest(
    data: bytes, algorithm: hashes.HashAlgorithm | utils.Prehashed
) -> tuple[bytes, hashes.HashAlgorithm]:
    if isinstance(algorithm, utils.Prehashed):
        # cryptography exposes no public accessor for the hash a Prehashed wraps.
        return data, algorithm._algorithm  # noqa: SLF001
    hasher = hashes.Hash(algorithm)
    hasher.update(data)
    return hasher.finalize(), algorithm


class HSMECKey(ec.EllipticCurvePrivateKey):
    """An ECDSA key (P-256 or P-384) in a token."""

    def __init__(self, handle: HSMKeyObject, public: ec.EllipticCurvePublicKey) -> None:
        self._handle = handle
        self._public = public

    @property
    def uri(self) -> str:
        return str(self._handle.uri)

    def sign(self, data: Any, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise SignerError(f"an HSM EC key signs ECDSA only, not {signature_algorithm!r}")
        digest, _ = _digest(bytes(data), signature_algorithm.algorithm)
        raw = self._handle.sign(Mechanism.ECDSA, digest)
        half = len(raw) // 2
        return utils.encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise SignerError("an HSM signing key is not used for key agreement")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _in_hsm("private numbers")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        _in_hsm("private bytes")

    def __copy__(self) -> HSMECKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HSMECKey:
        return self


class HSMRSAKey(rsa.RSAPrivateKey):
    """An RSA key in a token: PKCS#1 v1.5 or PSS signatures."""

    def __init__(self, handle: HSMKeyObject, public: rsa.RSAPublicKey) -> None:
        self._handle = handle
        self._public = public

    @property
    def uri(self) -> str:
        return str(self._handle.uri)

    def sign(
        self,
        data: Any,
        padding: rsa_padding.AsymmetricPadding,
        algorithm: hashes.HashAlgorithm | utils.Prehashed | utils.NoDigestInfo,
    ) -> bytes:
        if isinstance(algorithm, utils.NoDigestInfo):
            if not isinstance(padding, rsa_padding.PKCS1v15):
                raise SignerError("NoDigestInfo signs with PKCS1v15 padding only")
            return self._handle.sign(Mechanism.RSA_PKCS, bytes(data))
        digest, hash_algorithm = _digest(bytes(data), algorithm)
        if hash_algorithm.name not in _DIGEST_INFO:
            raise SignerError(f"an HSM RSA key signs SHA-2 digests, not {hash_algorithm.name}")
        if isinstance(padding, rsa_padding.PKCS1v15):
            return self._handle.sign(Mechanism.RSA_PKCS, _DIGEST_INFO[hash_algorithm.name] + digest)
        if isinstance(padding, rsa_padding.PSS):
            mechanism, mgf = _PSS_PARAMS[hash_algorithm.name]
            # PSS keeps its salt length private; signing in the HSM must still honour it.
            salt = padding._salt_length  # noqa: SLF001
            if isinstance(salt, rsa_padding._MaxLength | rsa_padding._Auto):  # noqa: SLF001
                salt_length = self.key_size // 8 - hash_algorithm.digest_size - 2
            elif isinstance(salt, rsa_padding._DigestLength):  # noqa: SLF001
                salt_length = hash_algorithm.digest_size
            else:
                salt_length = int(salt)
            return self._handle.sign(Mechanism.RSA_PKCS_PSS, digest, (mechanism, mgf, salt_length))
        raise SignerError(f"an HSM RSA key signs with PKCS1v15 or PSS, not {padding.name}")

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def decrypt(self, ciphertext: bytes, padding: rsa_padding.AsymmetricPadding) -> bytes:
        raise SignerError("an HSM signing key is not used for decryption")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _in_hsm("private numbers")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        _in_hsm("private bytes")

    def __copy__(self) -> HSMRSAKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HSMRSAKey:
        return self


class HSMEd25519Key(ed25519.Ed25519PrivateKey):
    """An Ed25519 key in a token (CKM_EDDSA, pure EdDSA over the whole message)."""

    def __init__(self, handle: HSMKeyObject, public: ed25519.Ed25519PublicKey) -> None:
        self._handle = handle
        self._public = public

    @property
    def uri(self) -> str:
        return str(self._handle.uri)

    def sign(self, data: Any) -> bytes:
        return self._handle.sign(Mechanism.EDDSA, bytes(data))

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._public

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        _in_hsm("private bytes")

    def private_bytes_raw(self) -> bytes:
        _in_hsm("raw private bytes")

    def __copy__(self) -> HSMEd25519Key:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HSMEd25519Key:
        return self
