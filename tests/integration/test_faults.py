"""Faults: a database outage under load, and an instance killed with SIGKILL mid-request.

Both run several real `ledgerca serve` processes on one real PostgreSQL. Afterwards the same
three questions are asked: does the ledger verify, do the projections equal a replay from
zero, and is every certificate a client received in the ledger?
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.ca_server import (
    CAHome,
    RunningCA,
    free_port,
    init_ca,
    ledgerca,
    provisioner_key,
    request_certificate,
    start_ca,
)
from support.load import Load, Outcome
from support.postgres import PostgresServer, find_pg_bin
from support.replay import ledger_serials, projection_snapshot
from support.waiting import wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own: the outage test stops it."""
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed; .ci/run installs them")
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


def assert_consistent(ca: CAHome, received: set[str]) -> None:
    """The ledger verifies, replay equals live, and nothing a client holds is unrecorded."""
    assert ca.database is not None
    verified = ledgerca("ledger", "verify", home=ca.home, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    missing = received - ledger_serials(ca.database)
    assert not missing, f"certificates clients received but the ledger lacks: {missing}"
    live = projection_snapshot(ca.database)
    ledgerca("projections", "rebuild", home=ca.home)
    assert projection_snapshot(ca.database) == live


def serials(outcomes: list[Outcome]) -> set[str]:
    return {o.serial for o in outcomes if o.serial is not None}


def test_database_outage_gives_503_then_recovers_without_loss(
    tmp_path: Path, own_postgres: PostgresServer
) -> None:
    ca = init_ca(tmp_path, database=own_postgres.create_database("outage"))
    first = start_ca(ca)
    second = start_ca(ca, port=free_port())
    key, kid = provisioner_key(ca)
    load = Load([first, second], threads=4).start()
    try:
        load.wait_for(lambda o: o.status == 201, count=20)
        own_postgres.halt()
        halted = time.monotonic()
        load.wait_for(lambda o: o.status == 503 and o.at > halted, count=10)

        # While it is down, each instance answers at once with step-ca's error shape.
        for running in (first, second):
            response, _ = request_certificate(running, "down.internal", key=key, kid=kid)
            assert response.status_code == 503
            body = response.json()
            assert body["status"] == 503
            assert "database" in body["message"]
            assert response.headers["Retry-After"] == "2"
            assert "Traceback" not in running.output()

        own_postgres.resume()
        resumed = time.monotonic()
        # Both instances recover by themselves: no restart, no operator.
        for index in (0, 1):
            load.wait_for(lambda o, i=index: o.instance == i and o.status == 201
                          and o.at > resumed, count=5)  # fmt: skip
    finally:
        outcomes = load.stop()
        first.stop()
        second.stop()

    statuses = {o.status for o in outcomes}
    assert statuses <= {201, 503}, [o for o in outcomes if o.status not in (201, 503)][:3]
    assert_consistent(ca, serials(outcomes))


def test_sigkill_mid_request_leaves_no_half_state(
    tmp_path: Path, own_postgres: PostgresServer
) -> None:
    ca = init_ca(tmp_path, database=own_postgres.create_database("sigkill"))
    # The victim runs two workers under a supervisor: killing the supervisor must not leave
    # orphaned workers serving for an instance that no longer exists.
    victim = start_ca(ca, workers=2)
    others = [start_ca(ca, port=free_port()), start_ca(ca, port=free_port())]
    load = Load([victim, *others], threads=6).start()
    try:
        load.wait_for(lambda o: o.instance == 0 and o.status == 201, count=15)
        os.kill(victim.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        victim.process.wait(timeout=10)
        # The other instances keep serving while the victim's workers wind down.
        load.wait_for(lambda o: o.instance != 0 and o.status == 201 and o.at > killed, count=40)
        assert_port_closed(victim)
    finally:
        outcomes = load.stop()
        for running in (victim, *others):
            running.stop()

    survivors = [o for o in outcomes if o.instance != 0]
    assert {o.status for o in survivors} == {201}, [o for o in survivors if o.status != 201][:3]
    victim_after = [o for o in outcomes if o.instance == 0 and o.at > killed + 15]
    assert all(o.status == 0 for o in victim_after), "the killed instance still answered"
    assert_consistent(ca, serials(outcomes))


def assert_port_closed(running: RunningCA, timeout: float = 15) -> None:
    """Wait until nothing accepts connections on the killed instance's port."""

    def closed() -> bool:
        try:
            with running.client(timeout=2) as client:
                client.get("/health")
        except httpx.HTTPError:
            return True
        return False

    wait_until(closed, timeout, f"port {running.port} no longer answers after SIGKILL")
