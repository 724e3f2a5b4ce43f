"""Ledger tests run on the ledger alone: no projection is applied inside their appends, so a
ledger test cannot pass because of (or fail because of) a read model."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from ledger import EventStore


@pytest.fixture
def store(engine: Engine) -> EventStore:
    """The event store on `engine`, with no projections."""
    return EventStore(engine)
