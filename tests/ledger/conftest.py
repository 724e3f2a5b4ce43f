from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

import migrations
from ledger import EventStore, create_engine
from projections.runner import Projections


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> EventStore:
    return EventStore(engine, inline=Projections().inline_applier())
