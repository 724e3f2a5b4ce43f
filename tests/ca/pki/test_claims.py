"""Claims and the validity window of a leaf, following step-ca's rules and messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ca.errors import BadRequest, PolicyError
from ca.pki.claims import Claims, validity

# Sub-second on purpose: validity windows are whole seconds.
NOW = datetime(2026, 3, 1, 12, 0, 0, 750_000, tzinfo=UTC)
NOW_S = NOW.replace(microsecond=0)
DEFAULT = Claims()


# --- claims ---------------------------------------------------------------------------


def test_defaults_are_step_cas() -> None:
    claims = Claims.from_json(None, None)
    assert claims == DEFAULT
    assert (claims.min_tls_duration, claims.default_tls_duration, claims.max_tls_duration) == (
        timedelta(minutes=5),
        timedelta(hours=24),
        timedelta(hours=24),
    )
    assert claims.backdate == timedelta(minutes=1)
    assert not (
        claims.disable_renewal
        or claims.allow_renewal_after_expiry
        or claims.disable_smallstep_extensions
    )
    assert (
        claims.min_user_ssh_duration,
        claims.default_user_ssh_duration,
        claims.max_user_ssh_duration,
    ) == (timedelta(minutes=5), timedelta(hours=16), timedelta(hours=24))
    assert (
        claims.min_host_ssh_duration,
        claims.default_host_ssh_duration,
        claims.max_host_ssh_duration,
    ) == (timedelta(minutes=5), timedelta(days=30), timedelta(days=30))


def test_provisioner_claims_override_global_claims_field_by_field() -> None:
    claims = Claims.from_json(
        {"maxTLSCertDuration": "168h", "defaultTLSCertDuration": "48h", "disableRenewal": True},
        {"defaultTLSCertDuration": "1h", "disableRenewal": False, "allowRenewalAfterExpiry": True},
    )
    assert claims.max_tls_duration == timedelta(hours=168)  # from global
    assert claims.default_tls_duration == timedelta(hours=1)  # provisioner wins
    assert claims.disable_renewal is False
    assert claims.allow_renewal_after_expiry is True


def test_claims_read_every_step_ca_name() -> None:
    claims = Claims.from_json(
        None,
        {
            "minTLSCertDuration": "1m",
            "maxTLSCertDuration": "2h",
            "defaultTLSCertDuration": "1h",
            "disableRenewal": True,
            "allowRenewalAfterExpiry": True,
            "disableSmallstepExtensions": True,
            "enableSSHCA": True,
            "minUserSSHCertDuration": "1m",
            "maxUserSSHCertDuration": "3h",
            "defaultUserSSHCertDuration": "2h",
            "minHostSSHCertDuration": "1m",
            "maxHostSSHCertDuration": "5h",
            "defaultHostSSHCertDuration": "4h",
        },
    )
    assert claims == Claims(
        min_tls_duration=timedelta(minutes=1),
        max_tls_duration=timedelta(hours=2),
        default_tls_duration=timedelta(hours=1),
        disable_renewal=True,
        allow_renewal_after_expiry=True,
        disable_smallstep_extensions=True,
        enable_ssh_ca=True,
        min_user_ssh_duration=timedelta(minutes=1),
        max_user_ssh_duration=timedelta(hours=3),
        default_user_ssh_duration=timedelta(hours=2),
        min_host_ssh_duration=timedelta(minutes=1),
        max_host_ssh_duration=timedelta(hours=5),
        default_host_ssh_duration=timedelta(hours=4),
    )


def test_a_duration_claim_may_be_integer_nanoseconds_and_null_means_unset() -> None:
    claims = Claims.from_json(
        {"maxTLSCertDuration": "48h"},
        {"minTLSCertDuration": 60_000_000_000, "maxTLSCertDuration": None},
    )
    assert claims.min_tls_duration == timedelta(minutes=1)
    assert claims.max_tls_duration == timedelta(hours=48)


@pytest.mark.parametrize(
    ("global_claims", "provisioner_claims", "message"),
    [
        (
            None,
            {"maxTLSCertDuration": "1h"},
            r"provisioner claims: defaultTLSCertDuration \(24h0m0s\) must not be greater than "
            r"maxTLSCertDuration \(1h0m0s\)",
        ),
        (
            {"minTLSCertDuration": "48h"},
            None,
            r"authority.claims: minTLSCertDuration \(48h0m0s\) must not be greater than "
            r"defaultTLSCertDuration \(24h0m0s\)",
        ),
        (
            None,
            {"defaultUserSSHCertDuration": "25h"},
            r"defaultUserSSHCertDuration \(25h0m0s\) must not be greater than "
            r"maxUserSSHCertDuration \(24h0m0s\)",
        ),
        (None, {"minTLSCertDuration": "0s"}, "minTLSCertDuration must be greater than 0"),
        (None, {"maxTLSCertDuration": "-1h"}, "maxTLSCertDuration must be greater than 0"),
        (None, {"maxTLSCertDuration": "1 day"}, "maxTLSCertDuration: invalid duration '1 day'"),
        (None, {"maxTLSCertDuration": True}, "maxTLSCertDuration must be a duration"),
        (None, {"disableRenewal": "yes"}, "disableRenewal must be true or false"),
        (None, {"maxTlsCertDuration": "1h"}, "unknown claim 'maxTlsCertDuration'"),
        (None, ["maxTLSCertDuration"], "provisioner claims must be a JSON object"),
    ],
)
def test_invalid_claims_are_refused_with_a_clear_message(
    global_claims: Any, provisioner_claims: Any, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        Claims.from_json(global_claims, provisioner_claims)


def test_a_bad_global_block_is_reported_even_if_a_provisioner_fixes_it() -> None:
    with pytest.raises(BadRequest, match=r"^authority.claims: "):
        Claims.from_json({"maxTLSCertDuration": "1h"}, {"defaultTLSCertDuration": "1h"})


# --- validity -------------------------------------------------------------------------


def test_a_default_certificate_is_valid_from_a_minute_ago_for_24_hours() -> None:
    assert validity(DEFAULT, now=NOW) == (
        NOW_S - timedelta(minutes=1),
        NOW_S + timedelta(hours=24),
    )


def test_validity_is_whole_seconds_in_utc() -> None:
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    not_before, not_after = validity(DEFAULT, now=paris, not_after="1h0m0.9s")
    assert not_before.tzinfo == UTC and not_after.tzinfo == UTC
    assert (not_before, not_after) == (NOW_S - timedelta(minutes=1), NOW_S + timedelta(hours=1))


def test_more_than_the_maximum_is_refused_with_step_cas_message() -> None:
    with pytest.raises(PolicyError) as refused:
        validity(DEFAULT, now=NOW, not_after="48h")
    assert refused.value.message == (
        "requested duration of 48h0m0s is more than the authorized maximum certificate "
        "duration of 24h0m0s"
    )


def test_less_than_the_minimum_is_refused_with_step_cas_message() -> None:
    with pytest.raises(PolicyError) as refused:
        validity(DEFAULT, now=NOW, not_before="2026-03-01T13:00:00Z", not_after="4m")
    assert refused.value.message == (
        "requested duration of 4m0s is less than the authorized minimum certificate "
        "duration of 5m0s"
    )
    with pytest.raises(PolicyError, match=r"requested duration of 3m0s is less than"):
        validity(DEFAULT, now=NOW, not_after="3m")


def test_the_backdate_counts_toward_the_minimum_as_in_step_ca() -> None:
    # step-ca checks the certificate's span: 4m requested + 1m backdate = the 5m minimum.
    assert validity(DEFAULT, now=NOW, not_after="4m") == (
        NOW_S - timedelta(minutes=1),
        NOW_S + timedelta(minutes=4),
    )


def test_not_after_is_relative_to_a_requested_not_before() -> None:
    assert validity(DEFAULT, now=NOW, not_before="2026-03-01T13:00:00Z", not_after="1h") == (
        datetime(2026, 3, 1, 13, tzinfo=UTC),
        datetime(2026, 3, 1, 14, tzinfo=UTC),
    )
    assert validity(DEFAULT, now=NOW, not_before="2h", not_after="30m") == (
        NOW_S + timedelta(hours=2),
        NOW_S + timedelta(hours=2, minutes=30),
    )


def test_a_requested_not_before_is_not_backdated_and_defaults_apply_from_it() -> None:
    assert validity(DEFAULT, now=NOW, not_before="-10m") == (
        NOW_S - timedelta(minutes=10),
        NOW_S + timedelta(hours=23, minutes=50),
    )


def test_not_after_without_not_before_is_relative_to_now_not_to_the_backdated_start() -> None:
    assert validity(DEFAULT, now=NOW, not_after="1h") == (
        NOW_S - timedelta(minutes=1),
        NOW_S + timedelta(hours=1),
    )


def test_an_absolute_not_after_is_taken_as_given() -> None:
    assert validity(DEFAULT, now=NOW, not_after="2026-03-01T18:30:00.9Z") == (
        NOW_S - timedelta(minutes=1),
        datetime(2026, 3, 1, 18, 30, tzinfo=UTC),
    )


def test_the_maximum_tolerates_the_backdate() -> None:
    # Not backdated, so 24h + 1m is within "max + backdate" (step-ca's own tolerance)...
    start = "2026-03-01T13:00:00Z"
    not_before, not_after = validity(DEFAULT, now=NOW, not_before=start, not_after="24h1m")
    assert not_after - not_before == timedelta(hours=24, minutes=1)
    # ...and one second more is not.
    with pytest.raises(PolicyError, match=r"requested duration of 24h1m1s is more than"):
        validity(DEFAULT, now=NOW, not_before=start, not_after="24h1m1s")


def test_a_zero_duration_counts_as_unset_as_in_step_ca() -> None:
    assert validity(DEFAULT, now=NOW, not_before="0s", not_after="0s") == validity(DEFAULT, now=NOW)


def test_the_provisioner_default_and_maximum_apply() -> None:
    claims = Claims.from_json(None, {"defaultTLSCertDuration": "1h", "maxTLSCertDuration": "2h"})
    assert validity(claims, now=NOW)[1] == NOW_S + timedelta(hours=1)
    with pytest.raises(PolicyError, match=r"maximum certificate duration of 2h0m0s"):
        validity(claims, now=NOW, not_after="3h")


def test_not_after_in_the_past_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"notAfter cannot be in the past"):
        validity(DEFAULT, now=NOW, not_after="-5m")
    with pytest.raises(PolicyError, match=r"notAfter cannot be in the past"):
        validity(DEFAULT, now=NOW, not_after="2026-03-01T11:00:00Z")


def test_not_after_at_or_before_not_before_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"notAfter must be after notBefore"):
        validity(
            DEFAULT, now=NOW, not_before="2026-03-01T15:00:00Z", not_after="2026-03-01T14:00:00Z"
        )
    with pytest.raises(PolicyError, match=r"notAfter must be after notBefore"):
        validity(
            DEFAULT, now=NOW, not_before="2026-03-01T15:00:00Z", not_after="2026-03-01T15:00:00Z"
        )


def test_an_unreadable_time_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match=r"invalid time or duration 'tomorrow'"):
        validity(DEFAULT, now=NOW, not_after="tomorrow")


def test_a_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"timezone-aware"):
        validity(DEFAULT, now=NOW.replace(tzinfo=None))
