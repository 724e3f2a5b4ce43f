"""`ledgerca audit verify` as an operator runs it: exit 0 only when everything holds,
otherwise exit 1 naming the first failing position (text and JSON)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from support.ca_server import init_ca, ledgerca


def test_audit_verify_exits_non_zero_naming_the_first_bad_position(tmp_path: Path) -> None:
    ca = init_ca(tmp_path / "ca")
    checkpoint = tmp_path / "cp.json"
    ledgerca("audit", "checkpoint", "--new", "--password-file", str(ca.password_file),
             "--out", str(checkpoint), home=ca.home)  # fmt: skip
    clean = ledgerca("audit", "verify", "--checkpoint", str(checkpoint), home=ca.home)
    assert clean.stdout.strip().endswith("audit verified")

    with closing(sqlite3.connect(ca.home / "db" / "ledger.sqlite")) as connection:
        connection.execute("DROP TRIGGER events_reject_update")
        connection.execute(
            "UPDATE events SET data = replace(data, 'admin', 'mallory') WHERE position = 4"
        )
        connection.commit()
    text = ledgerca("audit", "verify", "--checkpoint", str(checkpoint), home=ca.home, check=False)
    assert text.returncode == 1 and "Traceback" not in text.stderr
    assert text.stderr.startswith("audit verification FAILED at position 4:")
    as_json = ledgerca("audit", "verify", "--json", home=ca.home, check=False)
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["position"] == 4
