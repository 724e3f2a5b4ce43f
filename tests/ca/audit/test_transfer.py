"""Backup and restore, and SQLite → PostgreSQL: an export imported into a fresh PostgreSQL
verifies as a whole (chain, tree, signed checkpoints, an exported checkpoint) and holds
exactly the projections of the source."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
import tomli_w
from sqlalchemy import create_engine as sa_create_engine
from support.ca_server import init_ca, ledgerca

from ca.audit.replay import first_difference
from projections.runner import Projections


def test_export_import_into_postgresql_verifies_and_every_projection_is_equal(
    tmp_path: Path, postgres_url: str
) -> None:
    ca = init_ca(tmp_path / "source")
    secret = tmp_path / "web.pw"
    secret.write_bytes(b"web-password")
    ledgerca("provisioner", "add", "web", "--password-file", str(secret), home=ca.home)
    new = ("audit", "checkpoint", "--new", "--password-file", str(ca.password_file))
    ledgerca(*new, "--out", str(tmp_path / "cp1.json"), home=ca.home)
    ledgerca("policy", "set", _policy(tmp_path), home=ca.home)
    ledgerca(*new, "--out", str(tmp_path / "cp2.json"), home=ca.home)
    dump = tmp_path / "ledger.jsonl"
    ledgerca("ledger", "export", "--format", "jsonl", "--out", str(dump), home=ca.home)

    ledgerca("ledger", "import", str(dump), "--db", postgres_url, home=ca.home)
    restored = tmp_path / "restored"
    shutil.copytree(ca.home, restored, ignore=shutil.ignore_patterns("db"))
    config_path = restored / "config" / "ca.toml"
    config = tomllib.loads(config_path.read_text())
    config["database"] = postgres_url
    config_path.write_text(tomli_w.dumps(config))

    report = json.loads(
        ledgerca(
            "audit", "verify", "--json", "--checkpoint", str(tmp_path / "cp1.json"), home=restored
        ).stdout
    )
    assert report["ok"] and report["checkpoints"] == 2
    assert report["events"] == len(dump.read_text().splitlines())
    # The source's follower catches up too, so that every projection can be compared.
    ledgerca("projections", "rebuild", "activity", home=ca.home)
    source = sa_create_engine(f"sqlite:///{ca.home / 'db' / 'ledger.sqlite'}")
    target = sa_create_engine(postgres_url)
    try:
        with source.connect() as a, target.connect() as b:
            for projection in Projections().all:
                for table in projection.tables:
                    assert first_difference(b, a, table) is None, table.name
    finally:
        source.dispose()
        target.dispose()


def test_export_since_a_position_writes_only_what_follows(tmp_path: Path) -> None:
    ca = init_ca(tmp_path / "ca")
    everything = ledgerca("ledger", "export", home=ca.home).stdout.splitlines()
    tail = ledgerca("ledger", "export", "--format", "jsonl", "--since", "3", home=ca.home)
    lines = tail.stdout.splitlines()
    assert [json.loads(line)["position"] for line in lines] == list(range(4, len(everything) + 1))
    assert lines == everything[3:]
    refused = ledgerca("ledger", "export", "--format", "csv", home=ca.home, check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr


def _policy(tmp_path: Path) -> str:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"allow": {"dns": ["*.internal"]}}))
    return str(path)


pytestmark = pytest.mark.postgres
