"""The SSH CA over HTTP, as step's clients speak to it: sign, renew, rekey, revoke, hosts,
roots, config — judged by `ssh-keygen` and by the ledger (refusals append nothing)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_ssh_private_key
from support.ca_server import (
    CAHome,
    RunningCA,
    event_count,
    free_port,
    init_ca,
    ledgerca,
    start_ca,
)
from support.cli import ledger_events
from support.ssh import (
    certificate_line,
    keygen,
    keygen_list,
    needs_ssh_keygen,
    public_blob,
    sign_ssh,
    ssh_token,
)
from support.waiting import wait_until

from ca.client.ssh import sshpop_token
from ca.ssh.certificates import parse_certificate

pytestmark = needs_ssh_keygen


BASTION_CONFIG = """
[[ssh_bastions]]
hosts = ["*.internal.example"]
hostname = "jump.internal.example"
user = "jump"
port = 2222
"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CAHome, RunningCA, RunningCA]]:
    """One CA with its SSH keys set up by `ledgerca ssh init`, served by two instances."""
    ca = init_ca(tmp_path_factory.mktemp("ssh"))
    ledgerca("ssh", "init", "--password-file", str(ca.password_file), home=ca.home)
    ledgerca(
        "provisioner", "add", "short-lived",
        "--password-file", str(ca.provisioner_password_file),
        "--claims", json.dumps({"enableSSHCA": True, "minHostSSHCertDuration": "1s",
                                "maxUserSSHCertDuration": "1h",
                                "defaultUserSSHCertDuration": "1h"}),
        home=ca.home,
    )  # fmt: skip
    ledgerca(
        "provisioner", "add", "adds-users",
        "--password-file", str(ca.provisioner_password_file),
        "--claims", json.dumps({"enableSSHCA": True, "enableSSHAddUser": True}),
        home=ca.home,
    )  # fmt: skip
    with (ca.home / "config" / "ca.toml").open("a") as config:
        config.write(BASTION_CONFIG)
    first, second = start_ca(ca), None
    try:
        second = start_ca(ca, port=free_port())
        yield ca, first, second
    finally:
        first.stop()
        if second is not None:
            second.stop()


def _write(path: Path, line: str) -> Path:
    path.write_text(line + "\n")
    return path


def _hosts(running: RunningCA) -> list[str]:
    with running.client() as client:
        response = client.get("/ssh/hosts")
    assert response.status_code == 200, response.text
    return [h["hostname"] for h in response.json()["hosts"]]


def _sshpop(running: RunningCA, cert: str, key: Path, op: str, subject: str = "") -> str:
    private = load_ssh_private_key(key.read_bytes(), password=None)
    return sshpop_token(
        cert,
        private,
        audience=f"{running.url}/1.0/ssh/{op}#sshpop/sshpop",
        subject=subject or str(parse_certificate(cert).serial),
        now=datetime.now(UTC),
    )


def test_a_user_certificate_says_what_was_requested_as_ssh_keygen_reads_it(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    _, first, _ = pair
    key = keygen(tmp_path, "id_ed25519")
    response = sign_ssh(
        first, key, key_id="alice@example", principals=["alice", "ops"], validBefore="8h"
    )
    cert = _write(tmp_path / "id_ed25519-cert.pub", certificate_line(response))
    shown = keygen_list(cert)
    assert "user certificate" in shown
    assert 'Key ID: "alice@example"' in shown
    principals = shown.split("Principals:")[1].split("Critical Options:")[0].split()
    assert principals == ["alice", "ops"]
    for extension in (
        "permit-X11-forwarding",
        "permit-agent-forwarding",
        "permit-port-forwarding",
        "permit-pty",
        "permit-user-rc",
    ):
        assert extension in shown.split("Extensions:")[1]
    valid = next(line for line in shown.splitlines() if "Valid:" in line).split()
    start, end = (datetime.fromisoformat(valid[i]) for i in (2, 4))
    assert end - start == timedelta(hours=8, minutes=1)  # 8h as requested, backdated 1m
    assert start <= datetime.now(UTC).replace(tzinfo=None) <= end  # keygen_list prints UTC
    parsed = parse_certificate(cert.read_text())
    assert parsed.valid_before - parsed.valid_after == 8 * 3600 + 60
    assert 0 < parsed.serial < 2**64
    with first.client() as client:
        roots = client.get("/1.0/ssh/roots").json()
    signer = parsed.signature_key().public_bytes(*_openssh()).split()[1].decode()  # type: ignore[arg-type]
    assert signer in roots["userKey"] and signer not in roots["hostKey"]


def test_relative_times_count_from_now_as_step_ssh_certificate_sends_them(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    # `step ssh certificate --not-before 10m --not-after 2h` puts both durations in the
    # token and the body; step-ca ends the certificate two hours from now.
    _, first, _ = pair
    key = keygen(tmp_path, "id_ed25519")
    before = int(time.time())
    response = sign_ssh(
        first, key, key_id="alice", principals=["alice"], validAfter="10m", validBefore="2h"
    )
    after = int(time.time()) + 1
    parsed = parse_certificate(certificate_line(response))
    assert before + 600 <= parsed.valid_after <= after + 600
    assert before + 7200 <= parsed.valid_before <= after + 7200


def test_add_user_signs_the_provisioner_certificate_step_ca_signs_beside_the_user_one(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    # `step ssh certificate --add-user alice id` sends the second key as addUserPublicKey.
    ca, first, _ = pair
    key, extra = keygen(tmp_path, "id"), keygen(tmp_path, "id-provisioner")
    before = event_count(ca)
    response = sign_ssh(
        first, key, key_id="alice", principals=["alice"], provisioner="adds-users",
        addUserPublicKey=public_blob(extra),
    )  # fmt: skip
    user = parse_certificate(certificate_line(response))
    cert = _write(tmp_path / "id-provisioner-cert.pub", certificate_line(response, "addUserCrt"))
    shown = keygen_list(cert)
    assert 'Key ID: "alice-provisioner"' in shown
    assert shown.split("Principals:")[1].split("Critical Options:")[0].split() == ["provisioner"]
    assert "force-command sudo useradd -m alice; nc -q0 localhost 22" in shown
    assert shown.split("Extensions:")[1].split() == ["(none)"]
    added = parse_certificate(cert.read_text())
    assert (added.valid_after, added.valid_before) == (user.valid_after, user.valid_before)
    assert added.public_key().public_bytes(*_openssh()).split()[1] == public_blob(extra).encode()  # type: ignore[union-attr]
    issued = [e.data["serial"] for e in ledger_events(ca.home)[-2:] if e.type == "ssh.issued"]
    assert issued == [str(user.serial), str(added.serial)]
    assert event_count(ca) == before + 2


@pytest.mark.parametrize(
    "provisioner, principal, reason",
    [
        ("admin", "alice", "enableSSHAddUser"),  # the provisioner does not allow it
        ("adds-users", "a;reboot", "plain user names"),  # it would run in a shell, with sudo
    ],
)
def test_add_user_is_refused_where_the_provisioner_or_the_principal_does_not_allow_it(
    pair: tuple[CAHome, RunningCA, RunningCA],
    tmp_path: Path,
    provisioner: str,
    principal: str,
    reason: str,
) -> None:
    ca, first, _ = pair
    key, extra = keygen(tmp_path, "id"), keygen(tmp_path, "id-provisioner")
    before = event_count(ca)
    response = sign_ssh(
        first, key, key_id=principal, principals=[principal], provisioner=provisioner,
        addUserPublicKey=public_blob(extra),
    )  # fmt: skip
    assert response.status_code == 403, response.text
    assert reason in response.json()["message"]
    assert event_count(ca) == before


def test_a_host_certificate_gets_no_add_user_certificate_as_in_step_ca(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    _, first, _ = pair
    key, extra = keygen(tmp_path, "host", "ecdsa"), keygen(tmp_path, "extra")
    response = sign_ssh(
        first, key, key_id="h", principals=["h.internal"], cert_type="host",
        provisioner="adds-users", addUserPublicKey=public_blob(extra),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert "addUserCrt" not in response.json()


def test_ssh_bastion_answers_step_ssh_proxycommand_per_host_pattern(
    pair: tuple[CAHome, RunningCA, RunningCA],
) -> None:
    # What `step ssh proxycommand %r %h %p` asks before it connects.
    _, first, second = pair
    jump = {"hostname": "jump.internal.example", "user": "jump", "port": "2222"}
    for running in (first, second):
        with running.client() as client:
            managed = client.post(
                "/1.0/ssh/bastion", json={"user": "alice", "hostname": "web1.internal.example"}
            )
            direct = client.post("/ssh/bastion", json={"user": "alice", "hostname": "github.com"})
            itself = client.post(
                "/1.0/ssh/bastion", json={"user": "jump", "hostname": "jump.internal.example"}
            )
            empty = client.post("/1.0/ssh/bastion", json={"user": "alice"})
        assert managed.status_code == 200, managed.text
        assert managed.json() == {"hostname": "web1.internal.example", "bastion": jump}
        assert direct.json() == {"hostname": "github.com"}
        assert itself.json() == {"hostname": "jump.internal.example"}
        assert empty.status_code == 400


def test_a_host_certificate_gets_the_host_defaults_and_no_extensions(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    _, first, _ = pair
    key = keygen(tmp_path, "ssh_host_ecdsa_key", "ecdsa")
    response = sign_ssh(first, key, key_id="web1", principals=["web1.internal"], cert_type="host")
    cert = _write(tmp_path / "host-cert.pub", certificate_line(response))
    shown = keygen_list(cert)
    assert "host certificate" in shown
    assert shown.split("Extensions:")[1].strip() == "(none)"
    parsed = parse_certificate(cert.read_text())
    assert parsed.valid_before - parsed.valid_after == 30 * 86400 + 60


@pytest.mark.parametrize(
    "change, status, message",
    [
        ({"certType": "admin"}, 400, "unknown certificate type"),
        ({"principals": ["alice,root"]}, 400, "invalid principal"),
        ({"validBefore": "48h"}, 403, "more than the authorized maximum"),
        ({"validBefore": "1m"}, 403, "less than the authorized minimum"),
        ({"publicKey": "bm90IGEga2V5"}, 400, "publicKey"),
        ({"publicKey": ""}, 400, "publicKey"),
        ({"principals": ["alice", "mallory"]}, 403, "not granted by the token"),
        ({"keyID": "someone-else"}, 403, "keyID"),
        ({"ott": "not.a.token"}, 401, "lacked necessary authorization"),
    ],
)
def test_bad_sign_requests_are_refused_with_step_errors_and_append_nothing(
    pair: tuple[CAHome, RunningCA, RunningCA],
    tmp_path: Path,
    change: dict[str, object],
    status: int,
    message: str,
) -> None:
    ca, first, _ = pair
    key = keygen(tmp_path, "id")
    principals = ["alice"] if "principals" not in change or change["principals"] else []
    body: dict[str, object] = {
        "publicKey": public_blob(key),
        "ott": ssh_token(first, key_id="alice", principals=principals),
        "certType": "user",
        "keyID": "alice",
        "principals": principals,
        **change,
    }
    before = event_count(ca)
    with first.client() as client:
        response = client.post("/1.0/ssh/sign", json=body)
    assert response.status_code == status, response.text
    assert response.json()["status"] == status
    assert message in response.json()["message"]
    assert event_count(ca) == before


def test_a_sign_token_is_single_use_across_instances(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    ca, first, second = pair
    key = keygen(tmp_path, "id")
    token = ssh_token(first, key_id="bob", principals=["bob"])
    body = {"publicKey": public_blob(key), "ott": token, "certType": "user"}
    with first.client() as client:
        assert client.post("/1.0/ssh/sign", json=body).status_code == 201
    before = event_count(ca)
    with second.client() as client:
        again = client.post("/ssh/sign", json=body)
    assert again.status_code == 401
    assert event_count(ca) == before


def test_policies_govern_principals_host_by_dns_and_user_by_principal(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    ca, first, second = pair
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"allow": {"dns": ["*.internal"], "principal": ["alice"]}}))
    ledgerca("policy", "set", str(policy), home=ca.home)
    try:
        key = keygen(tmp_path, "id")
        before = event_count(ca)
        refused = sign_ssh(second, key, key_id="db", principals=["db.example"], cert_type="host")
        assert refused.status_code == 403 and "db.example" in refused.json()["message"]
        refused = sign_ssh(first, key, key_id="root", principals=["root"])
        assert refused.status_code == 403 and "root" in refused.json()["message"]
        assert event_count(ca) == before
        assert sign_ssh(first, key, key_id="db", principals=["db.internal"], cert_type="host")
        assert sign_ssh(second, key, key_id="a", principals=["alice"]).status_code == 201
    finally:
        ledgerca("policy", "clear", home=ca.home)


def test_provisioner_claims_override_the_ssh_durations(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    _, first, _ = pair
    key = keygen(tmp_path, "id")
    default = sign_ssh(first, key, key_id="u", principals=["u"], provisioner="short-lived")
    parsed = parse_certificate(certificate_line(default))
    assert parsed.valid_before - parsed.valid_after == 3600 + 60
    too_long = sign_ssh(
        first, key, key_id="u", principals=["u"], provisioner="short-lived", validBefore="2h"
    )
    assert too_long.status_code == 403


def test_host_renew_and_rekey_prove_possession_and_keep_the_certificate_contents(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    ca, first, second = pair
    key = keygen(tmp_path, "host", "ecdsa")
    original = certificate_line(
        sign_ssh(first, key, key_id="h1", principals=["h1.internal", "h1"], cert_type="host")
    )
    with second.client() as client:
        renewed = client.post(
            "/1.0/ssh/renew", json={"ott": _sshpop(second, original, key, "renew")}
        )
    renewed_cert = parse_certificate(certificate_line(renewed))
    old = parse_certificate(original)
    assert renewed_cert.serial != old.serial
    assert renewed_cert.valid_principals == old.valid_principals
    assert renewed_cert.public_key().public_bytes(  # type: ignore[union-attr]
        *_openssh()
    ) == old.public_key().public_bytes(*_openssh())  # type: ignore[union-attr]

    new_key = keygen(tmp_path, "host2", "ed25519")
    body = {"ott": _sshpop(first, original, key, "rekey"), "publicKey": public_blob(new_key)}
    with first.client() as client:
        rekeyed = client.post("/1.0/ssh/rekey", json=body)
    rekeyed_cert = parse_certificate(certificate_line(rekeyed))
    assert rekeyed_cert.valid_principals == old.valid_principals
    assert rekeyed_cert.public_key().public_bytes(*_openssh()).split()[1] == (  # type: ignore[union-attr]
        public_blob(new_key).encode()
    )
    lineage = [e.data for e in ledger_events(ca.home) if e.type == "ssh.issued"]
    assert any(d["renewed_from"] == str(old.serial) for d in lineage)
    assert any(d["rekeyed_from"] == str(old.serial) for d in lineage)


def _openssh() -> tuple[object, object]:
    from cryptography.hazmat.primitives import serialization

    return serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH


def test_sshpop_for_a_revoked_or_user_certificate_is_refused_and_appends_nothing(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    ca, first, second = pair
    key = keygen(tmp_path, "host", "ecdsa")
    host = certificate_line(
        sign_ssh(first, key, key_id="h2", principals=["h2.internal"], cert_type="host")
    )
    user = certificate_line(sign_ssh(first, key, key_id="carol", principals=["carol"]))
    serial = str(parse_certificate(host).serial)
    revoke = {"serial": serial, "ott": ssh_token(first, key_id=serial, principals=[],
                                                 op="ssh/revoke"), "reasonCode": 1}  # fmt: skip
    with first.client() as client:
        assert client.post("/1.0/ssh/revoke", json=revoke).status_code == 200
    before = event_count(ca)
    with second.client() as client:
        for cert, op in ((host, "renew"), (host, "rekey"), (user, "renew")):
            body = {"ott": _sshpop(second, cert, key, op), "publicKey": public_blob(key)}
            refused = client.post(f"/1.0/ssh/{op}", json=body)
            assert refused.status_code == 401, refused.text
            assert set(refused.json()) == {"status", "message"}
        twice = client.post(
            "/ssh/revoke",
            json={
                **revoke,
                "ott": ssh_token(second, key_id=serial, principals=[], op="ssh/revoke"),
            },
        )
    assert twice.status_code == 400
    assert event_count(ca) == before


def test_hosts_reflect_issuance_expiry_and_revocation_identically_on_two_instances(
    pair: tuple[CAHome, RunningCA, RunningCA], tmp_path: Path
) -> None:
    _, first, second = pair
    key = keygen(tmp_path, "host", "ecdsa")
    live = certificate_line(
        sign_ssh(first, key, key_id="live", principals=["live.internal"], cert_type="host")
    )
    brief = sign_ssh(
        second,
        key,
        key_id="brief",
        principals=["brief.internal"],
        cert_type="host",
        provisioner="short-lived",
        validBefore="2s",
    )
    brief_cert = parse_certificate(certificate_line(brief))
    for running in (first, second):
        hosts = _hosts(running)
        assert "live.internal" in hosts
    with first.client() as client:
        check = client.post(
            "/1.0/ssh/check-host", json={"type": "host", "principal": "LIVE.internal"}
        )
    assert check.json() == {"exists": True}

    # Expiry: wait until the clock is past the brief certificate's validBefore.
    wait_until(lambda: time.time() >= brief_cert.valid_before + 1, 30, "the brief one expires")
    # An expired host certificate cannot renew (SSHPOP), and the refusal appends nothing.
    ca = pair[0]
    before = event_count(ca)
    expired = _sshpop(first, certificate_line(brief), key, "renew")
    with first.client() as client:
        refused = client.post("/1.0/ssh/renew", json={"ott": expired})
    assert refused.status_code == 401 and event_count(ca) == before

    serial = str(parse_certificate(live).serial)
    token = ssh_token(second, key_id=serial, principals=[], op="ssh/revoke")
    with second.client() as client:
        assert client.post("/ssh/revoke", json={"serial": serial, "ott": token}).status_code == 200
    (revoked,) = (
        e for e in ledger_events(ca.home) if e.type == "ssh.revoked" and e.data["serial"] == serial
    )
    # The same actor as every other event: request, remote address, provisioner id and token.
    assert revoked.actor["provisioner_id"] == revoked.data["provisioner"]["id"]
    assert revoked.actor["remote_address"] == "127.0.0.1" and revoked.actor["request_id"]
    assert revoked.actor["token_id"] == revoked.data["token_id"]
    assert _hosts(first) == _hosts(second)
    assert "brief.internal" not in _hosts(first) and "live.internal" not in _hosts(first)


def test_config_renders_the_cert_authority_line_and_the_sshd_snippet(
    pair: tuple[CAHome, RunningCA, RunningCA],
) -> None:
    _, first, _ = pair
    with first.client() as client:
        roots = client.get("/ssh/roots").json()
        step = {"StepPath": "/home/a/.step", "StepSSHTemplateVersion": "v2", "User": "a"}
        user = client.post("/1.0/ssh/config", json={"type": "user", "data": step}).json()
        files = {"Certificate": "ssh_host_ecdsa_key-cert.pub", "Key": "ssh_host_ecdsa_key"}
        host = client.post("/ssh/config/host", json={"data": files}).json()
        bad = client.post("/ssh/config", json={"type": "root"})
    contents = {t["name"]: base64.b64decode(t["content"]).decode() for t in user["userTemplates"]}
    (line,) = contents["known_hosts.tpl"].splitlines()
    assert line.startswith("@cert-authority * ") and line.split()[3] == roots["hostKey"][0]
    hosted = {t["name"]: base64.b64decode(t["content"]).decode() for t in host["hostTemplates"]}
    assert roots["userKey"][0] in hosted["ca.tpl"]
    snippet = hosted["sshd_config.tpl"]
    assert snippet.startswith("Match all\n")
    assert "TrustedUserCAKeys" in snippet and "RevokedKeys" in snippet
    assert bad.status_code == 400 and bad.json()["status"] == 400


def test_without_ssh_keys_the_ssh_routes_say_not_implemented(tmp_path: Path) -> None:
    ca = init_ca(tmp_path / "plain")
    running = start_ca(ca)
    try:
        key = keygen(tmp_path, "id")
        before = event_count(ca)
        response = sign_ssh(running, key, key_id="a", principals=["a"])
        assert response.status_code == 501
        assert event_count(ca) == before
        with running.client() as client:
            assert client.get("/ssh/roots").status_code == 404
    finally:
        running.stop()
