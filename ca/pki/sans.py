"""Subject alternative names as step types them: one `SAN` per name, typed by its syntax."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ca.errors import BadRequest

__all__ = ["MAX_SANS", "SAN", "normal_ip", "split_sans"]

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class SAN:
    """A subject alternative name typed the way step types them."""

    type: str  # "dns" | "ip" | "email" | "uri"
    value: str


MAX_SANS = 500
"""SANs a token may grant (and so a certificate carry): generous for any service, and a
bound on the name-policy work one request can ask for (SANs times policy entries)."""


def split_sans(sans: Iterable[str]) -> list[SAN]:
    """Type each name as step does (`x509util.SplitSANs`): ip, uri, email, else dns."""
    names = list(sans)
    if len(names) > MAX_SANS:
        raise BadRequest(f"{len(names)} SANs requested: at most {MAX_SANS} are allowed")
    return [_split_san(san) for san in names]


def normal_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)  # Go's net.IP treats ::ffff:a.b.c.d as a.b.c.d
    return str(ip)


def _split_san(san: str) -> SAN:
    try:
        ip = ipaddress.ip_address(san)
    except ValueError:
        ip = None
    if ip is not None and not getattr(ip, "scope_id", None):  # Go's ParseIP has no zones
        return SAN("ip", normal_ip(ip))
    if _SCHEME.match(san):
        return SAN("uri", san)
    if "@" in san:
        return SAN("email", san)
    return SAN("dns", san.lower())
