"""Table definitions the store queries. The DDL that creates them lives in `migrations/`.

A test compares these definitions with what the migrations build, so the two cannot drift.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

Position = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("stream", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema", Integer, nullable=False),
    Column("recorded_at", String(27), nullable=False),
    Column("actor", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("stream", "version", name="uq_events_stream_version"),
    Index("ix_events_type", "type"),
    Index("ix_events_recorded_at", "recorded_at"),
)

# One row (id = 1). Appenders lock it first: that serialises appends so position order is
# commit order, and it hands over the previous hash without a scan.
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", Position, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("recorded_at", String(27), nullable=True),
)
