"""`crls`: the newest CRL each issuer key published, as every instance serves it.

The CRL itself is signed outside the ledger (by the publisher, `ca.crl.publisher`) and
recorded whole in `crl.published`; this projection only keeps the latest one per issuer,
so `GET /crl` on any instance answers with the same bytes.

It also indexes `certificates` by (issuer, revocation position): the publisher asks "has
this issuer revoked anything since the CRL's `revoked_through`?" every second, and the
builder reads exactly that issuer's revoked rows.
"""

from __future__ import annotations

import base64

from sqlalchemy import Column, Connection, Index, Integer, LargeBinary, String, Table, select

from ledger import RecordedEvent
from projections.base import Mode, Position, Projection, metadata
from projections.certificates import certificates
from projections.errors import ProjectionConflict
from projections.events import CRLPublished

crls = Table(
    "crls",
    metadata,
    Column("issuer_key_id", String(64), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("this_update", String(27), nullable=False),
    Column("next_update", String(27), nullable=False),
    Column("revoked_through", Position, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("published_position", Position, nullable=False),
)

revocations_by_issuer = Index(
    "ix_certificates_issuer_revoked",
    certificates.c.issuer_key_id,
    certificates.c.revoked_position,
)


def _published(connection: Connection, event: RecordedEvent) -> None:
    published = CRLPublished.from_recorded(event)
    issuer = published.issuer_key_id
    number = published.number
    if number != event.version:
        # The number is the stream version: that is what makes it unique across instances.
        raise ProjectionConflict(f"CRL number {number} is not its stream version {event.version}")
    values = {
        "number": number,
        "this_update": published.this_update,
        "next_update": published.next_update,
        "revoked_through": published.revoked_through,
        "entries": published.entries,
        "der": base64.b64decode(published.der),
        "published_position": event.position,
    }
    current = connection.execute(
        select(crls.c.number).where(crls.c.issuer_key_id == issuer)
    ).scalar_one_or_none()
    if current is None:
        connection.execute(crls.insert().values(issuer_key_id=issuer, **values))
        return
    if number <= int(current):
        raise ProjectionConflict(f"CRL number {number} for issuer {issuer} is not above {current}")
    connection.execute(crls.update().where(crls.c.issuer_key_id == issuer).values(**values))


projection = Projection(
    name="crls",
    mode=Mode.INLINE,
    tables=(crls,),
    handlers={CRLPublished.TYPE: _published},
)
