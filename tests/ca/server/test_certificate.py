"""When the CA's own TLS certificate is renewed, decided on an injected clock.

`ServerCertificate` and `ServerCertificateRenewal` run here in-process on a real CA (its
authority signs and records), with a clock the test moves: the renewal is due when a third of
the certificate's lifetime is left, not a moment before; the renewed pair is what a live TLS
context serves from then on; and of several workers on one home only one renews. The real
`ledgerca serve` processes doing it are tests/integration/test_server_certificate.py.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from support.ca_server import PASSWORD, CAHome, init_ca

from ca.authority.authority import Authority
from ca.config import TLSSettings
from ca.home import Home
from ca.runtime import open_runtime
from ca.server.certificate import ServerCertificate
from ca.server.tls import server_context
from ca.server.wiring import ServerCertificateRenewal
from projections import events as ev

DNS = ("localhost", "127.0.0.1")
BACKDATE = timedelta(minutes=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ca(tmp_path: Path) -> CAHome:
    return init_ca(tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def authority(ca: CAHome, clock: Clock) -> Iterator[Authority]:
    authority = Authority(open_runtime(Home(ca.home)), PASSWORD, clock=clock)
    yield authority
    authority.close()


def server_certificate(ca: CAHome, authority: Authority, clock: Clock) -> ServerCertificate:
    return ServerCertificate(
        Home(ca.home), authority, DNS, PASSWORD, timedelta(hours=24), clock=clock
    )


def served_serial(context: ssl.SSLContext) -> int:
    """The serial of the certificate `context` presents in a TLS handshake (in memory). The
    client does not verify it: the test's clock, not the real one, says it is valid."""
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(to_client, to_server, server_hostname="localhost")
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = context.wrap_bio(server_in, server_out, server_side=True)
    done: set[ssl.SSLObject] = set()
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
                done.add(side)
        server_in.write(to_server.read())
        to_client.write(server_out.read())
        if len(done) == 2:
            break
    assert len(done) == 2, "no TLS handshake between the contexts"
    der = client.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def recorded_server_certificates(authority: Authority) -> list[int]:
    return [
        int(event.data["serial"])
        for event in authority.store.read(types=[ev.X509Issued.TYPE])
        if event.data["provisioner"] is None
    ]


def test_renewal_is_due_when_a_third_of_the_lifetime_is_left_and_not_before(
    ca: CAHome, authority: Authority, clock: Clock
) -> None:
    server_cert = server_certificate(ca, authority, clock)
    assert server_cert.ensure()  # none yet: issued
    first = server_cert.current()
    assert first is not None
    assert first.not_valid_before_utc == clock.now - BACKDATE
    assert first.not_valid_after_utc == clock.now + timedelta(hours=24)
    due = first.not_valid_after_utc - (timedelta(hours=24) + BACKDATE) / 3
    assert server_cert.renew_at(first) == due

    clock.now = due - timedelta(seconds=1)
    assert not server_cert.ensure()
    assert server_cert.current() == first
    clock.now = due
    assert server_cert.ensure()
    second = server_cert.current()
    assert second is not None and second.serial_number != first.serial_number
    assert second.not_valid_before_utc == due - BACKDATE
    assert recorded_server_certificates(authority) == [first.serial_number, second.serial_number]


def test_the_renewal_job_waits_until_due_then_loads_the_new_pair_into_the_live_context(
    ca: CAHome, authority: Authority, clock: Clock
) -> None:
    server_cert = server_certificate(ca, authority, clock)
    server_cert.ensure()
    first = server_cert.current()
    assert first is not None
    context = server_context(
        TLSSettings(),
        cert_file=server_cert.cert_file,
        key_file=server_cert.key_file,
        client_ca_file=ca.root,
        password=PASSWORD,
    )
    renewal = ServerCertificateRenewal(server_cert, lambda: context)
    assert served_serial(context) == first.serial_number

    # The next check is due at the renewal time, at most a minute away, at least a second.
    assert renewal.interval() == 60.0
    clock.now = server_cert.renew_at(first) - timedelta(seconds=30)
    assert renewal.interval() == 30.0
    renewal.check()
    assert served_serial(context) == first.serial_number

    clock.now += timedelta(seconds=30)
    assert renewal.interval() == 1.0
    renewal.check()
    renewed = server_cert.current()
    assert renewed is not None and renewed.serial_number != first.serial_number
    assert served_serial(context) == renewed.serial_number
    assert renewal.interval() == 60.0


def test_of_two_workers_on_one_home_only_one_renews(
    ca: CAHome, authority: Authority, clock: Clock
) -> None:
    workers = [server_certificate(ca, authority, clock) for _ in range(2)]
    assert [worker.ensure() for worker in workers] == [True, False]
    first = workers[0].current()
    assert first is not None
    clock.now = workers[0].renew_at(first)
    assert [worker.ensure() for worker in reversed(workers)] == [True, False]
    assert len(recorded_server_certificates(authority)) == 2
    assert workers[0].current() == workers[1].current() != first
