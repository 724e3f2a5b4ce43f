"""Inclusion proofs: one event, shown to be in the tree a signed checkpoint commits to.

A proof carries the event's chain hash, its audit path and the checkpoint it was built
against; `ledgerca audit prove` (and the HTTP endpoint, for admins) adds the event's full
record as `ledger export` writes it. `check` needs nothing else but a trusted checkpoint and
the ledger's public key: it recomputes the event's chain hash from the record when there is
one (`ledger.hashing.event_hash`), the leaf (`ledger.merkle.event_leaf`), and the root
through the path, and compares that with the signed root.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ca.audit import checkpoints
from ca.audit.checkpoints import Checkpoint
from ca.audit.errors import AuditError, NotInLedger
from ca.audit.tree import shared_tree
from ca.crl.root import parse_serial
from ca.errors import ConfigError
from ca.keys.files import PublicKey
from ledger import IntegrityViolation, event_hash
from ledger.merkle import event_leaf, verify_inclusion
from ledger.reads import event_at, position_of
from ledger.transfer import FIELDS
from projections import events as ev

FORMAT = "ledgerca-inclusion-proof/1"


@dataclass(frozen=True)
class Checked:
    position: int
    type: str | None  # None: the proof carried only the event's hash, not its record
    stream: str | None
    tree_size: int
    root_hash: str


def issuance_position(engine: Engine, serial: str) -> int:
    """The position of the `x509.issued` event of `serial` (decimal, 0x… or aa:bb:…)."""
    try:
        number = str(parse_serial(serial))
    except ConfigError as exc:
        raise AuditError(exc.message) from None
    with engine.connect() as connection:
        position = position_of(connection, ev.x509_stream(number), ev.X509Issued.TYPE)
    if position is None:
        raise NotInLedger(f"no certificate with serial {number} was ever issued by this CA")
    return position


def event_record(engine: Engine, position: int) -> dict[str, Any]:
    with engine.connect() as connection:
        row = event_at(connection, position)
    if row is None:
        raise NotInLedger(f"the ledger has no event at position {position}")
    record = {name: getattr(row, name) for name in FIELDS}
    record["actor"], record["data"] = json.loads(row.actor), json.loads(row.data)
    return record


def build(
    engine: Engine, position: int, checkpoint: Checkpoint, *, with_event: bool = True
) -> dict[str, Any]:
    """The proof of the event at `position` in the tree `checkpoint` signed.

    It always carries the event's chain hash (the leaf input), its audit path and the
    checkpoint: all that shows the event is in the signed tree. `with_event` adds the
    event's whole record, which lets a checker recompute that hash from the contents; the
    public HTTP endpoint leaves it out, since events carry subjects, addresses and policies.
    Built from the process's shared tree: O(log n) hashes once the tree is caught up.
    """
    if position < 1:
        raise AuditError(f"position {position} is not a ledger position (they start at 1)")
    record = event_record(engine, position)
    if position > checkpoint.tree_size:
        raise AuditError(
            f"position {position} is after the checkpoint's {checkpoint.tree_size} events:"
            " wait for the next checkpoint, or record one with `ledgerca audit checkpoint --new`"
        )
    tree = shared_tree(engine)
    tree.catch_up(engine, checkpoint.tree_size)
    if tree.size < checkpoint.tree_size or (
        tree.root_of(engine, checkpoint.tree_size).hex() != checkpoint.root_hash
    ):
        raise IntegrityViolation(
            f"the ledger's first {checkpoint.tree_size} events no longer have the checkpoint's"
            " root: run `ledgerca audit verify`",
            position=checkpoint.tree_size,
        )
    path = tree.path(engine, position - 1, checkpoint.tree_size)
    proof: dict[str, Any] = {
        "format": FORMAT,
        "position": position,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "hash": record["hash"],
        "path": [p.hex() for p in path],
        "checkpoint": checkpoint.to_file(),
    }
    if with_event:
        proof["event"] = record
    return proof


def read_proof(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise AuditError(f"cannot read the proof {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise AuditError(f"{path} is not an inclusion proof (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AuditError(f"{path} is not a ledgerca inclusion proof")
    return data


def check(proof: dict[str, Any], checkpoint: Checkpoint, public: PublicKey) -> Checked:
    """Verify `proof` offline against a trusted checkpoint and ledger key, or AuditError.

    With the event's record in the proof, its chain hash is recomputed from the record (so
    the contents are proven); without it, the proof shows that the given chain hash is the
    event at that position of the signed tree.
    """
    checkpoints.require_valid(checkpoint, public)
    try:
        position, size = int(proof["position"]), int(proof["tree_size"])
        path = [bytes.fromhex(p) for p in proof["path"]]
        record = proof.get("event")
        if record is not None:
            recomputed = event_hash(record)
            stored = str(record["hash"])
            record_position = int(record["position"])
            claimed = str(proof.get("hash", stored))
        else:
            recomputed = stored = claimed = str(proof["hash"])
            record_position = position
        leaf = event_leaf(recomputed)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AuditError(f"the proof is malformed ({exc.__class__.__name__}: {exc})") from None
    if size != checkpoint.tree_size or proof.get("root_hash") != checkpoint.root_hash:
        raise AuditError(
            f"the proof is for another tree ({size} events, root"
            f" {str(proof.get('root_hash'))[:16]}…) than the checkpoint ({checkpoint.tree_size}"
            f" events, root {checkpoint.root_hash[:16]}…): prove against this checkpoint"
        )
    if record_position != position:
        raise AuditError(f"the proof's event is at position {record_position}, not {position}")
    if recomputed != stored or claimed != stored:
        raise AuditError(
            f"the event at position {position} does not hash to its recorded hash: it was altered"
        )
    if not verify_inclusion(leaf, position - 1, size, path, bytes.fromhex(checkpoint.root_hash)):
        raise AuditError(
            f"the proof does not lead from position {position} to the checkpoint's root:"
            " the event or the path was altered"
        )
    if record is None:
        return Checked(position, None, None, size, checkpoint.root_hash)
    return Checked(position, str(record["type"]), str(record["stream"]), size, checkpoint.root_hash)
