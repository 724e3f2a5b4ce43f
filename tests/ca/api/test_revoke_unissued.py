"""Revoking a serial this CA never issued (issue 15, gap 6), through the API in-process.

step-ca revokes such a serial: it is how operators pre-revoke, or revoke certificates from
before a migration. Here a provisioner's one-time token does it, for X.509 and SSH, and
it is recorded as its own event type (`x509.revoked_unissued`, `ssh.revoked_unissued`);
what mTLS or an SSHPOP token proves is a certificate of ours, so neither can. Every
refusal is step-ca's error body and writes nothing. The CRL, OCSP and KRL answers are in
`tests/integration/test_revoke_unissued.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey
from sqlalchemy import select
from support.asgi import BASE, assert_refused, call
from support.ca_server import (
    PASSWORD,
    CAHome,
    event_count,
    init_ca,
    ledgerca,
    make_csr,
    mint_token,
    provisioner_key,
)
from support.ssh import make_certificate

from ca.authority.authority import Authority
from ca.client.ssh import sshpop_token
from ca.home import Home
from ca.runtime import open_runtime
from ca.ssh.certificates import certificate_line
from ledger import EventStore, RecordedEvent
from projections.used_tokens import used_tokens


@dataclass
class API:
    ca: CAHome
    authority: Authority
    key: ECKey
    kid: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return call(self.authority, method, path, **kwargs)

    def token(self, subject: str, operation: str = "revoke", **kwargs: Any) -> str:
        audience = f"{BASE}/1.0/{operation}"
        return mint_token(self.key, self.kid, subject=subject, audience=audience, **kwargs)

    def revoke(self, serial: str, path: str = "/1.0/revoke", **body: Any) -> httpx.Response:
        operation = path.removeprefix("/1.0/")
        return self.call(
            "POST", path, json={"serial": serial, "ott": self.token(serial, operation), **body}
        )

    def last_event(self) -> RecordedEvent:
        return list(EventStore(self.authority.runtime.engine).read())[-1]

    def spent(self, token_id: str) -> str | None:
        """The stream whose event spent `token_id`, if any did."""
        with self.authority.runtime.engine.connect() as connection:
            return connection.execute(
                select(used_tokens.c.stream).where(used_tokens.c.token_id == token_id)
            ).scalar_one_or_none()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[API]:
    ca = init_ca(tmp_path_factory.mktemp("unissued"))
    ledgerca("ssh", "init", "--password-file", str(ca.password_file), home=ca.home)
    authority = Authority(open_runtime(Home(ca.home)), PASSWORD)
    key, kid = provisioner_key(ca)
    try:
        yield API(ca, authority, key, kid)
    finally:
        authority.close()


def fresh_serial() -> str:
    """A serial as random as the CA's own: one no test has used (the CA is per module)."""
    return str(secrets.randbits(127) | 1)


def refused(api: API, status: int, response_of: Callable[[], httpx.Response]) -> str:
    return assert_refused(api.ca, status, response_of)


# -- X.509 -------------------------------------------------------------------------------


def test_a_serial_this_ca_never_issued_is_revoked_on_a_provisioners_token(api: API) -> None:
    serial = str(0x5EED_0000_0000_0000_0000_0000_0001)
    before = event_count(api.ca)

    response = api.revoke(serial, reasonCode=1, reason="issued before the migration")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}
    assert event_count(api.ca) == before + 1
    event = api.last_event()
    assert (event.type, event.stream, event.version) == (
        "x509.revoked_unissued",
        f"x509/{serial}",
        1,
    )
    assert event.data["serial"] == serial
    assert (event.data["reason_code"], event.data["reason"]) == (1, "issued before the migration")
    assert event.data["provisioner"]["name"] == "admin"
    assert event.actor["provisioner"] == "admin"
    # The token is spent as for any revocation: by the event, atomically with it.
    assert api.spent(event.data["token_id"]) == f"x509/{serial}"


def test_a_serial_revoked_without_being_issued_cannot_be_revoked_again(api: API) -> None:
    serial = "77777777777777777777"
    assert api.revoke(serial).status_code == 200
    message = refused(api, 400, lambda: api.revoke(serial))
    assert f"certificate with serial number {serial} is already revoked" in message
    # Written in hex it is the same serial.
    refused(api, 400, lambda: api.revoke(hex(int(serial))))


def test_a_serial_this_ca_issued_is_still_revoked_as_an_issued_certificate(api: API) -> None:
    csr, _ = make_csr("issued.example")
    sign = {"csr": csr, "ott": api.token("issued.example", "sign")}
    signed = api.call("POST", "/1.0/sign", json=sign).json()
    serial = str(x509.load_pem_x509_certificate(signed["crt"].encode()).serial_number)

    assert api.revoke(serial).status_code == 200

    event = api.last_event()
    assert (event.type, event.version) == ("x509.revoked", 2)


@pytest.mark.parametrize(
    ("token_of", "status"),
    [
        # The token's subject must be the serial (step-ca: 403).
        (lambda api, serial: api.token("1234"), 403),
        # A token for another operation, or expired, or unsigned: 401.
        (lambda api, serial: api.token(serial, "sign"), 401),
        (lambda api, serial: api.token(serial, issued_at=0, not_before=0, lifetime=-3600), 401),
        (lambda api, serial: "not.a.token", 401),
    ],
    ids=["subject-is-not-the-serial", "sign-audience", "expired", "garbage"],
)
def test_a_never_issued_serial_is_not_revoked_without_a_valid_revoke_token(
    api: API, token_of: Any, status: int
) -> None:
    serial = fresh_serial()
    body = {"serial": serial, "ott": token_of(api, serial)}
    refused(api, status, lambda: api.call("POST", "/1.0/revoke", json=body))
    assert api.revoke(serial).status_code == 200  # nothing was recorded by the refusal


def test_a_never_issued_serial_needs_a_token_not_just_a_request(api: API) -> None:
    refused(api, 400, lambda: api.call("POST", "/1.0/revoke", json={"serial": "99"}))


# -- SSH ---------------------------------------------------------------------------------


def test_an_ssh_serial_this_ca_never_issued_is_revoked_on_a_provisioners_token(
    api: API,
) -> None:
    serial = str(2**63 + 12345)
    before = event_count(api.ca)

    response = api.revoke(serial, "/1.0/ssh/revoke", reasonCode=1, reason="old CA")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}
    assert event_count(api.ca) == before + 1
    event = api.last_event()
    assert (event.type, event.stream) == ("ssh.revoked_unissued", f"ssh/{serial}")
    assert (event.data["reason_code"], event.data["reason"]) == (1, "old CA")
    assert event.data["provisioner"]["name"] == "admin"
    assert api.spent(event.data["token_id"]) == f"ssh/{serial}"

    message = refused(api, 400, lambda: api.revoke(serial, "/1.0/ssh/revoke"))
    assert f"ssh certificate with serial number {serial} is already revoked" in message


def test_an_ssh_serial_is_not_revoked_with_a_token_for_another_serial(api: API) -> None:
    body = {"serial": "4243", "ott": api.token("4244", "ssh/revoke")}
    refused(api, 403, lambda: api.call("POST", "/1.0/ssh/revoke", json=body))


def test_an_sshpop_token_cannot_revoke_a_serial_this_ca_never_issued(api: API) -> None:
    # SSHPOP proves possession of a certificate of ours; one from any other CA proves
    # nothing, whatever serial it carries.
    other_ca, host = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    now = datetime.now(UTC)
    certificate = make_certificate(other_ca, host, serial=4245, start=now - timedelta(hours=1))
    token = sshpop_token(
        certificate_line(certificate),
        host,
        audience=f"{BASE}/1.0/ssh/revoke",
        subject="4245",
        now=now,
    )
    body = {"serial": "4245", "ott": token}
    refused(api, 401, lambda: api.call("POST", "/1.0/ssh/revoke", json=body))
