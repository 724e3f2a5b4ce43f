"""The checkpointer: a follower of the ledger that signs and records checkpoints.

Every worker of every instance runs one. A checkpoint is due when `every` events were
appended since the last one, or when `interval` passed and anything was appended. The tree
is caught up outside the ledger lock; inside it only the last few leaves are read, the root
signed, and `ledger.checkpoint` appended with the next number expecting the previous one —
so of two instances racing, one records and the other gets a `ConcurrencyConflict` and looks
again, exactly like the CRL publisher. Holding the lock makes `tree_size` = position - 1.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from ca.audit import checkpoints
from ca.audit.checkpoints import Checkpoint
from ca.audit.ledger_key import LedgerKey, active_ledger_key, load_ledger_signer
from ca.audit.tree import shared_tree
from ca.config import CheckpointSettings
from ca.errors import ConfigError
from ca.home import Home
from ca.keys.files import PrivateKey
from ca.keys.pkcs11 import PKCS11Settings
from ledger import ConcurrencyConflict, EventStore, NewEvent, format_time, parse_time
from ledger.reads import first_recorded_at, head_position
from projections import events as ev

log = structlog.get_logger("ledgerca.checkpoint")


def utcnow() -> datetime:
    return datetime.now(UTC)


def due(
    last: Checkpoint | None,
    *,
    head: int,
    now: datetime,
    every: int,
    interval: timedelta,
    started: datetime | None = None,
) -> str | None:
    """Why a checkpoint is needed now, or None. With no checkpoint yet, the ledger's first
    event (`started`) stands in for the last checkpoint."""
    if head == 0:
        return None
    appended = head - (last.position if last is not None else 0)
    if appended <= 0:
        return None
    if appended >= every:
        return f"{appended} events"
    since = parse_time(last.time) if last is not None else started
    if since is not None and now - since >= interval:
        return "interval"
    return None


class Checkpointer:
    """Signs the ledger's Merkle root with the ledger key and records it when due."""

    def __init__(
        self,
        *,
        store: EventStore,
        home: Home,
        password: bytes,
        settings: CheckpointSettings,
        actor: Mapping[str, Any],
        pkcs11: PKCS11Settings | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.pkcs11 = pkcs11
        self.home = home
        self.password = password
        self.settings = settings
        self.actor = dict(actor)
        self.clock = clock
        self.tree = shared_tree(store.engine)
        self._keys: dict[str, PrivateKey] = {}
        self._lock = threading.Lock()

    def _signer(self, key: LedgerKey) -> PrivateKey:
        if key.key_id not in self._keys:
            self._keys[key.key_id] = load_ledger_signer(
                self.home, key, self.password, pkcs11=self.pkcs11
            )
        return self._keys[key.key_id]

    def check(self) -> Checkpoint | None:
        """Record a checkpoint if one is due; return it (None: not due, or another won)."""
        with self.store.engine.connect() as connection:
            head = head_position(connection)
            last = checkpoints.latest(connection)
            started = first_recorded_at(connection) if last is None else None
        reason = due(
            last,
            head=head,
            now=self.clock(),
            every=self.settings.every,
            interval=self.settings.interval_delta,
            started=started,
        )
        if reason is None:
            return None
        return self.record(last, reason=reason)

    def record(self, last: Checkpoint | None, *, reason: str = "requested") -> Checkpoint | None:
        with self._lock:
            with self.store.engine.connect() as connection:
                key = active_ledger_key(connection)
                head = head_position(connection)
            if key is None:
                raise ConfigError(
                    "the ledger has no ledger key: run `ledgerca audit init-key` to create one"
                )
            private = self._signer(key)
            self.tree.catch_up(self.store.engine, head)  # the bulk, outside the lock
            number = (last.number if last is not None else 0) + 1
            try:
                with self.store.transaction() as tx:
                    locked_head = head_position(tx.connection)
                    self.tree.catch_up(tx.connection, locked_head)
                    checkpoint = checkpoints.sign(
                        private,
                        tree_size=self.tree.size,
                        root=self.tree.root(),
                        time=format_time(self.clock()),
                        number=number,
                    )
                    (recorded,) = tx.append(
                        [
                            NewEvent(
                                ev.CHECKPOINT_STREAM,
                                ev.LedgerCheckpoint.TYPE,
                                checkpoint.event_data(),
                            )
                        ],
                        actor={**self.actor, "reason": reason},
                        expected={ev.CHECKPOINT_STREAM: number - 1},
                    )
            except ConcurrencyConflict:
                log.info("checkpoint number taken by another instance", number=number)
                return None
        log.info(
            "checkpoint recorded",
            number=number,
            tree_size=checkpoint.tree_size,
            root_hash=checkpoint.root_hash,
            position=recorded.position,
            reason=reason,
        )
        return Checkpoint(
            checkpoint.tree_size,
            checkpoint.root_hash,
            checkpoint.time,
            checkpoint.key_id,
            checkpoint.signature,
            number,
            recorded.position,
        )
