"""What the CA believed at a moment: the projections replayed up to that moment's position.

`recorded_at` never decreases with position, so "as of time T" is the prefix of events
recorded at or before T. The prefix is replayed into an in-memory database by the live
projections' own handlers (`ca.audit.replay`), and read with the same queries the CA uses
(`load_snapshot`, `index_entries`, `latest_crl`) — no second implementation to drift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from ca.audit.errors import AuditError
from ca.audit.replay import replay
from ca.authority.state import load_snapshot
from ca.crl.index import index_entries
from ca.crl.records import latest_crl
from ledger import EventStore, format_time, parse_time
from ledger.reads import event_at, first_recorded_at, last_position_at
from projections.authority_keys import authority_keys
from projections.certificates import certificates
from projections.crls import crls
from projections.policies import policies


@dataclass(frozen=True)
class Moment:
    position: int
    time: datetime
    """The moment asked about; for `--position`, when that event was recorded."""


def moment_at(engine: Engine, when: datetime) -> Moment:
    """The last position recorded at or before `when`."""
    with engine.connect() as connection:
        position = last_position_at(connection, when)
        first = first_recorded_at(connection)
    if not position:
        since = (
            f" (its first event was recorded at {format_time(first)})"
            if first is not None
            else " (the ledger is empty)"
        )
        raise AuditError(f"{format_time(when)} is before the CA existed{since}")
    return Moment(position, when)


def moment_of(engine: Engine, position: int) -> Moment:
    with engine.connect() as connection:
        row = event_at(connection, position)
    if row is None or position < 1:
        raise AuditError(f"the ledger has no event at position {position}")
    return Moment(position, parse_time(row.recorded_at))


class View:
    """The projections as of one moment, in a private in-memory database."""

    def __init__(self, store: EventStore, moment: Moment) -> None:
        self.moment = moment
        with store.engine.connect() as source:
            self.engine = replay(store, source, until=moment.position)

    def close(self) -> None:
        self.engine.dispose()

    def summary(self) -> dict[str, Any]:
        now = format_time(self.moment.time)
        with self.engine.connect() as connection:
            snapshot = load_snapshot(connection)
            keys = connection.execute(
                select(authority_keys.c.role, authority_keys.c.key_id)
                .where(authority_keys.c.active.is_(True))
                .order_by(authority_keys.c.activated_position)
            ).all()
            rows = connection.execute(
                select(certificates.c.serial, certificates.c.status, certificates.c.not_after)
            ).all()
            published = connection.execute(
                select(crls.c.issuer_key_id, crls.c.number, crls.c.this_update, crls.c.entries)
            ).all()
        counts = {"valid": 0, "revoked": 0, "expired": 0}
        revoked = []
        for row in rows:
            if row.status == "revoked":
                counts["revoked"] += 1
                revoked.append(str(row.serial))
            elif row.not_after < now:
                counts["expired"] += 1
            else:
                counts["valid"] += 1
        return {
            "position": self.moment.position,
            "time": now,
            "name": snapshot.name,
            "provisioners": [
                {"name": p.name, "type": p.type, "id": p.id, "claims": p.claims}
                for p in snapshot.provisioners
            ],
            "policies": {scope: json.loads(text) for scope, text in self._policies().items()},
            "active_keys": [{"role": r.role, "key_id": r.key_id} for r in keys],
            "certificates": counts,
            "revoked": sorted(revoked, key=int),
            "crls": [
                {
                    "issuer_key_id": c.issuer_key_id,
                    "number": c.number,
                    "this_update": c.this_update,
                    "entries": c.entries,
                }
                for c in published
            ],
        }

    def _policies(self) -> dict[str, str]:
        with self.engine.connect() as connection:
            return {
                str(s): str(p)
                for s, p in connection.execute(select(policies.c.scope, policies.c.policy))
            }

    def active_intermediate(self) -> str:
        with self.engine.connect() as connection:
            snapshot = load_snapshot(connection)
        if not snapshot.intermediates:
            raise AuditError("no intermediate was active at that moment")
        return snapshot.intermediate.key_id

    def index_text(self, *, all_issuers: bool = False) -> str:
        issuer = None if all_issuers else self.active_intermediate()
        with self.engine.connect() as connection:
            lines = index_entries(connection, now=self.moment.time, issuer_key_id=issuer)
            return "".join(line + "\n" for line in lines)

    def crl_der(self) -> bytes:
        """The active intermediate's CRL in force at that moment (the latest published)."""
        issuer = self.active_intermediate()
        with self.engine.connect() as connection:
            published = latest_crl(connection, issuer)
        if published is None:
            raise AuditError("no CRL had been published by then")
        return published.der
