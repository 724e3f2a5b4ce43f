"""Export the ledger as JSON lines, and import such a file into an empty database.

The export carries every stored field, hashes included, so an import reproduces the ledger
exactly (same positions, same chain) on another database — SQLite to PostgreSQL, or a backup
restored. The import recomputes every hash as it reads and refuses a file that does not
chain; projections are then rebuilt from the imported events by the caller.

`create_partial_copy` is the other way rows leave the ledger: a few of them, unchained, into
a scratch database that a replay fills with projections.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

from sqlalchemy import Connection, Engine, func, select, update

from ledger.canonical import canonical_json
from ledger.database import WRITE, write_lock
from ledger.errors import IntegrityViolation, LedgerError
from ledger.hashing import GENESIS_HASH, hash_parts
from ledger.rows import StoredRow
from ledger.schema import events, ledger_head

Progress = Callable[[int], None]
FIELDS = (
    "position", "event_id", "stream", "version", "type", "schema", "recorded_at",
    "actor", "data", "prev_hash", "hash",
)  # fmt: skip


def export_lines(engine: Engine, *, after: int = 0, batch: int = 5000) -> Iterator[str]:
    """One JSON object per event, in position order, starting after `after`."""
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                select(events).where(events.c.position > after).order_by(events.c.position)
                .limit(batch)
            ).all()  # fmt: skip
        for row in rows:
            record = {name: getattr(row, name) for name in FIELDS}
            # actor and data are stored as canonical JSON text: embed them as JSON values.
            yield (
                json.dumps({k: v for k, v in record.items() if k not in ("actor", "data")})[:-1]
                + f',"actor":{row.actor},"data":{row.data}}}'
            )
        if len(rows) < batch:
            return
        after = int(rows[-1].position)


def _parse(line: str, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise LedgerError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(record, dict) or set(record) != set(FIELDS):
        raise LedgerError(
            f"line {number}: not a ledger event (expected fields {', '.join(FIELDS)})"
        )
    return record


def import_lines(
    engine: Engine, lines: Iterable[str], *, progress: Progress | None = None, batch: int = 2000
) -> int:
    """Load an export into an empty ledger; verify the chain while reading. Returns the count."""
    with write_lock(engine), engine.connect() as connection:
        connection = connection.execution_options(**WRITE)
        with connection.begin():
            head = connection.execute(
                select(ledger_head.c.position).where(ledger_head.c.id == 1).with_for_update()
            ).scalar_one()
            count = connection.execute(select(func.count()).select_from(events)).scalar_one()
            if head or count:
                raise LedgerError(
                    "the target database already holds events: import needs an empty ledger"
                )
            previous, expected, pending = GENESIS_HASH, 1, []
            last_time: str | None = None
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                record = _parse(line, number)
                actor_text, data_text = (
                    canonical_json(record["actor"]),
                    canonical_json(record["data"]),
                )
                if record["position"] != expected or record["prev_hash"] != previous:
                    raise IntegrityViolation(
                        f"line {number}: position {record['position']} does not continue the chain",
                        position=record["position"],
                    )
                recomputed = hash_parts(
                    position=record["position"], event_id=record["event_id"],
                    stream=record["stream"], version=record["version"], type=record["type"],
                    schema=record["schema"], recorded_at=record["recorded_at"],
                    actor_text=actor_text, data_text=data_text, prev_hash=previous,
                )  # fmt: skip
                if recomputed != record["hash"]:
                    raise IntegrityViolation(
                        f"line {number}: position {expected} does not hash to its recorded hash",
                        position=expected,
                    )
                pending.append({**record, "actor": actor_text, "data": data_text})
                previous, expected, last_time = record["hash"], expected + 1, record["recorded_at"]
                if len(pending) >= batch:
                    connection.execute(events.insert(), pending)
                    pending = []
                    if progress is not None:
                        progress(expected - 1)
            if pending:
                connection.execute(events.insert(), pending)
            connection.execute(
                update(ledger_head).where(ledger_head.c.id == 1)
                .values(position=expected - 1, hash=previous, recorded_at=last_time)
            )  # fmt: skip
    return expected - 1


def write_export(engine: Engine, out: IO[str], *, after: int = 0) -> int:
    written = 0
    for line in export_lines(engine, after=after):
        out.write(line + "\n")
        written += 1
    return written


def create_partial_copy(target: Connection, *, head: int, rows: Sequence[StoredRow]) -> None:
    """Create the ledger's tables in an empty scratch database, the head row at `head` and only
    `rows` as events (no chain): what reads of the ledger beside a replay's projections need."""
    ledger_head.metadata.create_all(target, tables=[ledger_head, events])
    target.execute(ledger_head.insert().values(id=1, position=head, hash="", recorded_at=None))
    if rows:
        target.execute(events.insert(), [row._asdict() for row in rows])
