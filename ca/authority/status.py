"""Certificate status and issuing keys for the OCSP responder, read from the projections.

Status is read from the shared database on every call (one primary-key lookup): a
revocation committed through any instance is what every instance answers next. Issuing keys
are cached, because they change rarely and never disappear: a retired intermediate stays in
`authority_keys` and keeps answering for the certificates it issued. An issuer hash the
cache does not know makes it re-read the key ids (one small query), and rebuild only if a
key was added.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import Engine, select

from ca.authority.state import ActiveKey
from ca.pki.ocsp import CERT_ID_HASHES, CertificateStatus, issuer_hashes
from ledger import parse_time
from projections.authority_keys import authority_keys
from projections.certificates import certificates, revoked_unissued

__all__ = ["CertificateRecord", "IssuerKey", "StatusReader"]

INTERMEDIATE = "x509_intermediate"


@dataclass(frozen=True)
class IssuerKey:
    """An intermediate that may have issued certificates: active or retired."""

    key: ActiveKey
    certificate: x509.Certificate
    active: bool

    @property
    def key_id(self) -> str:
        return self.key.key_id


@dataclass(frozen=True)
class CertificateRecord:
    """The `certificates` row of one serial, as far as status goes."""

    serial: str
    issuer_key_id: str | None
    """None: revoked without being issued here, so under any of our issuers."""
    status: CertificateStatus


_IssuerIndex = dict[tuple[str, bytes, bytes], IssuerKey]


class StatusReader:
    """Looks up issuers by CertID hashes and certificate status by serial; thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._index: _IssuerIndex = {}
        self._key_ids: frozenset[str] = frozenset()
        self._loaded = False
        self._lock = threading.Lock()

    def issuer(
        self, algorithm: hashes.HashAlgorithm, name_hash: bytes, key_hash: bytes
    ) -> IssuerKey | None:
        """Our intermediate whose subject and key hash to the given CertID, if any."""
        wanted = (algorithm.name, name_hash, key_hash)
        found = self._index.get(wanted) if self._loaded else None
        if found is None:
            self._refresh()
            found = self._index.get(wanted)
        return found

    def certificate(self, serial: int) -> CertificateRecord | None:
        """The status of `serial` as the ledger has it now; None if never issued here and
        not revoked either."""
        columns = certificates.c
        with self.engine.connect() as connection:
            row = connection.execute(
                select(
                    columns.status,
                    columns.issuer_key_id,
                    columns.revoked_at,
                    columns.revocation_reason_code,
                ).where(columns.serial == str(serial))
            ).first()
            unissued = (
                connection.execute(
                    select(revoked_unissued.c.serial).where(
                        revoked_unissued.c.serial == str(serial)
                    )
                ).first()
                if row is None
                else None
            )
        if row is None:
            if unissued is None:
                return None
            return CertificateRecord(str(serial), None, CertificateStatus.revoked_non_issued())
        if row.status == "revoked" and row.revoked_at:
            status = CertificateStatus.revoked(
                parse_time(row.revoked_at), row.revocation_reason_code
            )
        else:
            status = CertificateStatus.good()
        return CertificateRecord(str(serial), row.issuer_key_id, status)

    def _refresh(self) -> None:
        with self._lock:
            with self.engine.connect() as connection:
                key_ids = frozenset(
                    connection.execute(
                        select(authority_keys.c.key_id).where(authority_keys.c.role == INTERMEDIATE)
                    ).scalars()
                )
                if self._loaded and key_ids == self._key_ids:
                    return
                rows = connection.execute(
                    select(authority_keys).where(authority_keys.c.role == INTERMEDIATE)
                ).all()
            index: _IssuerIndex = {}
            for row in rows:
                if not row.certificate:
                    continue
                certificate = x509.load_pem_x509_certificate(row.certificate.encode())
                issuer = IssuerKey(
                    key=ActiveKey(
                        key_id=row.key_id,
                        role=row.role,
                        certificate=certificate,
                        certificate_pem=row.certificate,
                        key_ref=json.loads(row.key_ref),
                    ),
                    certificate=certificate,
                    active=bool(row.active),
                )
                for algorithm in CERT_ID_HASHES:
                    name_hash, key_hash = issuer_hashes(certificate, algorithm)
                    index[(algorithm.name, name_hash, key_hash)] = issuer
            self._index = index
            self._key_ids = frozenset(row.key_id for row in rows)
            self._loaded = True
