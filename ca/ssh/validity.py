"""How long an SSH certificate lives: the SSH claims applied to a request's times.

The claims are step-ca's (`minUserSSHCertDuration` ... `maxHostSSHCertDuration`, defaults
5m/16h/24h for users and 5m/30d/30d for hosts), overridable per provisioner. The rules are
the X.509 ones (`ca.pki.claims.validity`): an unset start is now minus the backdate, an unset
end is start plus the default, relative times are Go durations, and the span must lie
within [min, max + backdate]. One difference, step-ca's: a relative validBefore counts from
now, not from validAfter, so `--not-before 10m --not-after 2h` ends two hours from now.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from ca.pki.claims import Claims, validity
from ca.ssh.certificates import CertType

__all__ = ["ssh_validity"]


def ssh_validity(
    claims: Claims,
    cert_type: CertType,
    *,
    now: datetime,
    valid_after: str = "",
    valid_before: str = "",
) -> tuple[datetime, datetime]:
    """(valid_after, valid_before) for a certificate of `cert_type`; PolicyError if outside."""
    if cert_type == "user":
        bounds = (
            claims.min_user_ssh_duration,
            claims.default_user_ssh_duration,
            claims.max_user_ssh_duration,
        )
    else:
        bounds = (
            claims.min_host_ssh_duration,
            claims.default_host_ssh_duration,
            claims.max_host_ssh_duration,
        )
    # The same window rules as X.509, read with the SSH bounds of this certificate type.
    as_tls = replace(
        claims,
        min_tls_duration=bounds[0],
        default_tls_duration=bounds[1],
        max_tls_duration=bounds[2],
    )
    return validity(
        as_tls, now=now, not_before=valid_after, not_after=valid_before, end_from_now=True
    )
