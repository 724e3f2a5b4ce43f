"""Compare a database's live projections with a replay of its ledger from position zero."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ledger import EventStore, create_engine
from projections.runner import Projections

Snapshot = dict[str, list[tuple[Any, ...]]]


def projection_snapshot(url: str) -> Snapshot:
    """Every row of every projection table (followers caught up first), in key order."""
    engine = create_engine(url)
    try:
        projections = Projections()
        projections.catch_up_followers(EventStore(engine))
        with engine.connect() as connection:
            return {
                table.name: [
                    tuple(row)
                    for row in connection.execute(
                        select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for projection in projections.all
                for table in projection.tables
            }
    finally:
        engine.dispose()


def ledger_serials(url: str) -> set[str]:
    """The serial of every certificate the ledger says was issued."""
    engine = create_engine(url)
    try:
        return {
            str(event.data["serial"]) for event in EventStore(engine).read(types=("x509.issued",))
        }
    finally:
        engine.dispose()
