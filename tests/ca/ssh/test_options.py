"""What a sign request may ask for: token options bind, policies govern principals, claims
bound the validity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.ssh import NOW

from ca.errors import BadRequest, PolicyError
from ca.pki.claims import Claims, validity
from ca.policy import NamePolicy
from ca.ssh.options import SSHOptions, check_principals, merge_options
from ca.ssh.validity import ssh_validity


def test_the_request_may_narrow_the_token_principals_and_inherits_the_rest() -> None:
    token = SSHOptions(cert_type="user", key_id="alice", principals=("alice", "ops"))
    merged = merge_options(SSHOptions(principals=("ops",)), token, subject="sub")
    assert merged == SSHOptions(cert_type="user", key_id="alice", principals=("ops",))
    assert merge_options(SSHOptions(principals=("s",)), SSHOptions(), subject="s").key_id == "s"


def test_a_token_that_leaves_step_ssh_empty_grants_a_user_certificate_for_its_subject() -> None:
    """step-ca's defaults: certType user, principals [sub], keyID sub; never wider."""
    assert merge_options(SSHOptions(), SSHOptions(), subject="alice") == SSHOptions(
        cert_type="user", key_id="alice", principals=("alice",)
    )
    for widened in (
        SSHOptions(principals=("root",)),
        SSHOptions(principals=("alice", "root")),
        SSHOptions(cert_type="host"),
        SSHOptions(key_id="someone-else"),
    ):
        with pytest.raises(PolicyError):
            merge_options(widened, SSHOptions(), subject="alice")


@pytest.mark.parametrize(
    "request_options",
    [
        SSHOptions(principals=("alice,root",)),
        SSHOptions(key_id="alice\x1b[2J"),
        SSHOptions(key_id="alice\ud800"),
    ],
)
def test_principals_with_commas_and_key_ids_with_control_characters_are_refused(
    request_options: SSHOptions,
) -> None:
    token = SSHOptions(principals=("alice,root",), key_id=request_options.key_id)
    with pytest.raises(BadRequest):
        merge_options(request_options, token, subject="alice")


@pytest.mark.parametrize(
    "request_options, error",
    [
        (SSHOptions(cert_type="root", principals=("a",)), BadRequest),
        (SSHOptions(cert_type="host", principals=("a",)), PolicyError),
        (SSHOptions(principals=("a", "b", "c")), PolicyError),
        (SSHOptions(principals=("has space",)), BadRequest),
    ],
)
def test_requests_outside_the_token_are_refused(
    request_options: SSHOptions, error: type[Exception]
) -> None:
    token = SSHOptions(cert_type="user", principals=("a", "b"))
    with pytest.raises(error):
        merge_options(request_options, token, subject="a")


def test_empty_principals_are_refused_because_openssh_would_accept_them_for_anyone() -> None:
    # A token with neither principals nor a subject grants nothing, never "everyone".
    with pytest.raises(BadRequest, match="cannot be empty"):
        merge_options(SSHOptions(), SSHOptions(), subject="")


def test_host_principals_follow_dns_rules_and_user_principals_the_principal_rules() -> None:
    policy = NamePolicy.from_json({"allow": {"dns": ["*.internal"], "ip": ["10.0.0.0/8"]}})
    check_principals("host", ["a.internal", "10.1.2.3"], authority_policy=policy,
                     provisioner_policy=None, provisioner_name="p")  # fmt: skip
    with pytest.raises(PolicyError, match=r"a\.example"):
        check_principals("host", ["a.example"], authority_policy=policy,
                         provisioner_policy=None, provisioner_name="p")  # fmt: skip
    # An X.509 DNS policy does not lock users out...
    check_principals("user", ["root"], authority_policy=policy, provisioner_policy=None,
                     provisioner_name="p")  # fmt: skip
    # ...but principal entries govern them.
    deny_root = NamePolicy.from_json({"deny": {"principal": ["root"]}})
    with pytest.raises(PolicyError, match="root"):
        check_principals("user", ["alice", "root"], authority_policy=None,
                         provisioner_policy=deny_root, provisioner_name="p")  # fmt: skip


@pytest.mark.parametrize(
    "cert_type, default, maximum",
    [
        ("user", timedelta(hours=16), timedelta(hours=24)),
        ("host", timedelta(days=30), timedelta(days=30)),
    ],
)
def test_ssh_validity_uses_the_claims_of_the_certificate_type(
    cert_type: str, default: timedelta, maximum: timedelta
) -> None:
    claims = Claims()
    after, before = ssh_validity(claims, cert_type, now=NOW)  # type: ignore[arg-type]
    assert after == NOW - timedelta(minutes=1) and before == NOW + default
    with pytest.raises(PolicyError, match="maximum"):
        ssh_validity(
            claims, cert_type, now=NOW, valid_before=f"{int(maximum.total_seconds()) + 3600}s"
        )  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="minimum"):
        ssh_validity(claims, cert_type, now=NOW, valid_before="2m")  # type: ignore[arg-type]
    custom = Claims.from_json(
        None, {"maxUserSSHCertDuration": "1h", "defaultUserSSHCertDuration": "30m"}
    )
    if cert_type == "user":
        assert ssh_validity(custom, "user", now=NOW)[1] == NOW + timedelta(minutes=30)


def test_a_relative_valid_before_counts_from_now_as_in_step_ca() -> None:
    # `step ssh certificate --not-before 10m --not-after 2h`: the certificate starts in ten
    # minutes and ends two hours from now, not two hours after it starts.
    after, before = ssh_validity(Claims(), "user", now=NOW, valid_after="10m", valid_before="2h")
    assert (after, before) == (NOW + timedelta(minutes=10), NOW + timedelta(hours=2))
    # X.509 keeps step-ca's other rule: a relative notAfter counts from the notBefore.
    start, end = validity(Claims(), now=NOW, not_before="10m", not_after="2h")
    assert (start, end) == (NOW + timedelta(minutes=10), NOW + timedelta(hours=2, minutes=10))
    with pytest.raises(PolicyError, match="after"):
        ssh_validity(Claims(), "user", now=NOW, valid_after="3h", valid_before="2h")
