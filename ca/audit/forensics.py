"""A certificate's whole story, and the inventory: read from the ledger and `certificates`.

`story` answers "who got this certificate, how, from where, what became of it": the
issuance event with its actor (provisioner, token id, mTLS serial for renewals, remote
address, request id, instance), the chain of renewals and rekeys backwards to the first
issuance and forwards to the newest, and the revocation with who revoked it.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, or_, select

from ca.audit.errors import NotInLedger
from ca.crl.root import parse_serial
from ledger import format_time
from ledger.reads import stream_rows
from projections import events as ev
from projections.certificates import certificates
from projections.inventory import issued_certificates

STATUSES = ("valid", "revoked", "expired")


def _status(stored: str, not_after: str, now: str) -> str:
    if stored == "revoked":
        return "revoked"
    return "expired" if not_after < now else "valid"


def _stream_events(engine: Engine, serial: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = stream_rows(connection, ev.x509_stream(serial))
    return [
        {
            "position": int(r.position),
            "type": r.type,
            "recorded_at": r.recorded_at,
            "actor": json.loads(r.actor),
            "data": json.loads(r.data),
        }
        for r in rows
    ]


def _successors(engine: Engine, serial: str) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(certificates.c.serial, certificates.c.renewed_from)
            .where(
                or_(certificates.c.renewed_from == serial, certificates.c.rekeyed_from == serial)
            )
            .order_by(certificates.c.issued_position)
        ).all()
    return [(str(r.serial), "renewed" if r.renewed_from == serial else "rekeyed") for r in rows]


def story(engine: Engine, serial_text: str, *, now: datetime) -> dict[str, Any]:
    serial = str(parse_serial(serial_text))
    history = _stream_events(engine, serial)
    issued = next((e for e in history if e["type"] == ev.X509Issued.TYPE), None)
    if issued is None:
        raise NotInLedger(f"no certificate with serial {serial} was ever issued by this CA")
    data, actor = issued["data"], issued["actor"]
    backwards: list[dict[str, str]] = []
    current = data
    seen = {serial}
    while True:
        source = current.get("renewed_from") or current.get("rekeyed_from")
        if not source or source in seen:
            break
        seen.add(source)
        how = "renewed" if current.get("renewed_from") else "rekeyed"
        backwards.append({"serial": str(source), "became": how})
        earlier = [
            e for e in _stream_events(engine, str(source)) if e["type"] == ev.X509Issued.TYPE
        ]
        if not earlier:
            break
        current = earlier[0]["data"]
    forwards: list[dict[str, str]] = []
    frontier = serial
    while True:
        following = _successors(engine, frontier)
        if not following or following[0][0] in seen:
            break
        frontier, how = following[0]
        seen.add(frontier)
        forwards.append({"serial": frontier, "from": how})
    revoked = next((e for e in history if e["type"] == ev.X509Revoked.TYPE), None)
    provisioner = data.get("provisioner") or {}
    return {
        "serial": serial,
        "subject": data.get("subject"),
        "sans": [s.get("value") for s in data.get("sans", [])],
        "not_before": data.get("not_before"),
        "not_after": data.get("not_after"),
        "status": "revoked" if revoked else _status("valid", data["not_after"], format_time(now)),
        "issued": {
            "position": issued["position"],
            "at": issued["recorded_at"],
            "provisioner": provisioner.get("name"),
            "provisioner_id": provisioner.get("id"),
            "token_id": data.get("token_id"),
            "authenticated_by": actor.get("authenticated_by")
            or ("token" if data.get("token_id") else None),
            "mtls_serial": actor.get("mtls_serial"),
            "admin": actor.get("cli") and f"{actor.get('user')}@{actor.get('host')}",
            "remote_address": actor.get("remote_address"),
            "request_id": actor.get("request_id"),
            "instance": actor.get("instance"),
            "issuer_key_id": data.get("issuer_key_id"),
        },
        "renewed_from": backwards,
        "renewed_to": forwards,
        "revocation": None
        if revoked is None
        else {
            "position": revoked["position"],
            "at": revoked["data"].get("revoked_at"),
            "reason_code": revoked["data"].get("reason_code"),
            "reason": revoked["data"].get("reason"),
            "by": revoked["actor"],
        },
    }


@dataclass(frozen=True)
class Filters:
    provisioner: str | None = None
    san: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def find(engine: Engine, filters: Filters, *, now: datetime) -> Iterator[dict[str, Any]]:
    """Certificates matching every filter, in issuance order (the SAN pattern is a shell
    glob over SANs and the subject: `*.internal`, `db-?.example.com`)."""
    moment = format_time(now)
    pattern = filters.san.lower() if filters.san else None
    with engine.connect() as connection:
        for row in issued_certificates(
            connection,
            now=now,
            provisioner=filters.provisioner,
            status=filters.status,
            since=filters.since,
            until=filters.until,
        ):
            sans = [str(s.get("value")) for s in json.loads(row.sans)]
            if pattern is not None and not any(
                fnmatch.fnmatchcase(name.lower(), pattern)
                for name in [*sans, _common_name(row.subject)]
            ):
                continue
            yield {
                "serial": str(row.serial),
                "subject": row.subject,
                "sans": sans,
                "status": _status(row.status, row.not_after, moment),
                "provisioner": row.provisioner_name,
                "issued_at": row.issued_at,
                "not_after": row.not_after,
                "revoked_at": row.revoked_at,
            }


def _common_name(subject: str) -> str:
    for part in subject.split(","):
        if part.startswith("CN="):
            return part[3:]
    return ""
