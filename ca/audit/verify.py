"""`ledgerca audit verify`: everything the ledger claims, recomputed.

1. The hash chain, position by position (`ledger.verify_chain`).
2. The Merkle tree, grown leaf by leaf as the chain is walked; every `ledger.checkpoint`
   must cover exactly the positions before it, carry that tree's root, and be signed by a
   ledger key the (already verified) chain activated before it.
3. An exported checkpoint, kept outside the database: its signature, and the root of the
   ledger's first `tree_size` events — a rewritten history or a truncated tail fails here
   even when the attacker recomputed every hash (but could not sign).
4. Every projection equals a replay of the ledger into an empty database.

The first failure stops the walk and is reported with its position.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select

from ca.audit import checkpoints
from ca.audit.checkpoints import Checkpoint
from ca.audit.errors import AuditError
from ca.audit.ledger_key import ROLE, load_public_key
from ca.audit.replay import first_difference, replay
from ca.keys.files import PublicKey
from ca.keys.ids import key_id
from ledger import EventStore, IntegrityViolation, verify_chain
from ledger.merkle import CompactTree, event_leaf
from ledger.reads import head_position
from ledger.rows import StoredRow
from projections import events as ev
from projections.authority_keys import authority_keys
from projections.base import Mode, projection_positions
from projections.runner import Projections

Progress = Callable[[int, int], None]


@dataclass
class AuditReport:
    events: int = 0
    head_hash: str = ""
    root_hash: str = ""
    checkpoints: int = 0
    exported: Checkpoint | None = None
    projections: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "events": self.events,
            "head_hash": self.head_hash,
            "root_hash": self.root_hash,
            "checkpoints": self.checkpoints,
            "exported_checkpoint": self.exported.tree_size if self.exported else None,
            "projections": self.projections,
        }


class _Walk:
    """The per-event checks that ride along the chain verification."""

    def __init__(self, exported: Checkpoint | None) -> None:
        self.tree = CompactTree()
        self.keys: dict[str, PublicKey] = {}
        self.exported = exported
        self.exported_root: str | None = None
        self.checkpoints = 0

    def __call__(self, row: StoredRow) -> None:
        position = int(row.position)
        if row.type == ev.LedgerCheckpoint.TYPE:
            self._checkpoint(position, row.data)
        elif row.type == ev.KeyActivated.TYPE:
            data = json.loads(row.data)
            if data.get("role") == ROLE:
                public = load_public_key(data["public_key"])
                if key_id(public) != data.get("key_id"):
                    raise IntegrityViolation(
                        f"position {position}: the ledger key's id does not match its public key",
                        position=position,
                    )
                self.keys[data["key_id"]] = public
        self.tree.append(event_leaf(row.hash))
        if self.exported is not None and self.tree.size == self.exported.tree_size:
            self.exported_root = self.tree.root().hex()

    def _checkpoint(self, position: int, data: str) -> None:
        try:
            checkpoint = checkpoints.from_mapping(json.loads(data), what="the event")
        except ValueError as exc:
            raise IntegrityViolation(
                f"position {position}: not a readable checkpoint ({exc})", position=position
            ) from None
        if checkpoint.tree_size != position - 1:
            raise IntegrityViolation(
                f"position {position}: the checkpoint covers {checkpoint.tree_size} events,"
                f" not the {position - 1} before it",
                position=position,
            )
        if checkpoint.root_hash != self.tree.root().hex():
            raise IntegrityViolation(
                f"position {position}: the checkpoint's root does not match the events before"
                " it: the history it signed was rewritten",
                position=position,
            )
        public = self.keys.get(checkpoint.key_id)
        if public is None:
            raise IntegrityViolation(
                f"position {position}: the checkpoint is signed by key"
                f" {checkpoint.key_id[:16]}…, which the ledger never activated as a ledger key",
                position=position,
            )
        if not checkpoints.signature_valid(checkpoint, public):
            raise IntegrityViolation(
                f"position {position}: the checkpoint's signature does not verify",
                position=position,
            )
        self.checkpoints += 1


def ledger_keys(engine: Engine) -> dict[str, PublicKey]:
    """Every ledger key the projection knows (active or retired), by key id."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(authority_keys.c.key_id, authority_keys.c.public_key).where(
                authority_keys.c.role == ROLE
            )
        ).all()
    return {str(r.key_id): load_public_key(r.public_key) for r in rows}


def check_exported(
    exported: Checkpoint, engine: Engine, pinned: PublicKey | None, *, what: str
) -> None:
    """The exported checkpoint's signature, by the pinned key or one of the ledger's keys."""
    if pinned is not None:
        checkpoints.require_valid(exported, pinned, what=what)
        return
    known = ledger_keys(engine)
    public = known.get(exported.key_id)
    if public is None:
        raise AuditError(
            f"{what} is signed by key {exported.key_id[:16]}…, which is not a ledger key of this CA"
        )
    checkpoints.require_valid(exported, public, what=what)


def audit(
    store: EventStore,
    *,
    exported: Checkpoint | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Run every check; raise IntegrityViolation (with its position) at the first failure."""
    walk = _Walk(exported)
    verified = verify_chain(store.engine, progress=progress, visit=walk)
    report = AuditReport(
        events=verified.events,
        head_hash=verified.head_hash,
        root_hash=walk.tree.root().hex(),
        checkpoints=walk.checkpoints,
        exported=exported,
    )
    if exported is not None:
        if verified.events < exported.tree_size:
            raise IntegrityViolation(
                f"position {verified.events + 1} is missing: the exported checkpoint covers"
                f" {exported.tree_size} events but the ledger ends at {verified.events}"
                " (the tail was deleted)",
                position=verified.events + 1,
            )
        if walk.exported_root != exported.root_hash:
            raise IntegrityViolation(
                f"the ledger's first {exported.tree_size} events do not have the exported"
                f" checkpoint's root: history at or before position {exported.tree_size} was"
                " rewritten",
                position=exported.tree_size,
            )
    report.projections = check_projections(store)
    return report


def check_projections(store: EventStore, projections: Projections | None = None) -> list[str]:
    """Compare every projection with a replay; raise IntegrityViolation naming the first
    difference. Returns the names of the projections checked."""
    projections = projections or Projections()
    with store.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            head = head_position(connection)
            stored = dict(
                connection.execute(
                    select(projection_positions.c.name, projection_positions.c.position)
                ).all()
            )
            _compare(store, connection, [p for p in projections.inline], head)
            for follower in projections.followers:
                _compare(store, connection, [follower], int(stored.get(follower.name, 0)))
    return [p.name for p in projections.all]


def _compare(store: EventStore, live: Connection, targets: list[Any], until: int) -> None:
    engine = replay(store, live, until=until, projections=targets)
    try:
        with engine.connect() as replayed:
            for projection in targets:
                for table in projection.tables:
                    difference = first_difference(live, replayed, table)
                    if difference is not None:
                        mode = "inline" if projection.mode is Mode.INLINE else "follower"
                        raise IntegrityViolation(
                            f"projection {projection.name} ({mode}) is not a replay of the"
                            f" ledger up to position {until}: {difference}",
                            position=None,
                        )
    finally:
        engine.dispose()
