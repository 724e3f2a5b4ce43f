"""What CRLs are made from, and what was published: reads of the projections.

Two projections feed the CRL: `certificates` (status, issuer, revocation time and reason,
and in `revoked_unissued` the serials revoked without being issued here) and `crls` (the
latest CRL per issuer key). Both are inline, so each read reflects the ledger up to some
position; `revocation_state` says which.

A serial revoked without being issued here has no known issuer and no known expiry, so
every issuer's CRL lists it, for as long as CRLs are signed (step-ca does the same: its
entry has no `ExpiresAt`, and only expired entries are dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from ca.crl.builder import RevokedEntry
from ledger import format_time
from ledger.reads import head_position
from projections.certificates import certificates, revoked_unissued
from projections.crls import crls

__all__ = [
    "PublishedCRL",
    "RevocationState",
    "head_position",
    "latest_crl",
    "newest_revocation",
    "parse_stored_time",
    "revocation_state",
]


@dataclass(frozen=True)
class PublishedCRL:
    """A row of the `crls` projection; `der` is empty when it was not asked for."""

    issuer_key_id: str
    number: int
    this_update: datetime
    next_update: datetime
    revoked_through: int
    entries: int
    published_position: int
    der: bytes = b""


@dataclass(frozen=True)
class RevocationState:
    """An issuer's revoked certificates, complete up to ledger position `through`."""

    through: int
    entries: list[RevokedEntry]


def parse_stored_time(text: str) -> datetime:
    # The ledger's fixed format ("...T...%fZ"); fromisoformat is an order of magnitude
    # faster than strptime, which matters for 100,000 entries.
    return datetime.fromisoformat(text)


def latest_crl(
    connection: Connection, issuer_key_id: str, *, with_der: bool = True
) -> PublishedCRL | None:
    columns = [
        crls.c.number,
        crls.c.this_update,
        crls.c.next_update,
        crls.c.revoked_through,
        crls.c.entries,
        crls.c.published_position,
    ]
    if with_der:
        columns.append(crls.c.der)
    row = connection.execute(
        select(*columns).where(crls.c.issuer_key_id == issuer_key_id)
    ).one_or_none()
    if row is None:
        return None
    return PublishedCRL(
        issuer_key_id=issuer_key_id,
        number=int(row.number),
        this_update=parse_stored_time(row.this_update),
        next_update=parse_stored_time(row.next_update),
        revoked_through=int(row.revoked_through),
        entries=int(row.entries),
        published_position=int(row.published_position),
        der=bytes(row.der) if with_der else b"",
    )


def newest_revocation(connection: Connection, issuer_key_id: str) -> int:
    """The ledger position of the issuer's latest revocation (0: none), counting serials
    revoked without being issued here, which every issuer's CRL lists. Two index probes."""
    value = connection.execute(
        select(func.max(certificates.c.revoked_position)).where(
            certificates.c.issuer_key_id == issuer_key_id
        )
    ).scalar()
    unissued = connection.execute(select(func.max(revoked_unissued.c.revoked_position))).scalar()
    return max(int(value or 0), int(unissued or 0))


def revocation_state(
    connection: Connection, issuer_key_id: str, *, expired_before: datetime
) -> RevocationState:
    """The issuer's revoked certificates, less those that expired before `expired_before`,
    and every serial revoked without being issued here (no expiry: always listed).

    The head is read first: under PostgreSQL's READ COMMITTED the entries query may see
    later commits, never fewer, so every revocation up to `through` is in `entries`.
    Appends are serialised, so a revocation seen at position P means all before P are seen
    too: `through` may be raised to the newest revocation read.
    """
    through = head_position(connection)
    rows = connection.execute(
        select(
            certificates.c.serial,
            certificates.c.revoked_at,
            certificates.c.revocation_reason_code,
            certificates.c.not_after,
            certificates.c.revoked_position,
        ).where(
            certificates.c.issuer_key_id == issuer_key_id,
            certificates.c.revoked_position > 0,
            certificates.c.status == "revoked",
            certificates.c.not_after >= format_time(expired_before),
        )
    ).all()
    entries = []
    for row in rows:
        through = max(through, int(row.revoked_position))
        entries.append(
            RevokedEntry(
                serial=int(row.serial),
                revoked_at=parse_stored_time(row.revoked_at),
                reason_code=int(row.revocation_reason_code or 0),
                not_after=parse_stored_time(row.not_after),
            )
        )
    unissued = connection.execute(
        select(
            revoked_unissued.c.serial,
            revoked_unissued.c.revoked_at,
            revoked_unissued.c.revocation_reason_code,
            revoked_unissued.c.revoked_position,
        )
    ).all()
    for revoked in unissued:
        through = max(through, int(revoked.revoked_position))
        entries.append(
            RevokedEntry(
                serial=int(revoked.serial),
                revoked_at=parse_stored_time(revoked.revoked_at),
                reason_code=int(revoked.revocation_reason_code),
            )
        )
    return RevocationState(through, entries)
