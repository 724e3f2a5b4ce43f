"""Assembling and signing a CRL: a pure function of the issuer, its revocations and `now`.

What goes in follows step-ca (wire reference §7) and RFC 5280: every certificate the issuer
revoked except those that expired more than an hour ago; the CRL number; the issuer's key
identifier; thisUpdate = now (whole seconds) and nextUpdate = thisUpdate + the cache
duration. Unlike step-ca, the Issuing Distribution Point is there only when asked for: a CRL
without one is complete, covering every certificate the issuer signed, while one naming a
URI covers only certificates whose CRL Distribution Point names it (`ca.crl.urls` says
which the CA publishes, and why).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519

from ca.keys.files import PrivateKey, PublicKey

__all__ = [
    "EXPIRED_GRACE",
    "REASON_FLAGS",
    "RevokedEntry",
    "authority_key_identifier",
    "build_crl",
    "listed",
    "pem_crl",
    "reason_flag",
    "signature_hash",
]

EXPIRED_GRACE = timedelta(hours=1)
"""Entries stay listed this long after their certificate expired (step-ca's default)."""

REASON_FLAGS: dict[int, x509.ReasonFlags] = {
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
}
"""RFC 5280 reason codes written as a CRLReason entry extension.

Left out, so the entry carries no reason: 0 (unspecified — RFC 5280 §5.3.1 says the
extension SHOULD then be absent, and Go's encoder, hence step-ca, omits it), 7 (unassigned)
and 8 (removeFromCRL: meaningful only in delta CRLs; in a full CRL it tells OpenSSL the
certificate is *not* revoked, and revocations here are final).
"""


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate, as the `certificates` projection records it."""

    serial: int
    revoked_at: datetime
    reason_code: int
    not_after: datetime | None = None
    """None: listed for as long as the CRL is re-signed (the root CRL's intermediates)."""


def reason_flag(code: int) -> x509.ReasonFlags | None:
    return REASON_FLAGS.get(code)


def listed(entries: Iterable[RevokedEntry], now: datetime) -> list[RevokedEntry]:
    """The entries a CRL made at `now` lists, in serial order (so equal input, equal DER)."""
    horizon = now - EXPIRED_GRACE
    kept = (e for e in entries if e.not_after is None or e.not_after >= horizon)
    return sorted(kept, key=lambda e: e.serial)


def signature_hash(key: PrivateKey) -> hashes.SHA256 | None:
    # Ed25519 signs the message itself; cryptography requires algorithm=None for it.
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def authority_key_identifier(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """The issuer's SKI copied verbatim (path building matches on it), else derived."""
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        public_key = cast(PublicKey, issuer.public_key())
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key)
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def build_crl(
    *,
    issuer: x509.Certificate,
    issuer_key: PrivateKey,
    entries: Iterable[RevokedEntry],
    number: int,
    now: datetime,
    lifetime: timedelta,
    idp_url: str | None,
) -> x509.CertificateRevocationList:
    """Sign a CRL v2 for `issuer` listing `entries` (those expired > 1 h ago dropped).

    `idp_url` None leaves out the Issuing Distribution Point: the CRL covers every
    certificate the issuer signed, whatever their distribution points say. A URI makes it a
    CRL for the certificates whose CRL Distribution Point names that URI, and no others.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    this_update = _second(now)
    next_update = this_update + lifetime
    revoked = [_revoked(entry) for entry in listed(entries, now)]
    extensions: list[x509.ExtensionType] = [
        authority_key_identifier(issuer),
        x509.CRLNumber(number),
    ]
    critical = [False, False]
    if idp_url is not None:
        extensions.append(
            x509.IssuingDistributionPoint(
                full_name=[x509.UniformResourceIdentifier(idp_url)],
                relative_name=None,
                only_contains_user_certs=False,
                only_contains_ca_certs=False,
                only_some_reasons=None,
                indirect_crl=False,
                only_contains_attribute_certs=False,
            )
        )
        critical.append(True)
    # The builder's add_revoked_certificate copies its whole list on every call (quadratic:
    # 22 s for 100,000 entries, against about 1 s for this whole function); its constructor
    # takes the list at once. It wants naive UTC times, which its own setters would store.
    builder = x509.CertificateRevocationListBuilder(
        issuer.subject,
        _naive(this_update),
        _naive(next_update),
        [x509.Extension(e.oid, c, e) for e, c in zip(extensions, critical, strict=True)],
        revoked,
    )
    return builder.sign(issuer_key, signature_hash(issuer_key))


def pem_crl(der: bytes) -> bytes:
    """A DER CRL as PEM ("X509 CRL", 64-character lines), as Go's pem.Encode writes it."""
    text = base64.b64encode(der).decode("ascii")
    body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN X509 CRL-----\n{body}\n-----END X509 CRL-----\n".encode()


def _revoked(entry: RevokedEntry) -> x509.RevokedCertificate:
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(entry.serial)
        .revocation_date(_second(entry.revoked_at))
    )
    flag = reason_flag(entry.reason_code)
    if flag is not None:
        builder = builder.add_extension(x509.CRLReason(flag), critical=False)
    return builder.build()


def _second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
