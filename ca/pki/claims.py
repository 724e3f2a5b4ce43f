"""Claims: how long a provisioner's certificates may live, and what else it may do.

Claims come from the `authority.claims` block of the configuration and from each
provisioner's `claims`, provisioner values overriding global ones field by field, with
step-ca's JSON names and defaults (wire reference §5.2). `validity` turns a request's
`notBefore` / `notAfter` into a certificate's validity window the way step-ca does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ca.durations import format_go_duration as _go
from ca.durations import parse_go_duration, parse_time_duration
from ca.errors import BadRequest, PolicyError
from ca.pki.profiles import BACKDATE

__all__ = ["Claims", "validity"]

# step-ca's JSON name of each claim → the Claims field it sets.
_JSON_NAMES = {
    "minTLSCertDuration": "min_tls_duration",
    "maxTLSCertDuration": "max_tls_duration",
    "defaultTLSCertDuration": "default_tls_duration",
    "disableRenewal": "disable_renewal",
    "allowRenewalAfterExpiry": "allow_renewal_after_expiry",
    "disableSmallstepExtensions": "disable_smallstep_extensions",
    "enableSSHCA": "enable_ssh_ca",
    "enableSSHAddUser": "enable_ssh_add_user",
    "minUserSSHCertDuration": "min_user_ssh_duration",
    "maxUserSSHCertDuration": "max_user_ssh_duration",
    "defaultUserSSHCertDuration": "default_user_ssh_duration",
    "minHostSSHCertDuration": "min_host_ssh_duration",
    "maxHostSSHCertDuration": "max_host_ssh_duration",
    "defaultHostSSHCertDuration": "default_host_ssh_duration",
}
_FIELD_NAMES = {field: name for name, field in _JSON_NAMES.items()}
# (min, default, max) triples checked for min <= default <= max.
_RANGES = (
    ("min_tls_duration", "default_tls_duration", "max_tls_duration"),
    ("min_user_ssh_duration", "default_user_ssh_duration", "max_user_ssh_duration"),
    ("min_host_ssh_duration", "default_host_ssh_duration", "max_host_ssh_duration"),
)


@dataclass(frozen=True)
class Claims:
    """The effective claims of one provisioner (defaults are step-ca's)."""

    min_tls_duration: timedelta = timedelta(minutes=5)
    max_tls_duration: timedelta = timedelta(hours=24)
    default_tls_duration: timedelta = timedelta(hours=24)
    disable_renewal: bool = False
    allow_renewal_after_expiry: bool = False
    disable_smallstep_extensions: bool = False
    # Not a claim in step-ca's JSON but `authority.backdate`; carried here because the
    # validity rules need it next to the durations.
    backdate: timedelta = BACKDATE
    enable_ssh_ca: bool = False
    # ledgerca's own claim: may `step ssh certificate --add-user` get its add-user
    # certificate from this provisioner (`ca.ssh.add_user`)?
    enable_ssh_add_user: bool = False
    min_user_ssh_duration: timedelta = timedelta(minutes=5)
    default_user_ssh_duration: timedelta = timedelta(hours=16)
    max_user_ssh_duration: timedelta = timedelta(hours=24)
    min_host_ssh_duration: timedelta = timedelta(minutes=5)
    default_host_ssh_duration: timedelta = timedelta(days=30)
    max_host_ssh_duration: timedelta = timedelta(days=30)

    @classmethod
    def from_json(
        cls,
        global_claims: Mapping[str, Any] | None,
        provisioner_claims: Mapping[str, Any] | None,
        *,
        backdate: timedelta = BACKDATE,
    ) -> Claims:
        """Defaults, overridden by `authority.claims`, overridden by the provisioner's.

        Both levels are checked, so a bad global block is reported as such even when a
        provisioner happens to fix it. Unknown claim names are refused rather than ignored:
        a misspelt `maxTLSCertDuration` would otherwise silently leave the default.
        """
        if backdate < timedelta(0):
            raise BadRequest(f"backdate must not be negative, got {_go(backdate)}")
        claims = cls(backdate=backdate)
        if global_claims is not None:
            claims = _overlay(claims, global_claims, "authority.claims")
        if provisioner_claims is not None:
            claims = _overlay(claims, provisioner_claims, "provisioner claims")
        return claims

    def __post_init__(self) -> None:
        for field, name in _FIELD_NAMES.items():
            value = getattr(self, field)
            if isinstance(value, timedelta) and value <= timedelta(0):
                raise BadRequest(f"{name} must be greater than 0, got {_go(value)}")
        for triple in _RANGES:
            low, default, high = (getattr(self, field) for field in triple)
            for smaller, larger in (triple[:2], triple[1:]):
                if getattr(self, smaller) > getattr(self, larger):
                    raise BadRequest(
                        f"{_FIELD_NAMES[smaller]} ({_go(getattr(self, smaller))}) must not be "
                        f"greater than {_FIELD_NAMES[larger]} ({_go(getattr(self, larger))}); "
                        f"the effective values are min {_go(low)}, default {_go(default)}, "
                        f"max {_go(high)}"
                    )


def validity(
    claims: Claims,
    *,
    now: datetime,
    not_before: str = "",
    not_after: str = "",
    end_from_now: bool = False,
) -> tuple[datetime, datetime]:
    """The (notBefore, notAfter) of a leaf, from the request's TimeDurations.

    step-ca's rules (`profileDefaultDuration`, `validityValidator`): an unset notBefore
    is now - backdate; a relative notAfter counts from the requested notBefore when there
    is one, else from now (not from the backdated start) — or always from now with
    `end_from_now`, as step-ca reads SSH's validBefore (`SignSSHOptions.ModifyValidity`);
    an unset notAfter is start + default. A zero duration counts as unset, as in step-ca.
    The checks run on the certificate's real span, backdate included, with the maximum
    stretched by the backdate, so "--not-after 4m" passes a 5m minimum exactly as it does
    with step-ca.
    The messages report the duration the client asked for, without the backdate.
    """
    if now.tzinfo is None:
        raise ValueError("validity() needs a timezone-aware `now`")
    now = _whole_seconds(now)
    start_value = _nonzero(parse_time_duration(not_before))
    end_value = _nonzero(parse_time_duration(not_after))

    if start_value is None:
        start = now
        cert_not_before = now - claims.backdate
    else:
        start = _whole_seconds(_resolve(start_value, now))
        cert_not_before = start
    if end_value is None:
        cert_not_after = start + claims.default_tls_duration
    else:
        cert_not_after = _whole_seconds(_resolve(end_value, now if end_from_now else start))

    if cert_not_after < now:
        raise PolicyError(
            f"notAfter cannot be in the past; notAfter={_iso(cert_not_after)}, now={_iso(now)}"
        )
    if cert_not_after <= cert_not_before:
        raise PolicyError(
            f"notAfter must be after notBefore; notAfter={_iso(cert_not_after)}, "
            f"notBefore={_iso(cert_not_before)}"
        )
    span = cert_not_after - cert_not_before
    requested = _go(cert_not_after - start)
    if span < claims.min_tls_duration:
        raise PolicyError(
            f"requested duration of {requested} is less than the authorized minimum "
            f"certificate duration of {_go(claims.min_tls_duration)}"
        )
    # step-ca tolerates max + backdate whether or not the start was backdated.
    if span > claims.max_tls_duration + claims.backdate:
        raise PolicyError(
            f"requested duration of {requested} is more than the authorized maximum "
            f"certificate duration of {_go(claims.max_tls_duration)}"
        )
    return cert_not_before, cert_not_after


def _overlay(base: Claims, claims: Mapping[str, Any], where: str) -> Claims:
    if not isinstance(claims, Mapping):
        raise BadRequest(f"{where} must be a JSON object, got {type(claims).__name__}")
    changes: dict[str, Any] = {}
    for name, value in claims.items():
        field = _JSON_NAMES.get(name)
        if field is None:
            known = ", ".join(_JSON_NAMES)
            raise BadRequest(f"{where}: unknown claim {name!r}; known claims are {known}")
        if value is None:  # JSON null: unset, like step-ca's nil pointers
            continue
        if isinstance(getattr(base, field), bool):
            if not isinstance(value, bool):
                raise BadRequest(f"{where}: {name} must be true or false, got {value!r}")
            changes[field] = value
        else:
            changes[field] = _claim_duration(value, f"{where}: {name}")
    try:
        return replace(base, **changes)
    except BadRequest as err:
        raise BadRequest(f"{where}: {err.message}") from None


def _claim_duration(value: object, label: str) -> timedelta:
    # step-ca's provisioner.Duration reads a Go duration string or an integer of nanoseconds.
    if isinstance(value, str):
        try:
            return parse_go_duration(value)
        except BadRequest as err:
            raise BadRequest(f"{label}: {err.message}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(microseconds=value // 1000)
    raise BadRequest(f'{label} must be a duration such as "24h", got {value!r}')


def _nonzero(value: datetime | timedelta | None) -> datetime | timedelta | None:
    return None if value == timedelta(0) else value


def _resolve(value: datetime | timedelta, base: datetime) -> datetime:
    return value if isinstance(value, datetime) else base + value


def _whole_seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
