"""Audit and forensics against a real `ledgerca serve` (two workers, both checkpointing).

The server signs checkpoints and CRLs on its own; the tests fetch them over HTTPS, check
proofs offline with the CLI and nothing but files, replay the ledger to the moment a CRL was
published, and read a certificate's story back.
"""

from __future__ import annotations

import base64
import json
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from cryptography import x509
from support.ca_server import (
    CAHome,
    RunningCA,
    init_ca,
    ledgerca,
    mint_token,
    provisioner_key,
    request_certificate,
    start_ca,
)
from support.cli import clean_error, run
from support.waiting import wait_until

from ledger import EventStore, create_engine
from projections import events as ev

WAIT = 20.0


@dataclass
class Audited:
    ca: CAHome
    server: RunningCA
    revoked: str
    kept: str
    revoke_position: int
    work: Path

    def cli(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        return ledgerca(*map(str, args), home=self.ca.home, check=check)

    def check_proof(self, proof: Path, checkpoint: Path, pubkey: Path) -> str:
        """`audit check-proof` expected to refuse: its one error line."""
        result = self.cli(
            "audit", "check-proof", proof, "--checkpoint", checkpoint, "--ledger-pubkey", pubkey,
            check=False,
        )  # fmt: skip
        return clean_error(result)

    def events(self, *types: str) -> list[Any]:
        engine = create_engine(f"sqlite:///{self.ca.home / 'db' / 'ledger.sqlite'}")
        try:
            return list(EventStore(engine).read(types=list(types) or None))
        finally:
            engine.dispose()


def wait_for(condition: Any, what: str) -> Any:
    return wait_until(condition, WAIT, what)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audited]:
    base = tmp_path_factory.mktemp("audit")
    ca = init_ca(base)
    config_path = ca.home / "config" / "ca.toml"
    config = tomllib.loads(config_path.read_text())
    config["checkpoint"] = {"every": 1, "interval": "1h", "poll_interval": "100ms"}
    config["crl"]["poll_interval"] = "100ms"
    config_path.write_text(tomli_w.dumps(config))
    server = start_ca(ca, workers=2)
    try:
        key, kid = provisioner_key(ca)
        issued = []
        for name in ("db.internal", "web.internal"):
            response, _ = request_certificate(server, name, key=key, kid=kid, sans=[name])
            assert response.status_code == 201, response.text
            crt = x509.load_pem_x509_certificate(response.json()["crt"].encode())
            issued.append(str(crt.serial_number))
        token = mint_token(key, kid, subject=issued[0], audience=f"{server.url}/1.0/revoke")
        with server.client() as http:
            answer = http.post(
                "/1.0/revoke",
                json={"serial": issued[0], "ott": token, "reasonCode": 1, "reason": "laptop lost"},
            )
        assert answer.status_code == 200, answer.text
        audited = Audited(ca, server, issued[0], issued[1], 0, base)
        revocation = next(e for e in audited.events(ev.X509Revoked.TYPE))
        audited.revoke_position = revocation.position
        wait_for(
            lambda: [
                e for e in audited.events(ev.CRLPublished.TYPE)
                if e.data["revoked_through"] >= revocation.position
            ],
            "a CRL with the revocation",
        )  # fmt: skip
        wait_for(
            lambda: [
                e for e in audited.events(ev.LedgerCheckpoint.TYPE)
                if e.data["tree_size"] >= revocation.position
            ],
            "a checkpoint covering the revocation",
        )  # fmt: skip
        yield audited
    finally:
        server.stop()


def test_both_workers_checkpoint_without_ever_reusing_a_number(audited: Audited) -> None:
    recorded = audited.events(ev.LedgerCheckpoint.TYPE)
    assert [e.data["number"] for e in recorded] == list(range(1, len(recorded) + 1))
    assert all(e.data["tree_size"] == e.position - 1 for e in recorded)
    result = audited.cli("audit", "verify", "--json")
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["checkpoints"] >= len(recorded)


def test_the_served_checkpoint_is_signed_by_the_ledger_key(audited: Audited) -> None:
    with audited.server.client() as http:
        first = http.get("/ledger/checkpoint")
        same = http.get("/1.0/ledger/checkpoint")
    assert first.status_code == 200 and same.status_code == 200
    body = first.json()
    pubkey = audited.cli("audit", "pubkey").stdout
    assert body["public_key"] == pubkey
    checkpoint = audited.work / "served-checkpoint.json"
    checkpoint.write_text(json.dumps(body))
    ok = audited.cli("audit", "verify", "--checkpoint", checkpoint)
    assert "exported checkpoint: consistent" in ok.stdout


def test_a_served_proof_verifies_offline_and_fails_when_altered(audited: Audited) -> None:
    with audited.server.client() as http:
        response = http.get("/ledger/proof", params={"serial": audited.kept})
    assert response.status_code == 200, response.text
    proof = response.json()
    issued = next(e for e in audited.events(ev.X509Issued.TYPE) if e.data["serial"] == audited.kept)
    assert proof["position"] == issued.position and proof["hash"] == issued.hash
    assert "event" not in proof  # public: the hash, never the contents
    files = audited.work / "offline"
    files.mkdir()
    (files / "proof.json").write_text(json.dumps(proof))
    (files / "checkpoint.json").write_text(json.dumps(proof["checkpoint"]))
    audited.cli("audit", "pubkey", "--out", files / "ledger.pem")
    # Offline: no --home that exists, only the three files.
    check = ("audit", "check-proof", "proof.json", "--checkpoint", "checkpoint.json",
             "--ledger-pubkey", "ledger.pem")  # fmt: skip
    offline = run(*check, home=files / "no-such-home", cwd=files)
    assert offline.returncode == 0, offline.stderr
    assert f"position {proof['position']} (hash {proof['hash'][:16]}" in offline.stdout

    altered = dict(proof, hash=issued.hash[::-1])
    (files / "altered.json").write_text(json.dumps(altered))
    line = audited.check_proof(
        files / "altered.json", files / "checkpoint.json", files / "ledger.pem"
    )
    assert "does not lead" in line

    forged = dict(proof["checkpoint"], root_hash="ab" * 32)
    (files / "forged-checkpoint.json").write_text(json.dumps(forged))
    line = audited.check_proof(
        files / "proof.json", files / "forged-checkpoint.json", files / "ledger.pem"
    )
    assert "signature does not verify" in line


def test_proofs_from_the_cli_against_an_exported_checkpoint(audited: Audited) -> None:
    work = audited.work / "cli-proof"
    work.mkdir()
    audited.cli("audit", "checkpoint", "--out", work / "cp.json")
    audited.cli("audit", "pubkey", "--out", work / "ledger.pem")
    audited.cli("audit", "prove", "--serial", audited.revoked, "--checkpoint", work / "cp.json",
                "--out", work / "issued.json")  # fmt: skip
    audited.cli("audit", "prove", "--position", str(audited.revoke_position),
                "--checkpoint", work / "cp.json", "--out", work / "revoked.json")  # fmt: skip
    for name in ("issued.json", "revoked.json"):
        result = audited.cli("audit", "check-proof", work / name, "--checkpoint", work / "cp.json",
                             "--ledger-pubkey", work / "ledger.pem")  # fmt: skip
        assert "proof verified" in result.stdout
    # A proof for another tree than the checkpoint given.
    older = audited.events(ev.LedgerCheckpoint.TYPE)[0]
    (work / "older.json").write_text(json.dumps({**older.data, "position": older.position}))
    line = audited.check_proof(work / "issued.json", work / "older.json", work / "ledger.pem")
    assert "another tree" in line


def test_bad_input_gets_one_clear_line(audited: Audited) -> None:
    work = audited.work / "bad"
    work.mkdir()
    (work / "garbage.json").write_text("{not json")
    (work / "empty.json").write_text("{}")
    other = audited.work / "other-ca"
    other_ca = init_ca(other, name="Other CA")
    ledgerca("audit", "checkpoint", "--new", "--password-file", str(other_ca.password_file),
             "--out", str(work / "other.json"), home=other_ca.home)  # fmt: skip
    cases = {
        ("audit", "verify", "--checkpoint", str(work / "garbage.json")): "not JSON",
        ("audit", "verify", "--checkpoint", str(work / "empty.json")): "not a ledgerca checkpoint",
        ("audit", "verify", "--checkpoint", str(work / "other.json")): "not a ledger key",
        ("audit", "show", "--serial", "12345"): "no certificate with serial 12345",
        ("audit", "prove", "--serial", "12345"): "no certificate with serial 12345",
        ("audit", "at", "2001-01-01T00:00:00Z"): "before the CA existed",
        ("audit", "at", "--position", "999999"): "no event at position 999999",
        ("crl", "index", "--at", "2001-01-01T00:00:00Z"): "before the CA existed",
    }
    for args, expected in cases.items():
        line = clean_error(audited.cli(*args, check=False))
        assert expected in line, (args, line)
    with audited.server.client() as http:
        missing = http.get("/ledger/proof", params={"serial": "12345"})
        nonsense = http.get("/ledger/proof", params={"position": "abc"})
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert nonsense.status_code == 400
    assert "must be a non-negative integer" in nonsense.json()["message"]


def test_the_revoked_set_as_of_a_crl_equals_that_crl(audited: Audited) -> None:
    published = next(
        e for e in audited.events(ev.CRLPublished.TYPE)
        if e.data["revoked_through"] >= audited.revoke_position
    )  # fmt: skip
    crl = x509.load_der_x509_crl(base64.b64decode(published.data["der"]))
    in_crl = sorted(str(entry.serial_number) for entry in crl)
    when = published.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out = audited.work / "then.crl"
    index = audited.work / "then-index.txt"
    result = audited.cli("audit", "at", when, "--json", "--crl", out, "--index", index)
    summary = json.loads(result.stdout)
    assert summary["position"] == published.position
    assert summary["revoked"] == in_crl == [audited.revoked]
    assert out.read_bytes() == base64.b64decode(published.data["der"])
    assert summary["certificates"]["revoked"] == 1
    assert {p["name"] for p in summary["provisioners"]} == {"admin"}
    assert {k["role"] for k in summary["active_keys"]} >= {"x509_intermediate", "ledger"}
    # And before the revocation, nothing was revoked.
    before = json.loads(
        audited.cli("audit", "at", "--position", str(audited.revoke_position - 1), "--json").stdout
    )
    assert before["revoked"] == [] and before["certificates"]["revoked"] == 0
    # `crl index --at` agrees with `audit at --index`.
    assert audited.cli("crl", "index", "--at", when).stdout == index.read_text()
    revoked_lines = [line for line in index.read_text().splitlines() if line.startswith("R")]
    assert [int(line.split("\t")[3], 16) for line in revoked_lines] == [int(audited.revoked)]


def test_show_tells_a_certificates_whole_story(audited: Audited) -> None:
    story = json.loads(audited.cli("audit", "show", "--serial", audited.revoked, "--json").stdout)
    issued = story["issued"]
    assert story["status"] == "revoked" and story["sans"] == ["db.internal"]
    assert issued["provisioner"] == "admin" and issued["token_id"]
    assert issued["remote_address"] == "127.0.0.1" and issued["request_id"]
    assert issued["instance"]
    assert story["revocation"]["reason"] == "laptop lost"
    assert story["revocation"]["reason_code"] == 1
    text = audited.cli("audit", "show", "--serial", hex(int(audited.revoked))).stdout
    words = " ".join(text.split())
    assert "revoked: position" in words and "remote address: 127.0.0.1" in words


def test_find_filters_the_inventory(audited: Audited) -> None:
    def serials(*args: str) -> list[str]:
        lines = audited.cli("audit", "find", "--json", *args).stdout.splitlines()
        return [json.loads(line)["serial"] for line in lines]

    assert serials("--status", "revoked") == [audited.revoked]
    assert audited.kept in serials("--status", "valid")
    assert serials("--san", "web.*") == [audited.kept]
    assert set(serials("--provisioner", "admin")) == {audited.revoked, audited.kept}
    assert serials("--provisioner", "nobody") == []
    assert serials("--since", "2999-01-01T00:00:00Z") == []
    rows = audited.cli("audit", "find", "--csv", "--san", "*.internal").stdout.splitlines()
    assert rows[0] == "serial,status,provisioner,issued_at,not_after,subject,sans"
    assert len(rows) == 3
