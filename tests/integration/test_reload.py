"""SIGHUP reloads the instance-local config — TLS versions and suites, log level — into the
running workers, with no restart: requests in flight and open keep-alive connections carry
on, the next handshake sees the new settings, and a broken file changes nothing."""

from __future__ import annotations

import dataclasses
import signal
import ssl
from collections.abc import Iterator

import httpx
import pytest
from support.ca_server import CAHome, RunningCA, init_ca, log_records, start_ca
from support.load import Load
from support.waiting import wait_until

from ca.config import TLSSettings, load_config, save_config
from ca.home import Home

WORKERS = 2


@pytest.fixture
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA]]:
    ca = init_ca(tmp_path_factory.mktemp("reload"))
    server = start_ca(ca, workers=WORKERS)
    try:
        wait_for_log(server, "worker ready", WORKERS)
        yield ca, server
    finally:
        server.stop()


def handshake(server: RunningCA, version: ssl.TLSVersion) -> bool:
    context = ssl.create_default_context(cafile=str(server.ca.root))
    context.minimum_version = context.maximum_version = version
    try:
        with httpx.Client(base_url=server.url, verify=context, timeout=10) as client:
            return client.get("/health").status_code == 200
    except httpx.ConnectError:
        return False


def wait_for_log(server: RunningCA, event: str, count: int, timeout: float = 30) -> None:
    try:
        wait_until(
            lambda: sum(r.get("event") == event for r in log_records(server)) >= count,
            timeout,
            f"{count} {event!r} log lines",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}:\n{server.output()[-3000:]}") from None


def test_sighup_applies_new_tls_settings_without_failing_requests(
    running: tuple[CAHome, RunningCA],
) -> None:
    ca, server = running
    assert handshake(server, ssl.TLSVersion.TLSv1_3)
    home = Home(ca.home)
    config = load_config(home)
    save_config(
        home.config_file,
        dataclasses.replace(config, log_level="debug", tls=TLSSettings(max_version="1.2")),
    )
    with server.client() as kept_alive:
        assert kept_alive.get("/health").status_code == 200
        load = Load([server], threads=3).start()
        try:
            load.wait_for(lambda o: o.status == 201, count=5)
            server.process.send_signal(signal.SIGHUP)
            wait_for_log(server, "configuration reloaded", WORKERS)
            load.wait_for(lambda o: o.status == 201, count=15)
        finally:
            outcomes = load.stop()
        # The connection opened before the reload is still served.
        assert kept_alive.get("/health").status_code == 200
    assert {o.status for o in outcomes} == {201}, [o for o in outcomes if o.status != 201][:3]
    assert server.process.poll() is None
    assert not handshake(server, ssl.TLSVersion.TLSv1_3)
    assert handshake(server, ssl.TLSVersion.TLSv1_2)


def test_a_broken_config_is_refused_on_reload_and_the_server_keeps_its_settings(
    running: tuple[CAHome, RunningCA],
) -> None:
    ca, server = running
    home = Home(ca.home)
    original = home.config_file.read_text()
    home.config_file.write_text(original.replace('min_version = "1.2"', 'min_version = "1.0"'))
    assert 'min_version = "1.0"' in home.config_file.read_text()
    server.process.send_signal(signal.SIGHUP)
    wait_for_log(server, "reload refused: the running configuration stays", WORKERS)
    assert server.process.poll() is None
    assert handshake(server, ssl.TLSVersion.TLSv1_3)
    assert handshake(server, ssl.TLSVersion.TLSv1_2)
