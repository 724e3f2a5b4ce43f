"""What the SSH projections say: certificate status, live hosts, revoked serials per CA key.

Reads only; every instance sees the same rows, so every instance answers the same.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, func, select

from ca.keys.files import PublicKey
from ca.ssh.keys import wire_b64
from ca.ssh.krl import ANY_CA
from ledger import format_time
from projections.authority_keys import authority_keys
from projections.ssh_certificates import ssh_certificates, ssh_revoked_unissued
from projections.ssh_hosts import ssh_hosts

__all__ = [
    "CAKeyRecord",
    "RevokedSerials",
    "active_hosts",
    "ca_keys",
    "certificate_status",
    "revoked_serials",
    "revoked_unissued",
]


@dataclass(frozen=True)
class CAKeyRecord:
    key_id: str
    role: str
    public_key: PublicKey
    active: bool


@dataclass(frozen=True)
class RevokedSerials:
    by_ca_key: dict[bytes, list[int]]
    """CA key wire blob → revoked serials it signed; `ANY_CA` → serials revoked without
    being issued here (no CA key is known for them)."""
    version: int
    """The ledger position of the newest revocation (0 if none)."""


def certificate_status(engine: Engine, serial: str) -> str | None:
    """ "valid", "revoked", or None for a serial this CA never issued."""
    with engine.connect() as connection:
        value = connection.execute(
            select(ssh_certificates.c.status).where(ssh_certificates.c.serial == serial)
        ).scalar_one_or_none()
    return None if value is None else str(value)


def revoked_unissued(engine: Engine, serial: str) -> bool:
    """Whether `serial` was revoked without ever being issued here (`ssh.revoked_unissued`)."""
    with engine.connect() as connection:
        found = connection.execute(
            select(ssh_revoked_unissued.c.serial).where(ssh_revoked_unissued.c.serial == serial)
        ).first()
    return found is not None


def active_hosts(engine: Engine, now: datetime, principal: str | None = None) -> list[str]:
    """Host principals with an unrevoked host certificate valid at `now`, sorted."""
    moment = format_time(now)
    query = (
        select(ssh_hosts.c.principal)
        .where(ssh_hosts.c.valid_after <= moment, ssh_hosts.c.valid_before > moment)
        .distinct()
        .order_by(ssh_hosts.c.principal)
    )
    if principal is not None:
        query = query.where(ssh_hosts.c.principal == principal.lower())
    with engine.connect() as connection:
        return [str(p) for p in connection.execute(query).scalars()]


def ca_keys(engine: Engine) -> list[CAKeyRecord]:
    """Every SSH CA key the ledger ever activated, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                authority_keys.c.key_id,
                authority_keys.c.role,
                authority_keys.c.public_key,
                authority_keys.c.active,
            )
            .where(authority_keys.c.role.in_(("ssh_user", "ssh_host")))
            .order_by(authority_keys.c.activated_position)
        ).all()
    return [
        CAKeyRecord(
            key_id=str(row.key_id),
            role=str(row.role),
            public_key=cast(
                PublicKey, serialization.load_pem_public_key(str(row.public_key).encode())
            ),
            active=bool(row.active),
        )
        for row in rows
    ]


def revoked_serials(engine: Engine) -> RevokedSerials:
    """Revoked SSH serials grouped by the CA key that signed them (retired keys included),
    and those revoked without being issued here under `ANY_CA`."""
    blobs = {k.key_id: base64.b64decode(wire_b64(k.public_key)) for k in ca_keys(engine)}
    grouped: dict[bytes, list[int]] = defaultdict(list)
    with engine.connect() as connection:
        rows = connection.execute(
            select(ssh_certificates.c.serial, ssh_certificates.c.issuer_key_id).where(
                ssh_certificates.c.status == "revoked"
            )
        ).all()
        version = connection.execute(select(func.max(ssh_certificates.c.revoked_position))).scalar()
        unissued = connection.execute(select(ssh_revoked_unissued.c.serial)).scalars().all()
        unissued_version = connection.execute(
            select(func.max(ssh_revoked_unissued.c.revoked_position))
        ).scalar()
    for serial, issuer in rows:
        blob = blobs.get(str(issuer))
        if blob is not None:
            grouped[blob].append(int(serial))
    if unissued:
        grouped[ANY_CA] = [int(serial) for serial in unissued]
    return RevokedSerials(dict(grouped), max(int(version or 0), int(unissued_version or 0)))
