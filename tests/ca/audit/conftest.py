from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.audit import Ledger, make_ledger


@pytest.fixture
def ledger(db_url: str, tmp_path: Path) -> Iterator[Ledger]:
    made = make_ledger(db_url, tmp_path)
    yield made
    made.engine.dispose()
