"""`ledger export` / `ledger import`: backup and restore, and SQLite → PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from support.ca_server import init_ca, ledgerca

from ledger import EventStore, create_engine, verify_chain
from projections.provisioners import provisioners


def _rows(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [
                tuple(r)
                for r in connection.execute(select(provisioners).order_by(provisioners.c.id))
            ]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("export")
    ca = init_ca(base)
    password = base / "web.pw"
    password.write_bytes(b"web-password")
    ledgerca("provisioner", "add", "web", "--password-file", str(password), home=ca.home)
    ledgerca("provisioner", "update", "web", "--claims", '{"disableRenewal": true}', home=ca.home)
    dump = base / "ledger.jsonl"
    ledgerca("ledger", "export", "--out", str(dump), home=ca.home)
    return ca.home, dump


def test_an_export_imports_into_an_empty_database_and_verifies(
    exported: tuple[Path, Path], db_url: str
) -> None:
    home, dump = exported
    lines = dump.read_text().splitlines()
    assert [json.loads(line)["position"] for line in lines] == list(range(1, len(lines) + 1))
    out = ledgerca("ledger", "import", str(dump), "--db", db_url, home=home)
    assert f"imported {len(lines)} events" in out.stdout
    engine = create_engine(db_url)
    try:
        assert verify_chain(engine).events == len(lines)
        assert EventStore(engine).head().hash == json.loads(lines[-1])["hash"]
    finally:
        engine.dispose()
    # The projections were rebuilt from the imported events: same provisioners as the source.
    assert _rows(db_url) == _rows(f"sqlite:///{home / 'db' / 'ledger.sqlite'}")
    # A second import into the now non-empty database is refused.
    again = ledgerca("ledger", "import", str(dump), "--db", db_url, home=home, check=False)
    assert again.returncode != 0 and "empty" in again.stderr


def test_a_tampered_export_is_refused_and_nothing_is_imported(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    home, dump = exported
    lines = dump.read_text().splitlines()
    record = json.loads(lines[3])
    record["data"]["name"] = "mallory"
    lines[3] = json.dumps(record)
    forged = tmp_path / "forged.jsonl"
    forged.write_text("\n".join(lines) + "\n")
    target = f"sqlite:///{tmp_path / 'target.sqlite'}"
    result = ledgerca("ledger", "import", str(forged), "--db", target, home=home, check=False)
    assert result.returncode != 0
    assert "position 4" in result.stderr and "Traceback" not in result.stderr
    engine = create_engine(target)
    try:
        assert EventStore(engine).count() == 0
    finally:
        engine.dispose()
