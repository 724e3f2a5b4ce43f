"""Certificate requests: parsed and signature-checked once, and the key rules every leaf's
key must meet (issuance and rekey alike)."""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ca.errors import BadRequest, PolicyError
from ca.keys.files import MIN_RSA_BITS

__all__ = ["check_csr_key", "parse_csr"]

_CSR_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


def parse_csr(text: str) -> x509.CertificateSigningRequest:
    if not text:
        raise BadRequest("missing csr")
    try:
        csr = x509.load_pem_x509_csr(text.encode())
    except (ValueError, TypeError, UnicodeEncodeError):
        raise BadRequest("invalid csr") from None
    try:
        valid = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        raise BadRequest("invalid csr: its signature does not verify")
    return csr


def check_csr_key(csr: x509.CertificateSigningRequest) -> None:
    """The keys a certificate may be issued for: RSA of 2048 bits or more, EC on P-256,
    P-384 or P-521, or Ed25519 (PolicyError, 403, otherwise)."""
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as err:
        raise PolicyError("certificate request key type is not supported") from err
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise PolicyError(
                f"certificate request RSA key has {key.key_size} bits: "
                f"at least {MIN_RSA_BITS} are required"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CSR_CURVES:
            raise PolicyError(
                f"certificate request EC key on curve {key.curve.name} is not supported"
            )
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise PolicyError(
            f"certificate request key type {type(key).__name__} is not supported: "
            "use EC (P-256, P-384, P-521), Ed25519 or RSA"
        )
