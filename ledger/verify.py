"""Verification recomputes; it never trusts a stored hash, a trigger or the head row."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine, func, select

from ledger.errors import IntegrityViolation
from ledger.hashing import GENESIS_HASH, hash_parts
from ledger.rows import StoredRow, rows_between
from ledger.schema import events, ledger_head

Progress = Callable[[int, int], None]
"""Called with (positions checked, positions to check)."""

Visit = Callable[[StoredRow], None]
"""Called with each row once its hash and link verified; may raise IntegrityViolation."""


@dataclass(frozen=True)
class Verified:
    events: int
    head_hash: str


PARALLEL_FROM = 200_000
"""Ledgers at least this long are verified by several processes when the machine has cores
to spare (and no visitor needs the events in order)."""


@dataclass(frozen=True)
class _Span:
    """What one contiguous range of stored rows says, for the caller to link to its
    neighbours: the first row's position and `prev_hash`, the last row's position and hash."""

    count: int
    first_position: int
    first_prev: str
    last_position: int
    last_hash: str
    failure: IntegrityViolation | None = None
    """The range's own first problem (then `last_*` are unknown); only from `keep`."""


def verify_chain(
    engine: Engine,
    *,
    progress: Progress | None = None,
    batch: int = 5000,
    visit: Visit | None = None,
    workers: int | None = None,
    chunk: int | None = None,
) -> Verified:
    """Walk every event in position order and recompute the chain.

    Raises IntegrityViolation naming the first bad position: a gap (a deleted row), a
    `prev_hash` that does not link, a hash that does not match its record (an edited row),
    or a head row that disagrees with the last event (a deleted tail).

    Without a visitor, a long ledger is split into position ranges checked by `workers`
    processes at once (default: one per core from PARALLEL_FROM events); each range is
    recomputed whole and the ranges are linked here, so the verdict and the position named
    are those of a single walk.
    """
    with engine.connect() as connection:
        total = int(connection.execute(select(func.count()).select_from(events)).scalar_one())
        head = connection.execute(
            select(ledger_head.c.position, ledger_head.c.hash).where(ledger_head.c.id == 1)
        ).one_or_none()
        top = int(connection.execute(select(func.max(events.c.position))).scalar() or 0)
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if total >= PARALLEL_FROM else 1
    database = engine.url.database
    in_memory = engine.dialect.name == "sqlite" and database in (None, "", ":memory:")
    if visit is not None or in_memory:
        workers = 1
    if workers <= 1:
        spans = [_walk(engine, 0, top, batch, visit, progress, total)]
    else:
        spans = _walk_in_parallel(engine, top, workers, chunk, batch, progress, total)
    expected_position = 1
    previous = GENESIS_HASH
    checked = 0
    for span in spans:
        if span.count == 0:
            continue
        if span.first_position != expected_position:
            raise IntegrityViolation(
                f"position {expected_position} is missing (next stored is {span.first_position}):"
                " an event was deleted",
                position=expected_position,
            )
        if span.first_prev != previous:
            raise _unlinked(span.first_position)
        expected_position = span.last_position + 1
        previous = span.last_hash
        checked += span.count
    last = expected_position - 1
    if head is not None and (int(head.position) != last or (last and head.hash != previous)):
        if int(head.position) > last:
            raise IntegrityViolation(
                f"position {last + 1} is missing: the head says {int(head.position)} events"
                f" but the table ends at {last} (the tail was deleted)",
                position=last + 1,
            )
        raise IntegrityViolation(
            f"the head row (position {int(head.position)}) disagrees with the last event {last}",
            position=last,
        )
    return Verified(checked, previous)


def _unlinked(position: int) -> IntegrityViolation:
    return IntegrityViolation(
        f"position {position}: prev_hash does not link to position {position - 1}",
        position=position,
    )


def _walk(
    engine: Engine,
    after: int,
    until: int,
    batch: int,
    visit: Visit | None = None,
    progress: Progress | None = None,
    total: int = 0,
    keep: bool = False,
) -> _Span:
    """Recompute every row with `after < position <= until`; check that they are dense and
    linked to each other. How the first row links to what precedes it is the caller's.

    A problem is raised, or with `keep` returned in the span, so that the caller still
    learns how the range begins."""
    count = 0
    first_position = 0
    first_prev = ""
    expected_position = 0
    previous = ""
    try:
        while after < until:
            with engine.connect() as connection:
                rows = rows_between(connection, after, until, batch)
            if not rows:
                break
            for row in rows:
                position = int(row.position)
                if not first_position:
                    first_position, first_prev = position, row.prev_hash
                else:
                    if position != expected_position:
                        raise IntegrityViolation(
                            f"position {expected_position} is missing"
                            f" (next stored is {position}): an event was deleted",
                            position=expected_position,
                        )
                    if row.prev_hash != previous:
                        raise _unlinked(position)
                _check_hash(row, position)
                if visit is not None:
                    visit(row)
                previous = row.hash
                expected_position = position + 1
                count += 1
            after = int(rows[-1].position)
            if progress is not None:
                progress(count, total)
    except IntegrityViolation as exc:
        if not keep:
            raise
        return _Span(count, first_position, first_prev, 0, "", exc)
    return _Span(count, first_position, first_prev, expected_position - 1, previous)


def _check_hash(row: StoredRow, position: int) -> None:
    try:
        recomputed = hash_parts(
            position=position,
            event_id=row.event_id,
            stream=row.stream,
            version=int(row.version),
            type=row.type,
            schema=int(row.schema),
            recorded_at=row.recorded_at,
            actor_text=row.actor,
            data_text=row.data,
            prev_hash=row.prev_hash,
        )
    except (ValueError, TypeError) as exc:
        raise IntegrityViolation(
            f"position {position}: the stored record cannot be read ({exc})",
            position=position,
        ) from exc
    if recomputed != row.hash:
        raise IntegrityViolation(
            f"position {position}: hash mismatch: the event was modified", position=position
        )


def _walk_in_parallel(
    engine: Engine,
    top: int,
    workers: int,
    chunk: int | None,
    batch: int,
    progress: Progress | None,
    total: int,
) -> list[_Span]:
    size = chunk or max(batch, -(-top // (workers * 4)))
    ranges = [(start, min(start + size, top)) for start in range(0, top, size)]
    # The password travels to the workers over their pipe, never in argv or the environment.
    url = engine.url.render_as_string(hide_password=False)
    spans: list[_Span] = []
    done = 0
    # Spawned, not forked: a server process has threads a fork would copy mid-flight.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for span in pool.map(_walk_range, [(url, a, b, batch) for a, b in ranges]):
            spans.append(span)
            done += span.count
            if progress is not None:
                progress(done, total)
    failures = [span.failure for span in spans if span.failure is not None]
    if failures:
        # What one walk would report: the earliest problem, inside a range or between two.
        raise min([*failures, *_breaks_between(spans)], key=lambda exc: exc.position or 0)
    return spans


def _breaks_between(spans: list[_Span]) -> list[IntegrityViolation]:
    """Gaps and bad links where one range meets the next. A range that failed has an unknown
    end: what follows it is not compared with it (its own failure comes first anyway)."""
    found: list[IntegrityViolation] = []
    expected_position: int | None = 1
    previous: str | None = GENESIS_HASH
    for span in spans:
        if not span.first_position:
            continue
        if expected_position is not None and span.first_position != expected_position:
            found.append(
                IntegrityViolation(
                    f"position {expected_position} is missing"
                    f" (next stored is {span.first_position}): an event was deleted",
                    position=expected_position,
                )
            )
        elif previous is not None and span.first_prev != previous:
            found.append(_unlinked(span.first_position))
        if span.failure is not None:
            expected_position = previous = None
        else:
            expected_position = span.last_position + 1
            previous = span.last_hash
    return found


def _walk_range(job: tuple[str, int, int, int]) -> _Span:
    from ledger.database import create_engine

    url, after, until, batch = job
    engine = create_engine(url)
    try:
        return _walk(engine, after, until, batch, keep=True)
    finally:
        engine.dispose()
