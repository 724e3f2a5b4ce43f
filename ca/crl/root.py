"""The offline root's CRL: revoking an intermediate without a database or a running CA.

The production guide's "active revocation on your intermediate" takes an openssl.cnf and
an `openssl ca` database; here it is one pure function of the root's certificate and key,
the serials to revoke, the previous root CRL (whose entries carry over, and whose number
is incremented) and the clock.

The root CRL has no Issuing Distribution Point: it is a complete CRL for everything the
root signed, so relying parties take it as in scope whatever the intermediate's CRL
Distribution Point says — the URL `init --intermediate-crl-url` gave it, or none at all
(`openssl verify -crl_check_all` then needs the root CRL handed to it with `-CRLfile`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca.crl.builder import REASON_FLAGS, RevokedEntry, build_crl
from ca.errors import ConfigError
from ca.keys.files import PrivateKey

__all__ = [
    "REASON_CODES",
    "Revocation",
    "RootCRL",
    "parse_reason",
    "parse_serial",
    "previous_entries",
    "sign_root_crl",
]

REASON_CODES = {
    "unspecified": 0,
    "keycompromise": 1,
    "cacompromise": 2,
    "affiliationchanged": 3,
    "superseded": 4,
    "cessationofoperation": 5,
    "certificatehold": 6,
    "removefromcrl": 8,
    "privilegewithdrawn": 9,
    "aacompromise": 10,
}


@dataclass(frozen=True)
class Revocation:
    serial: int
    reason_code: int = 0


@dataclass(frozen=True)
class RootCRL:
    crl: x509.CertificateRevocationList
    number: int
    added: list[int]
    """Serials newly listed by this run."""
    already_listed: list[int]
    """Serials asked for that the previous CRL listed already (kept as they were)."""


def parse_serial(text: str) -> int:
    """A serial as step prints it (decimal), or hex as OpenSSL does: `0x4F3A…` or `4f:3a:…`."""
    cleaned = text.strip()
    try:
        if cleaned.lower().startswith("0x"):
            value = int(cleaned[2:], 16)
        elif ":" in cleaned:
            value = int(cleaned.replace(":", ""), 16)
        else:
            value = int(cleaned, 10)
    except ValueError:
        raise ConfigError(
            f"{text!r} is not a serial number: give it in decimal, or in hex as 0x… or aa:bb:…"
        ) from None
    if value <= 0:
        raise ConfigError(f"serial number {text!r} must be positive")
    return value


def parse_reason(text: str) -> int:
    """A reason code 0-10 (not 7), or its RFC 5280 / OpenSSL name (keyCompromise, …)."""
    cleaned = text.strip()
    code = (
        int(cleaned)
        if cleaned.isascii() and cleaned.isdigit()
        else REASON_CODES.get(cleaned.lower(), -1)
    )
    if code not in REASON_CODES.values():
        names = ", ".join(f"{v} {k}" for k, v in REASON_CODES.items())
        raise ConfigError(f"reason {text!r} is not an RFC 5280 reason code ({names})")
    return code


def previous_entries(
    previous: x509.CertificateRevocationList, root: x509.Certificate
) -> list[RevokedEntry]:
    """The entries of an earlier root CRL, after checking that this root signed it."""
    if previous.issuer != root.subject or not previous.is_signature_valid(
        root.public_key()  # type: ignore[arg-type]
    ):
        raise ConfigError("the previous CRL was not signed by this root")
    entries = []
    for revoked in previous:
        try:
            flag = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
            code = next(c for c, f in REASON_FLAGS.items() if f == flag)
        except (x509.ExtensionNotFound, StopIteration):
            code = 0
        entries.append(RevokedEntry(revoked.serial_number, revoked.revocation_date_utc, code))
    return entries


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        return 0


def sign_root_crl(
    *,
    root: x509.Certificate,
    root_key: PrivateKey,
    revoke: Sequence[Revocation],
    now: datetime,
    next_update: timedelta,
    number: int | None = None,
    previous: x509.CertificateRevocationList | None = None,
) -> RootCRL:
    """Sign the root's CRL: the previous CRL's entries plus `revoke` (revoked at `now`).

    The number is `number` if given, else one more than the previous CRL's (1 without one);
    it must be above the previous CRL's, or relying parties keep the older list.
    """
    if _spki(root_key) != root.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ConfigError("the root key does not match the root certificate")
    if next_update <= timedelta(0):
        raise ConfigError("--next-update must be a positive duration")
    entries: dict[int, RevokedEntry] = {}
    last_number = 0
    if previous is not None:
        entries = {e.serial: e for e in previous_entries(previous, root)}
        last_number = _crl_number(previous)
    if number is None:
        number = last_number + 1
    elif number <= last_number:
        raise ConfigError(
            f"CRL number {number} is not above the previous CRL's {last_number}:"
            " relying parties would keep the older CRL"
        )
    added, already = [], []
    for revocation in revoke:
        if revocation.serial in entries:
            already.append(revocation.serial)
            continue
        entries[revocation.serial] = RevokedEntry(revocation.serial, now, revocation.reason_code)
        added.append(revocation.serial)
    crl = build_crl(
        issuer=root,
        issuer_key=root_key,
        entries=entries.values(),
        number=number,
        now=now,
        lifetime=next_update,
        idp_url=None,
    )
    return RootCRL(crl, number, added, already)


def _spki(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
