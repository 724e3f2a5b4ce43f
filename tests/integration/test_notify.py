"""On PostgreSQL a revocation committed by one instance wakes every instance's CRL publisher
through LISTEN/NOTIFY: with an hour-long poll interval, only the notification can explain a
fresh CRL listing the serial within seconds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cryptography import x509
from support.ca_server import (
    free_port,
    init_ca,
    mint_token,
    provisioner_key,
    request_certificate,
    start_ca,
)
from support.postgres import PostgresServer
from support.waiting import wait_until

from ca.config import CRLSettings, load_config, save_config
from ca.home import Home

pytestmark = pytest.mark.postgres


def test_a_revocation_through_one_instance_wakes_the_other_publisher(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.create_database("notify_crl")
    ca = init_ca(tmp_path, database=url)
    home = Home(ca.home)
    config = load_config(home)
    save_config(home.config_file, dataclasses.replace(config, crl=CRLSettings(poll_interval="1h")))
    first, second = start_ca(ca), start_ca(ca, port=free_port())
    try:
        response, _ = request_certificate(first, "notified.internal")
        assert response.status_code == 201
        serial = x509.load_pem_x509_certificate(response.json()["crt"].encode()).serial_number
        key, kid = provisioner_key(ca)
        token = mint_token(key, kid, subject=str(serial), audience=f"{first.url}/1.0/revoke")
        with first.client() as client:
            revoked = client.post(
                "/1.0/revoke", json={"serial": str(serial), "ott": token, "reasonCode": 1}
            )
        assert revoked.status_code == 200, revoked.text

        def listed() -> bool:
            with second.client() as client:
                crl = client.get("/1.0/crl")
            return crl.status_code == 200 and serial in {
                r.serial_number for r in x509.load_der_x509_crl(crl.content)
            }

        wait_until(listed, 30, "a CRL listing the revocation (the publishers were woken)")
    finally:
        first.stop()
        second.stop()
        postgres_server.drop_database("notify_crl")
