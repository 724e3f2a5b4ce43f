"""Opening an existing CA: its config, its database and its ledger."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

import migrations
from ca.config import CAConfig, load_config
from ca.home import Home
from ledger import EventStore, create_engine
from projections.runner import Projections


@dataclass
class Runtime:
    home: Home
    config: CAConfig
    engine: Engine
    store: EventStore
    projections: Projections

    def close(self) -> None:
        self.engine.dispose()


def open_runtime(
    home: Home,
    *,
    database: str | None = None,
    check_schema: bool = True,
    config: CAConfig | None = None,
) -> Runtime:
    """Open the CA at `home` (with `config` as already loaded, else read from the home).
    With `check_schema`, refuse a database that needs an upgrade."""
    config = config or load_config(home)
    engine = create_engine(database or home.database_url(config.database))
    try:
        if check_schema:
            migrations.require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    projections = Projections()
    store = EventStore(engine, inline=projections.inline_applier())
    return Runtime(home, config, engine, store, projections)
