"""Follower projections advance while `ledgerca serve` runs, on SQLite and PostgreSQL.

`activity` is a follower: it is not written inside appends but catches up from its stored
position. A serving process runs it as a background job (woken by NOTIFY on PostgreSQL,
polled on SQLite), so it counts an issuance without anyone running a command.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from support.ca_server import database_url, init_ca, request_certificate, start_ca
from support.cli import ledger_events
from support.waiting import wait_until

from ledger import create_engine
from projections.activity import activity


def _counted(ca_url: str) -> dict[str, int]:
    engine = create_engine(ca_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(activity.c.type, func.sum(activity.c.events)).group_by(activity.c.type)
            )
            return {str(kind): int(total) for kind, total in rows}
    finally:
        engine.dispose()


def test_the_activity_follower_counts_what_the_serving_ca_records(
    tmp_path: Path, ca_database: str | None
) -> None:
    ca = init_ca(tmp_path / "ca", database=ca_database)
    running = start_ca(ca)
    try:
        response, _ = request_certificate(running, "svc.example")
        assert response.status_code == 201, response.text
        wait_until(
            lambda: _counted(database_url(ca)).get("x509.issued", 0) >= 1,
            30,
            "the activity follower counted the issuance",
        )
        # It has counted every event up to where it stands: the whole ledger, once caught up.
        wait_until(
            lambda: sum(_counted(database_url(ca)).values()) == len(ledger_events(ca.home)),
            30,
            "the activity follower caught up with the head",
        )
    finally:
        running.stop()
