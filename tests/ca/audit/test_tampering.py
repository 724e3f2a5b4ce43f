"""`audit verify` catches every kind of tampering and names where it starts.

The tests tamper behind the triggers' back (dropping them first), as a database operator
with full rights could; the ledger key stays out of the attacker's reach.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, text, update
from support.audit import Ledger

from ca.audit import checkpoints
from ca.audit.checkpoints import Checkpoint
from ca.audit.errors import AuditError
from ca.audit.verify import audit, check_exported
from ca.keys.files import generate_private_key
from ledger import IntegrityViolation
from ledger.hashing import GENESIS_HASH, hash_parts
from ledger.schema import events, ledger_head
from projections import events as ev
from projections.authority_keys import authority_keys
from projections.runner import Projections


def failure(ledger: Ledger, exported: Checkpoint | None = None) -> IntegrityViolation:
    with pytest.raises(IntegrityViolation) as caught:
        audit(ledger.store, exported=exported)
    return caught.value


def rows(ledger: Ledger) -> list[dict[str, Any]]:
    with ledger.engine.connect() as connection:
        return [
            dict(r._mapping) for r in connection.execute(select(events).order_by(events.c.position))
        ]


def rewrite(ledger: Ledger, records: list[dict[str, Any]]) -> None:
    """What an attacker without the ledger key can do: replace the whole table with a chain
    that hashes perfectly, and move the head row to match."""
    previous = GENESIS_HASH
    forged = []
    for position, record in enumerate(records, start=1):
        record = {**record, "position": position, "prev_hash": previous}
        record["hash"] = hash_parts(
            position=position, event_id=record["event_id"], stream=record["stream"],
            version=record["version"], type=record["type"], schema=record["schema"],
            recorded_at=record["recorded_at"], actor_text=record["actor"],
            data_text=record["data"], prev_hash=previous,
        )  # fmt: skip
        previous = record["hash"]
        forged.append(record)
    with ledger.engine.begin() as connection:
        connection.execute(events.delete())
        connection.execute(events.insert(), forged)
        connection.execute(
            update(ledger_head).values(
                position=len(forged), hash=previous, recorded_at=forged[-1]["recorded_at"]
            )
        )
    projections = Projections()
    for projection in projections.all:
        projections.rebuild(ledger.store, projection)


@pytest.fixture
def checkpointed(ledger: Ledger) -> tuple[Ledger, Checkpoint]:
    """12 events then a checkpoint (position 13), then 6 more events and another checkpoint."""
    ledger.fill(10)
    exported = ledger.checkpoint()
    ledger.fill(6, start=10)
    ledger.checkpoint()
    ledger.drop_triggers()
    return ledger, exported


def test_an_untouched_ledger_verifies_with_its_checkpoints_and_projections(
    checkpointed: tuple[Ledger, Checkpoint],
) -> None:
    ledger, exported = checkpointed
    assert exported.tree_size == 12 and exported.position == 13
    report = audit(ledger.store, exported=exported)
    assert report.events == 20
    assert report.checkpoints == 2
    assert "certificates" in report.projections and "activity" in report.projections


def test_an_edited_payload_is_named_by_its_position(
    checkpointed: tuple[Ledger, Checkpoint],
) -> None:
    ledger, exported = checkpointed
    with ledger.engine.begin() as c:
        c.execute(text("UPDATE events SET data = :d WHERE position = 7"), {"d": '{"n":666}'})
    assert failure(ledger, exported).position == 7


def test_a_deleted_tail_is_named_even_when_the_head_row_was_moved_too(
    checkpointed: tuple[Ledger, Checkpoint],
) -> None:
    ledger, exported = checkpointed
    with ledger.engine.begin() as c:
        c.execute(text("DELETE FROM events WHERE position > 17"))
    assert failure(ledger).position == 18
    # The attacker also moves the head row back: the chain alone now looks whole...
    survivors = rows(ledger)
    ledger_cut = survivors[:9]  # ...and cuts below the first checkpoint as well.
    with ledger.engine.begin() as c:
        c.execute(text("DELETE FROM events WHERE position > 9"))
        c.execute(
            update(ledger_head).values(
                position=9, hash=ledger_cut[-1]["hash"], recorded_at=ledger_cut[-1]["recorded_at"]
            )
        )
    Projections().rebuild(ledger.store, Projections().get("activity"))
    audit(ledger.store)  # nothing in the database can tell
    caught = failure(ledger, exported)
    assert caught.position == 10
    assert "tail was deleted" in str(caught)


def test_two_swapped_events_are_named(checkpointed: tuple[Ledger, Checkpoint]) -> None:
    ledger, exported = checkpointed
    with ledger.engine.begin() as c:
        c.execute(text("UPDATE events SET position = -1 WHERE position = 5"))
        c.execute(text("UPDATE events SET position = 5 WHERE position = 6"))
        c.execute(text("UPDATE events SET position = 6 WHERE position = -1"))
    assert failure(ledger, exported).position == 5


def test_a_chain_recomputed_over_its_checkpoints_fails_at_the_first_checkpoint(
    checkpointed: tuple[Ledger, Checkpoint],
) -> None:
    ledger, _exported = checkpointed
    records = rows(ledger)
    records[4]["data"] = '{"n":999}'
    rewrite(ledger, records)
    caught = failure(ledger)
    assert caught.position == 13
    assert "rewritten" in str(caught)


def test_a_chain_recomputed_without_the_ledger_key_is_caught_by_the_exported_checkpoint(
    checkpointed: tuple[Ledger, Checkpoint],
) -> None:
    ledger, exported = checkpointed
    records = [r for r in rows(ledger) if r["type"] != ev.LedgerCheckpoint.TYPE]
    records[4]["data"] = '{"n":999}'
    rewrite(ledger, records)
    audit(ledger.store)  # a perfect chain, and no checkpoint left inside to contradict it
    caught = failure(ledger, exported)
    assert caught.position == exported.tree_size
    assert "rewritten" in str(caught)


def test_a_forged_checkpoint_signed_by_another_key_is_caught(
    checkpointed: tuple[Ledger, Checkpoint],
) -> None:
    ledger, exported = checkpointed
    intruder = generate_private_key("EC")
    records = rows(ledger)
    data = json.loads(records[12]["data"])
    forged = checkpoints.sign(
        intruder, tree_size=12, root=bytes.fromhex(data["root_hash"]), time=data["time"]
    )
    records[12]["data"] = json.dumps(
        {**forged.event_data(), "number": 1}, separators=(",", ":"), sort_keys=True
    )
    rewrite(ledger, records)
    caught = failure(ledger)
    assert caught.position == 13
    assert "never activated" in str(caught)
    # And an exported checkpoint signed by another key is refused before anything runs.
    with pytest.raises(AuditError, match="not a ledger key"):
        check_exported(forged, ledger.engine, None, what="checkpoint f.json")
    with pytest.raises(AuditError, match="signed by key"):
        check_exported(exported, ledger.engine, intruder.public_key(), what="checkpoint f.json")


def test_a_projection_that_differs_from_a_replay_is_named(
    checkpointed: tuple[Ledger, Checkpoint],
) -> None:
    ledger, exported = checkpointed
    with ledger.engine.begin() as c:
        c.execute(update(authority_keys).values(active=False))
    caught = failure(ledger, exported)
    assert "projection authority_keys" in str(caught) and "active" in str(caught)
