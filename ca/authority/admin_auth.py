"""Who is calling the admin API: a client certificate or a bearer token, mapped to an admin.

- mTLS: the TLS layer has checked the chain and validity; here the certificate must be one
  this CA recorded, still unrevoked, issued through the admin's provisioner, with the admin's
  subject as its common name or a SAN.
- Token: a JWK token signed by the admin's provisioner key (`iss` the provisioner, `sub` the
  admin subject, `aud` https://CA/admin or /1.0/admin), with step-ca's time rules. Like
  every other token it is single-use: a `token.spent` event records its id with whatever
  the request changes (see `Caller.spends`), so a token used once, on any instance, is
  refused everywhere after (step's admin client signs a token per request).

The returned actor goes into every event the admin's request writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from sqlalchemy import select

from ca.authority.admins import Admin, certificate_subjects, check_expiry, match
from ca.authority.authority import Authority
from ca.authority.recorder import Actor, RequestInfo
from ca.errors import AuthError, PolicyError
from ca.tokens import audiences
from ledger import NewEvent
from projections.certificates import certificates
from projections.events import ProvisionerRef, TokenSpent


@dataclass(frozen=True)
class Caller:
    """An authenticated admin, the actor its events carry, and what its credential spends.

    `spends` (the `token.spent` event of an admin token, nothing for mTLS) goes into the
    append of whatever the request changes, or is appended alone by a request that only
    reads; a refused request appends nothing and so leaves the token unspent.
    """

    admin: Admin
    actor: dict[str, Any]
    spends: tuple[NewEvent, ...] = ()

    def require_super(self) -> None:
        if not self.admin.is_super:
            raise PolicyError("only a super admin may manage admins")


def authenticate(
    authority: Authority,
    *,
    peer: x509.Certificate | None,
    bearer: str | None,
    info: RequestInfo,
) -> Caller:
    snapshot = authority.snapshot()
    now = authority.clock()
    if peer is not None:
        check_expiry(peer, now)
        serial = str(peer.serial_number)
        with authority.runtime.engine.connect() as connection:
            row = connection.execute(
                select(
                    certificates.c.certificate, certificates.c.status, certificates.c.provisioner_id
                ).where(certificates.c.serial == serial)
            ).one_or_none()
        if row is None or x509.load_pem_x509_certificate(row.certificate.encode()) != peer:
            raise AuthError("the client certificate was not issued by this CA")
        if row.status != "valid":
            raise AuthError("the admin's client certificate is revoked")
        admin = match(
            snapshot.admins,
            provisioner_id=row.provisioner_id,
            subjects=certificate_subjects(peer),
        )
        actor = Actor(
            authority.instance, info,
            extra={"admin": admin.subject, "admin_id": admin.id, "via": "mtls",
                   "client_serial": serial},
        )  # fmt: skip
        return Caller(admin, actor.record())
    if bearer:
        accepted = audiences(authority.runtime.config.dns_names, "admin")
        record, token = authority.verify_jwk_token(snapshot, bearer, accepted, now=now)
        admin = match(snapshot.admins, provisioner_id=record.id, subjects={token.subject})
        spent = TokenSpent(
            token_id=token.token_id,
            provisioner=ProvisionerRef(record.id, record.name, record.type),
            purpose="admin",
        ).to_new_event()
        actor = Actor(
            authority.instance, info, token_id=token.token_id,
            extra={"admin": admin.subject, "admin_id": admin.id, "via": "token"},
        )  # fmt: skip
        return Caller(admin, actor.record(), (spent,))
    raise AuthError("the admin API needs a client certificate or an admin token")
