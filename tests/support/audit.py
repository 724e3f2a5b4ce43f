"""A ledger with a ledger key and checkpoints, for the audit tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text

import migrations
from ca.audit import checkpoints
from ca.audit.checkpointer import Checkpointer
from ca.audit.checkpoints import Checkpoint
from ca.audit.ledger_key import activation_event, create_key_file
from ca.config import CheckpointSettings
from ca.home import Home
from ca.keys.files import ensure_private_dir
from ledger import EventStore, NewEvent, create_engine
from projections import events as ev
from projections.runner import Projections

PASSWORD = b"ledger-key-password"


@dataclass
class Ledger:
    """A ledger with a ledger key, some events and checkpoints, on a real database."""

    store: EventStore
    home: Home

    @property
    def engine(self) -> Engine:
        return self.store.engine

    def fill(self, count: int, start: int = 0) -> None:
        for n in range(start, start + count):
            self.store.append([NewEvent(f"s/{n}", "test.a", {"n": n})], actor={"test": "fill"})

    def checkpoint(self) -> Checkpoint:
        checkpointer = Checkpointer(
            store=self.store,
            home=self.home,
            password=PASSWORD,
            settings=CheckpointSettings(),
            actor={"test": "checkpoint"},
            pkcs11=None,
        )
        with self.engine.connect() as connection:
            last = checkpoints.latest(connection)
        recorded = checkpointer.record(last)
        assert recorded is not None
        return recorded

    def drop_triggers(self) -> None:
        with self.engine.begin() as connection:
            if self.engine.dialect.name == "sqlite":
                connection.execute(text("DROP TRIGGER events_reject_update"))
                connection.execute(text("DROP TRIGGER events_reject_delete"))
            else:
                connection.execute(text("ALTER TABLE events DISABLE TRIGGER USER"))


def make_ledger(db_url: str, tmp_path: Path) -> Ledger:
    engine = create_engine(db_url)
    migrations.upgrade(engine)
    home = Home(tmp_path / "home")
    ensure_private_dir(home.secrets_dir)
    store = EventStore(engine, inline=Projections().inline_applier())
    private, key_ref = create_key_file(home, PASSWORD)
    store.append(
        [
            NewEvent(
                ev.AUTHORITY_STREAM,
                ev.AuthorityInitialized.TYPE,
                {"name": "T", "root_fingerprint": "0" * 64},
            ),
            activation_event(private.public_key(), key_ref),
        ]
    )
    return Ledger(store, home)
