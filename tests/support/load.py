"""A bounded background load of certificate requests against one or more running instances.

Each thread keeps one keep-alive connection per instance and takes the instances in turn;
every request is a fresh token and CSR. Outcomes are recorded, never judged here: a test
decides which statuses were acceptable and checks what the clients received against the
ledger afterwards.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
from cryptography import x509

from support.ca_server import RunningCA, make_csr, mint_token, provisioner_key
from support.waiting import wait_until


@dataclass(frozen=True)
class Outcome:
    instance: int
    status: int
    """The HTTP status, or 0 when the connection failed (refused, reset, timed out)."""
    serial: str | None
    """The decimal serial of the certificate received (201 only)."""
    message: str
    at: float


@dataclass
class Load:
    instances: list[RunningCA]
    threads: int = 4
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # Decrypting the provisioner key is slow (PBES2): once, shared by every thread.
        self._key, self._kid = provisioner_key(self.instances[0].ca)

    def start(self) -> Load:
        for number in range(self.threads):
            thread = threading.Thread(target=self._run, args=(number,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=60)
        with self._lock:
            return list(self.outcomes)

    def wait_for(self, predicate: object, *, count: int, timeout: float = 60) -> None:
        """Block until `count` outcomes satisfy `predicate` (a callable on Outcome)."""
        assert callable(predicate)

        def enough() -> bool:
            with self._lock:
                return sum(1 for o in self.outcomes if predicate(o)) >= count

        wait_until(enough, timeout, f"{count} matching outcomes")

    def _run(self, number: int) -> None:
        try:
            self._loop(number)
        except BaseException as exc:  # a broken load must show, not silently thin out
            self._record(-1, (-1, None, f"load thread died: {exc!r}"))
            raise

    def _loop(self, number: int) -> None:
        clients = [running.client(timeout=20) for running in self.instances]
        try:
            turn = number
            while not self._stop.is_set():
                index = turn % len(self.instances)
                turn += 1
                self._record(index, self._request(clients[index], self.instances[index]))
        finally:
            for client in clients:
                client.close()

    def _request(self, client: httpx.Client, running: RunningCA) -> tuple[int, str | None, str]:
        subject = f"load-{time.monotonic_ns()}.internal"
        token = mint_token(
            self._key, self._kid, subject=subject, audience=f"{running.url}/1.0/sign"
        )
        csr, _ = make_csr(subject)
        try:
            response = client.post("/1.0/sign", json={"csr": csr, "ott": token})
        except httpx.HTTPError as exc:
            time.sleep(0.05)  # a dead instance refuses at once: do not spin
            return 0, None, f"{type(exc).__name__}: {exc}"
        if response.status_code != 201:
            return response.status_code, None, response.text
        certificate = x509.load_pem_x509_certificate(response.json()["crt"].encode())
        return 201, str(certificate.serial_number), ""

    def _record(self, index: int, result: tuple[int, str | None, str]) -> None:
        status, serial, message = result
        with self._lock:
            self.outcomes.append(Outcome(index, status, serial, message, time.monotonic()))
