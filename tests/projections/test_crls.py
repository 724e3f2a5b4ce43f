"""`crls`: the latest CRL per issuer key, exactly as `crl.published` recorded it."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ledger import EventStore, NewEvent
from projections.crls import crls
from projections.errors import ProjectionConflict
from projections.events import CRLPublished, crl_stream
from projections.runner import Projections

ISSUER_A = "a" * 64
ISSUER_B = "b" * 64


def published(issuer: str, number: int, *, der: bytes | None = None) -> NewEvent:
    return CRLPublished(
        issuer_key_id=issuer,
        number=number,
        this_update=f"2031-03-01T{number:02d}:00:00.000000Z",
        next_update=f"2031-03-02T{number:02d}:00:00.000000Z",
        revoked_through=10 * number,
        entries=number,
        der=base64.b64encode(der or f"crl {issuer[:1]} {number}".encode()).decode(),
    ).to_new_event()


def rows(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        return {
            row.issuer_key_id: dict(row._mapping)
            for row in connection.execute(select(crls).order_by(crls.c.issuer_key_id))
        }


def test_each_issuer_keeps_only_its_latest_crl(store: EventStore, engine: Engine) -> None:
    for number in (1, 2, 3):
        store.append([published(ISSUER_A, number)], expected={crl_stream(ISSUER_A): number - 1})
    (last_b,) = store.append([published(ISSUER_B, 1)], expected={crl_stream(ISSUER_B): 0})
    got = rows(engine)
    assert set(got) == {ISSUER_A, ISSUER_B}
    assert got[ISSUER_A]["number"] == 3
    assert got[ISSUER_A]["der"] == b"crl a 3"
    assert got[ISSUER_A]["revoked_through"] == 30
    assert got[ISSUER_A]["this_update"] == "2031-03-01T03:00:00.000000Z"
    assert got[ISSUER_B]["number"] == 1
    assert got[ISSUER_B]["published_position"] == last_b.position


def test_a_second_crl_under_a_taken_number_is_refused_and_writes_nothing(
    store: EventStore, engine: Engine
) -> None:
    store.append([published(ISSUER_A, 1)], expected={crl_stream(ISSUER_A): 0})
    count = store.count()
    with pytest.raises(ProjectionConflict):
        # A number that is not the stream version: the projection refuses it.
        store.append([published(ISSUER_A, 1)])
    assert store.count() == count
    assert rows(engine)[ISSUER_A]["der"] == b"crl a 1"


def test_a_number_that_skips_the_stream_version_is_refused(store: EventStore) -> None:
    with pytest.raises(ProjectionConflict, match="stream version"):
        store.append([published(ISSUER_A, 5)])


def test_the_rebuilt_projection_equals_the_live_one(store: EventStore, engine: Engine) -> None:
    big = bytes(range(256)) * 4000  # a CRL of about a megabyte survives the round trip
    for number in (1, 2):
        store.append([published(ISSUER_A, number)])
    store.append([published(ISSUER_A, 3, der=big)])
    store.append([published(ISSUER_B, 1)])
    live = rows(engine)
    projections = Projections()
    assert projections.rebuild(store, projections.get("crls")) == store.count()
    assert rows(engine) == live
    assert live[ISSUER_A]["der"] == big
