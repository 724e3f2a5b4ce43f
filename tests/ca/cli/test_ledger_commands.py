"""`ledgerca ledger verify|log`, `projections status|rebuild` and `db upgrade|status`."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from support.cli import INIT, clean_error, copy_home, in_parallel, ledger_events, ok, run

import migrations
from ca.config import load_config, save_config
from ca.home import Home
from ledger import create_engine

FOUNDING_TYPES = [
    "authority.initialized",
    "authority.key_activated",
    "authority.key_activated",
    "provisioner.added",
    "authority.key_activated",  # the ledger key
]

QUERIES: dict[str, tuple[str, ...]] = {
    "verify": ("ledger", "verify"),
    "log": ("ledger", "log"),
    "log --json": ("ledger", "log", "--json"),
    "log --type": ("ledger", "log", "--json", "--type", "authority.key_activated"),
    "log --stream": ("ledger", "log", "--json", "--stream", "authority"),
    "log --since 1h": ("ledger", "log", "--json", "--since", "1h"),
    "log --since future": ("ledger", "log", "--json", "--since", "2999-01-01T00:00:00Z"),
    "log --since nonsense": ("ledger", "log", "--since", "last tuesday"),
    "projections status": ("projections", "status"),
    "projections rebuild nosuch": ("projections", "rebuild", "nosuch"),
    "db upgrade": ("db", "upgrade"),
    "db status": ("db", "status"),
}
"""Commands that only read the shared CA (`db upgrade` has nothing to do on a new one)."""


Results = dict[str, subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("ledger") / "home"
    ok(run(*INIT, home=home))
    return home


@pytest.fixture(scope="module")
def queries(home: Path) -> Results:
    """Each of QUERIES run once against the shared CA, concurrently."""
    return in_parallel(lambda name: run(*QUERIES[name], home=home), QUERIES)


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in ok(result).stdout.splitlines()]


def status_table(result: subprocess.CompletedProcess[str]) -> dict[str, tuple[str, int, int]]:
    """`projections status` as {name: (mode, position, head)}."""
    lines = ok(result).stdout.splitlines()
    assert lines[0].split() == ["projection", "mode", "position", "head", "lag"]
    table = {}
    for line in lines[1:]:
        name, mode, position, head, lag = line.split()
        assert int(lag) == int(head) - int(position)
        table[name] = (mode, int(position), int(head))
    return table


# -- ledger verify ---------------------------------------------------------------------------


def test_verify_passes_on_a_new_ca_and_counts_its_events(queries: Results, home: Path) -> None:
    head = ledger_events(home)[-1].hash
    assert ok(queries["verify"]).stdout.strip() == f"ledger verified: 5 events, head hash {head}"


def _tamper(home: Path, *statements: str) -> None:
    with closing(sqlite3.connect(home / "db/ledger.sqlite")) as connection:
        for statement in statements:
            connection.execute(statement)
        connection.commit()


@pytest.fixture(scope="module")
def tampered(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Results:
    """`ledger verify` on a copy of the CA edited behind the triggers' back."""
    edited = copy_home(home, tmp_path_factory.mktemp("edited") / "home")
    _tamper(
        edited,
        "DROP TRIGGER events_reject_update",
        "UPDATE events SET data = replace(data, 'x509_intermediate', 'x509_root')"
        " WHERE position = 3",
    )
    runs = {
        "edited": (edited, "ledger", "verify"),
        "edited --json": (edited, "ledger", "verify", "--json"),
    }
    return in_parallel(lambda name: run(*runs[name][1:], home=runs[name][0]), runs)


def test_verify_names_the_position_of_an_event_edited_behind_the_triggers(
    tampered: Results,
) -> None:
    text, as_json = tampered["edited"], tampered["edited --json"]
    assert text.returncode != 0
    assert "Traceback" not in text.stderr
    assert "position 3" in text.stderr
    assert as_json.returncode != 0
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert report["position"] == 3


def test_the_triggers_refuse_to_edit_the_ledger(home: Path, tmp_path: Path) -> None:
    copy = copy_home(home, tmp_path / "home")
    for statement in ("UPDATE events SET type = 'x' WHERE position = 1", "DELETE FROM events"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            _tamper(copy, statement)
    assert [e.type for e in ledger_events(copy)] == FOUNDING_TYPES


# -- ledger log ------------------------------------------------------------------------------


def test_log_lists_every_event_in_order(queries: Results) -> None:
    lines = ok(queries["log"]).stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["1", "2", "3", "4", "5"]
    assert [line.split()[2] for line in lines] == FOUNDING_TYPES


def test_log_json_lines_carry_position_type_and_actor(queries: Results, home: Path) -> None:
    events = json_lines(queries["log --json"])
    assert [(e["position"], e["type"]) for e in events] == list(enumerate(FOUNDING_TYPES, 1))
    assert all(e["actor"]["cli"] == "init" for e in events)
    assert [e["hash"] for e in events] == [e.hash for e in ledger_events(home)]


@pytest.mark.parametrize(
    ("query", "positions"),
    [
        ("log --type", [2, 3, 5]),
        ("log --stream", [1, 2, 3, 5]),
        ("log --since 1h", [1, 2, 3, 4, 5]),
        ("log --since future", []),
    ],
)
def test_log_filters(queries: Results, query: str, positions: list[int]) -> None:
    assert [e["position"] for e in json_lines(queries[query])] == positions


def test_log_rejects_a_since_that_is_neither_time_nor_duration(queries: Results) -> None:
    result = queries["log --since nonsense"]
    assert result.returncode == 2  # a usage error
    assert "Traceback" not in result.stderr
    assert "'last tuesday' is neither a time" in result.stderr
    assert result.stdout == ""


# -- projections -----------------------------------------------------------------------------


def test_status_shows_inline_projections_at_the_head_and_the_follower_behind(
    queries: Results,
) -> None:
    table = status_table(queries["projections status"])
    for name in ("authority_keys", "provisioners", "certificates"):
        assert table[name] == ("inline", 5, 5)
    assert table["activity"] == ("follower", 0, 5)
    assert all(row == ("inline", 5, 5) for row in table.values() if row[0] == "inline")


def test_rebuild_brings_every_projection_to_the_head(home: Path, tmp_path: Path) -> None:
    copy = copy_home(home, tmp_path / "home")
    rebuilt = ok(run("projections", "rebuild", home=copy)).stdout
    table = status_table(run("projections", "status", home=copy))
    assert {"authority_keys", "provisioners", "certificates", "activity"} <= set(table)
    for name, (_mode, position, head) in table.items():
        assert f"{name}: rebuilt from 5 events" in rebuilt
        assert (position, head) == (5, 5), name


def test_rebuild_of_an_unknown_projection_fails_cleanly(queries: Results) -> None:
    result = queries["projections rebuild nosuch"]
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "no projection named 'nosuch'" in result.stderr


# -- schema ----------------------------------------------------------------------------------


def test_db_upgrade_is_idempotent_and_status_says_current(queries: Results, home: Path) -> None:
    head = migrations.head_revision()
    assert ok(queries["db upgrade"]).stdout.strip() == f"schema already at {head}"
    assert ok(queries["db status"]).stdout.strip().endswith(": current")
    assert [e.type for e in ledger_events(home)] == FOUNDING_TYPES


def test_a_database_behind_the_code_is_refused_until_upgraded(home: Path, tmp_path: Path) -> None:
    copy = copy_home(home, tmp_path / "home")
    old = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine(old)
    migrations.upgrade(engine, "0001")
    engine.dispose()
    config = load_config(Home(copy))
    save_config(Home(copy).config_file, dataclasses.replace(config, database=old))

    up, status = in_parallel(
        lambda args: run(*args, home=copy), [("up",), ("projections", "status")]
    ).values()
    for refused in (up, status):
        assert "run `ledgerca db upgrade`" in clean_error(refused)

    upgraded = ok(run("db", "upgrade", home=copy)).stdout
    assert f"from 0001 to {migrations.head_revision()}" in upgraded
    assert status_table(run("projections", "status", home=copy))["activity"] == ("follower", 0, 0)
