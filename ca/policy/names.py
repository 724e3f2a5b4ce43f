"""Allow/deny name policies, with step-ca's semantics (wire reference §8, `policy/` in
smallstep/certificates).

Entries, per name type:

* `dns`: `example.com` matches that name only; `*.example.com` matches names exactly one
  label deeper (`www.example.com`, not `a.b.example.com`, not `example.com`), as step-ca
  does; `.example.com` (X.509 name-constraint style, which step-ca refuses) matches names any
  number of labels deeper.
* `ip`: a CIDR range or a single address, IPv4 or IPv6. An IPv4 address and its
  IPv4-mapped IPv6 form (`::ffff:10.0.0.1`) are the same host and match the same entries.
* `email`: `alice@example.com` (local part exact, domain case-insensitive), or
  `@example.com` / `example.com` for any mailbox at exactly that domain.
* `uri`: a host pattern, as for `dns`; a URI matches by its host (step-ca's "URI domains").
* `cn`: a common name, case-insensitive.
* `principal`: an SSH principal, case-insensitive; `*` matches any principal.

Decision (for a policy with at least one entry; an empty policy allows everything):

1. A wildcard DNS name (`*.example.com`) is refused unless `allow_wildcard_names`.
2. Deny beats allow. A wildcard name is denied when any name it stands for is denied.
3. If any allow list is non-empty, every name must match an allow entry of its own type;
   names of a type without allow entries are refused. (step-ca lets such names through when
   their type has deny entries; we do not, so adding a deny entry can never allow more.)
4. A common name is refused when a `cn` deny entry or — read as the DNS name, IP, email or
   URI it looks like — a deny entry of that type matches it; otherwise it passes when a `cn`
   allow entry matches it or it passes as that other name (step-ca: a CN usually repeats a
   SAN, so `dns` entries govern it). A CN that is not a valid name of the type it looks like
   ("Web Team") is governed by `cn` entries alone.
5. A name is parsed only to be matched against entries of its type: a non-ASCII DNS name
   (write its A-label, `xn--…`), a URI without a DNS host, or a malformed email is refused
   then.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NamedTuple, cast
from urllib.parse import urlsplit

import idna

from ca.errors import BadRequest, PolicyError

__all__ = ["NamePolicy", "NameRules", "NameType", "PolicyChain", "combine", "evaluate"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
NameType = Literal["dns", "ip", "email", "uri", "cn", "principal"]

# JSON keys as step-ca writes them: ca.json (`X509NameOptions`, `SSHNameOptions`) and the
# admin API (linkedca `X509Names`, protojson camelCase). `to_json` writes the linkedca form.
_JSON_KEYS: dict[str, NameType] = {
    "dns": "dns",
    "ip": "ip",
    "ips": "ip",
    "email": "email",
    "emails": "email",
    "uri": "uri",
    "uris": "uri",
    "cn": "cn",
    "commonNames": "cn",
    "principal": "principal",
    "principals": "principal",
}
_LINKEDCA_KEYS: dict[NameType, str] = {
    "dns": "dns",
    "ip": "ips",
    "email": "emails",
    "uri": "uris",
    "cn": "commonNames",
    "principal": "principals",
}
_LABELS: dict[NameType, str] = {
    "dns": "dns name",
    "ip": "ip address",
    "email": "email address",
    "uri": "uri",
    "cn": "common name",
    "principal": "principal",
}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_LOCAL_PART = re.compile(r"[!-~]+")  # printable ASCII, no space
MAX_ENTRIES = 1000
"""Entries per list of one policy: far more than any hand-written policy, and a bound on the
work one issuance costs (each SAN is matched against every entry)."""


# -- validating names and entries ---------------------------------------------------------


def _hostname_problem(name: str) -> str | None:
    """Why `name` (lower-case) is not an ASCII host name, or None."""
    if not name.isascii():
        return "it is not ASCII; write internationalised names as A-labels (xn--…)"
    if len(name) > 253:
        return "it is longer than 253 characters"
    for label in name.split("."):
        if not _LABEL.fullmatch(label):
            return f"label {label!r} is not a valid DNS label"
        if label.startswith("xn--"):
            try:
                valid = idna.alabel(idna.ulabel(label)).decode("ascii") == label
            except (idna.IDNAError, UnicodeError):
                valid = False
            if not valid:
                return f"label {label!r} is not a valid A-label"
    return None


def _domain_entry(entry: str) -> str:
    """Normalise a `dns` or `uri` entry: `name`, `*.name` or `.name`."""
    value = entry.strip().lower()
    base = value[2:] if value.startswith("*.") else value.removeprefix(".")
    if "*" in base:
        raise ValueError("a wildcard may only be the whole leftmost label, as in '*.example.com'")
    if "://" in base or "/" in base:
        raise ValueError("write a host name, not a URI")
    problem = _hostname_problem(base)
    if problem is not None:
        raise ValueError(problem)
    return value


def _uri_entry(entry: str) -> str:
    value = _domain_entry(entry)
    try:
        ipaddress.ip_address(value.lstrip("*."))
    except ValueError:
        return value
    raise ValueError("URIs are matched by host name, not IP address")


def _ip_entry(entry: str) -> str:
    value = entry.strip()
    try:
        if "/" not in value:
            return str(ipaddress.ip_address(value))
        # Host bits are tolerated and dropped, as Go's net.ParseCIDR does.
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError("it is not an IP address or CIDR range") from None


def _email_entry(entry: str) -> str:
    value = entry.strip()
    if "*" in value:
        raise ValueError("email entries take no wildcards; '@example.com' is any mailbox there")
    local, at, domain = value.rpartition("@")
    if at and local and not _LOCAL_PART.fullmatch(local):
        raise ValueError("the local part is not printable ASCII")
    if "@" in local:
        raise ValueError("it has more than one '@'")
    domain = domain.lower()
    problem = _hostname_problem(domain)
    if problem is not None:
        raise ValueError(problem)
    return f"{local}{at}{domain}"


def _plain_entry(entry: str) -> str:
    # A common name is free text: kept exactly, spaces included.
    return entry


_NORMALISERS: dict[NameType, Callable[[str], str]] = {
    "dns": _domain_entry,
    "ip": _ip_entry,
    "email": _email_entry,
    "uri": _uri_entry,
    "cn": _plain_entry,
    "principal": _plain_entry,
}


# -- the policy values --------------------------------------------------------------------


@dataclass(frozen=True)
class NameRules:
    """Entries per name type for one side (allow or deny) of a policy.

    Entries are validated and normalised on construction (DNS, IP, email and URI entries
    trimmed, domains lower-cased, IP ranges in canonical form; common names and principals
    kept as written; duplicates dropped); a bad entry raises `BadRequest`.
    """

    dns: tuple[str, ...] = ()
    ip: tuple[str, ...] = ()
    email: tuple[str, ...] = ()
    uri: tuple[str, ...] = ()
    cn: tuple[str, ...] = ()
    principal: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            kind = cast(NameType, f.name)
            entries = getattr(self, kind)
            if isinstance(entries, str):
                raise BadRequest(f"{kind} entries must be a list of strings")
            if len(entries) > MAX_ENTRIES:
                raise BadRequest(
                    f"{len(entries)} {kind} entries: at most {MAX_ENTRIES} are allowed"
                )
            normalised: list[str] = []
            for entry in entries:
                if not isinstance(entry, str) or not entry.strip():
                    raise BadRequest(f"{kind} entry {entry!r} must be a non-empty string")
                try:
                    value = _NORMALISERS[kind](entry)
                except ValueError as exc:
                    raise BadRequest(f"{kind} entry {entry!r} is invalid: {exc}") from None
                if value not in normalised:
                    normalised.append(value)
            object.__setattr__(self, kind, tuple(normalised))

    def entries(self, kind: NameType) -> tuple[str, ...]:
        result: tuple[str, ...] = getattr(self, kind)
        return result

    @property
    def is_empty(self) -> bool:
        return not any(self.entries(kind) for kind in _LABELS)

    @classmethod
    def from_json(cls, obj: object, *, where: str) -> NameRules:
        if obj is None:
            return cls()
        if not isinstance(obj, Mapping):
            raise BadRequest(f"policy {where} must be an object")
        values: dict[NameType, tuple[str, ...]] = {}
        for key, entries in obj.items():
            kind = _JSON_KEYS.get(key)
            if kind is None:
                raise BadRequest(f"unknown field {key!r} in policy {where}")
            if kind in values:
                raise BadRequest(f"policy {where} lists {kind} entries under two field names")
            if entries is None:
                entries = []
            if not isinstance(entries, list):
                raise BadRequest(f"policy {where} {key} must be a list of strings")
            values[kind] = tuple(entries)
        try:
            return cls(**values)
        except BadRequest as exc:
            raise BadRequest(f"policy {where} {exc.message}") from None

    def to_json(self) -> dict[str, list[str]]:
        return {
            _LINKEDCA_KEYS[kind]: list(self.entries(kind))
            for kind in _LINKEDCA_KEYS
            if self.entries(kind)
        }


@dataclass(frozen=True)
class NamePolicy:
    """An allow/deny name policy, at authority or provisioner level."""

    allow: NameRules = field(default_factory=NameRules)
    deny: NameRules = field(default_factory=NameRules)
    allow_wildcard_names: bool = False

    @property
    def is_empty(self) -> bool:
        return self.allow.is_empty and self.deny.is_empty

    @classmethod
    def from_json(cls, obj: object) -> NamePolicy:
        """Read step-ca's policy object: `{"allow": {...}, "deny": {...},
        "allowWildcardNames": false}`, names keyed as in ca.json (`dns`, `ip`, `email`, `uri`,
        `cn`, `principal`) or as the admin API writes them (`ips`, `emails`, `uris`,
        `commonNames`, `principals`)."""
        if not isinstance(obj, Mapping):
            raise BadRequest("a policy must be a JSON object")
        unknown = sorted(set(obj) - {"allow", "deny", "allowWildcardNames"})
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r} in policy")
        wildcards = obj.get("allowWildcardNames")
        if wildcards is None:
            wildcards = False
        if not isinstance(wildcards, bool):
            raise BadRequest("policy allowWildcardNames must be true or false")
        return cls(
            allow=NameRules.from_json(obj.get("allow"), where="allow"),
            deny=NameRules.from_json(obj.get("deny"), where="deny"),
            allow_wildcard_names=wildcards,
        )

    def to_json(self) -> dict[str, Any]:
        """The admin API (linkedca) form; empty parts are left out, as protojson does."""
        out: dict[str, Any] = {}
        if not self.allow.is_empty:
            out["allow"] = self.allow.to_json()
        if not self.deny.is_empty:
            out["deny"] = self.deny.to_json()
        if self.allow_wildcard_names:
            out["allowWildcardNames"] = True
        return out


# -- matching -----------------------------------------------------------------------------


def _domain_matches(name: str, entry: str) -> bool:
    """Does the `dns`/`uri` entry cover `name`? A wildcard name (`*.b`) matches as a name
    whose leftmost label is `*`, so an entry covers it only if it covers every name it
    stands for."""
    if entry.startswith("*."):
        suffix = entry[1:]
        prefix = name[: -len(suffix)]
        return name.endswith(suffix) and bool(prefix) and "." not in prefix
    if entry.startswith("."):
        return name.endswith(entry)
    return name == entry


def _domain_overlaps(name: str, entry: str) -> bool:
    """Does the entry cover any name that `name` stands for (for deny)?"""
    if not name.startswith("*."):
        return _domain_matches(name, entry)
    base = name[2:]  # the wildcard stands for every `x.base`, x one label
    if entry.startswith("*."):
        return entry[2:] == base
    if entry.startswith("."):
        return ("." + base).endswith(entry)
    return entry.endswith("." + base) and "." not in entry[: -len(base) - 1]


def _email_matches(mailbox: tuple[str, str], entry: str) -> bool:
    local, domain = mailbox
    entry_local, at, entry_domain = entry.rpartition("@")
    if at and entry_local:
        return local == entry_local and domain == entry_domain
    return domain == entry_domain


def _email_denied(mailbox: tuple[str, str], entry: str) -> bool:
    """Deny entries match every spelling a mail server may deliver to the same mailbox:
    RFC 5321 makes the local part case-sensitive, but most servers fold case, and a quoted
    local part (`"admin"`, `"ad\\min"`) that needs no quoting names the unquoted mailbox.
    Allow entries stay exact (`_email_matches`), so this never widens what is allowed."""
    local, domain = mailbox
    entry_local, at, entry_domain = entry.rpartition("@")
    if at and entry_local:
        return _mailbox(local) == _mailbox(entry_local) and domain == entry_domain
    return domain == entry_domain


def _mailbox(local: str) -> str:
    """A local part with RFC 5321 quoting removed and its case folded, for comparison only."""
    if len(local) >= 2 and local[0] == local[-1] == '"':
        local = re.sub(r"\\(.)", r"\1", local[1:-1])
    return local.casefold()


def _ip_spellings(address: IPAddress) -> tuple[IPAddress, ...]:
    """An IPv4 address and its IPv4-mapped IPv6 form name the same host: match either."""
    if isinstance(address, ipaddress.IPv4Address):
        return address, ipaddress.IPv6Address(f"::ffff:{address}")
    if address.ipv4_mapped is not None:
        return address, address.ipv4_mapped
    return (address,)


def _ip_matches(address: IPAddress, entry: str) -> bool:
    network = ipaddress.ip_network(entry)
    return any(
        spelling.version == network.version and spelling in network
        for spelling in _ip_spellings(address)
    )


def _text_matches(name: str, entry: str) -> bool:
    return name.casefold() == entry.casefold()


def _principal_matches(name: str, entry: str) -> bool:
    return entry == "*" or _text_matches(name, entry)


class _Refusal(NamedTuple):
    reason: Literal["denied", "not allowed", "wildcard", "invalid"]
    detail: str = ""


class _Parsed(NamedTuple):
    value: Any
    allow: Callable[[Any, str], bool]
    deny: Callable[[Any, str], bool]


def _parse(kind: NameType, name: str | IPAddress) -> _Parsed | str:
    """The name in matchable form, or why it cannot be matched."""
    if kind == "ip":
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return "it is not an IP address"
        return _Parsed(address, _ip_matches, _ip_matches)
    assert isinstance(name, str)
    if kind == "dns":
        host = name.lower()
        problem = _hostname_problem(host.removeprefix("*."))
        return problem or _Parsed(host, _domain_matches, _domain_overlaps)
    if kind == "email":
        local, _, domain = name.rpartition("@")
        if not local or not _LOCAL_PART.fullmatch(local):
            return "it is not an email address"
        problem = _hostname_problem(domain.lower())
        return problem or _Parsed((local, domain.lower()), _email_matches, _email_denied)
    if kind == "uri":
        try:
            uri_host = urlsplit(name).hostname
        except ValueError:
            return "it is not a URI"
        if not uri_host:
            return "it has no host to match"
        try:
            ipaddress.ip_address(uri_host)
        except ValueError:
            problem = _hostname_problem(uri_host)
            return problem or _Parsed(uri_host, _domain_matches, _domain_matches)
        return "its host is an IP address; uri entries match host names"
    if kind == "cn":
        return _Parsed(name, _text_matches, _text_matches)
    return _Parsed(name, _principal_matches, _principal_matches)


def _check(policy: NamePolicy, kind: NameType, name: str | IPAddress) -> _Refusal | None:
    if kind == "dns" and str(name).startswith("*.") and not policy.allow_wildcard_names:
        return _Refusal("wildcard", "wildcard names are not allowed")
    allowed, denied = policy.allow.entries(kind), policy.deny.entries(kind)
    if allowed or denied:
        parsed = _parse(kind, name)
        if isinstance(parsed, str):
            return _Refusal("invalid", parsed)
        for entry in denied:
            if parsed.deny(parsed.value, entry):
                return _Refusal("denied", f"deny {kind} entry {entry!r}")
        if allowed:
            if any(parsed.allow(parsed.value, entry) for entry in allowed):
                return None
            return _Refusal("not allowed")
    if policy.allow.is_empty:
        return None
    return _Refusal("not allowed", f"it allows no {_LABELS[kind]}s")


def _looks_like(common_name: str) -> NameType:
    """The type step-ca reads a common name as (x509util.SplitSANs)."""
    try:
        ipaddress.ip_address(common_name)
    except ValueError:
        pass
    else:
        return "ip"
    if "://" in common_name:
        return "uri"
    return "email" if "@" in common_name else "dns"


def _check_common_name(policy: NamePolicy, name: str) -> _Refusal | None:
    for entry in policy.deny.cn:
        if _text_matches(name, entry):
            return _Refusal("denied", f"deny cn entry {entry!r}")
    as_other = _check(policy, _looks_like(name), name)
    if as_other is not None and as_other.reason in ("denied", "wildcard"):
        return as_other
    if any(_text_matches(name, entry) for entry in policy.allow.cn):
        return None
    if as_other is None or (as_other.reason == "invalid" and policy.allow.is_empty):
        return None
    if as_other.reason == "invalid":
        return _Refusal("not allowed", f"not a cn entry, and {as_other.detail}")
    return _Refusal("not allowed")


def _message(kind: NameType, name: str | IPAddress, refusal: _Refusal, scope: str) -> str:
    subject = f"{_LABELS[kind]} {str(name)!r}"
    if refusal.reason == "denied":
        return f"{subject} is denied by the {scope} ({refusal.detail})"
    detail = f": {refusal.detail}" if refusal.detail else ""
    return f"{subject} is not allowed by the {scope}{detail}"


# -- evaluation ---------------------------------------------------------------------------


def evaluate(
    policy: NamePolicy,
    *,
    scope: str = "policy",
    dns: Iterable[str] = (),
    ips: Iterable[str | IPAddress] = (),
    emails: Iterable[str] = (),
    uris: Iterable[str] = (),
    common_names: Iterable[str] = (),
    principals: Iterable[str] = (),
) -> None:
    """Raise `PolicyError` naming the first name `policy` refuses, and why.

    `scope` names the policy in the message: "authority policy", "provisioner 'web' policy".
    """
    if policy.is_empty:
        return
    groups: tuple[tuple[NameType, Iterable[str | IPAddress]], ...] = (
        ("dns", dns),
        ("ip", ips),
        ("email", emails),
        ("uri", uris),
        ("principal", principals),
        ("cn", common_names),
    )
    for kind, names in groups:
        for name in names:
            if kind == "cn":
                assert isinstance(name, str)
                refusal = _check_common_name(policy, name)
            else:
                refusal = _check(policy, kind, name)
            if refusal is not None:
                raise PolicyError(_message(kind, name, refusal, scope))


@dataclass(frozen=True)
class PolicyChain:
    """Policies a request must pass one after another, each named by its scope."""

    levels: tuple[tuple[str, NamePolicy], ...] = ()

    def evaluate(
        self,
        *,
        dns: Iterable[str] = (),
        ips: Iterable[str | IPAddress] = (),
        emails: Iterable[str] = (),
        uris: Iterable[str] = (),
        common_names: Iterable[str] = (),
        principals: Iterable[str] = (),
    ) -> None:
        # Materialised once: the caller may pass iterators, and every level reads them all.
        dns, ips, emails = tuple(dns), tuple(ips), tuple(emails)
        uris, common_names, principals = tuple(uris), tuple(common_names), tuple(principals)
        for scope, policy in self.levels:
            evaluate(
                policy,
                scope=scope,
                dns=dns,
                ips=ips,
                emails=emails,
                uris=uris,
                common_names=common_names,
                principals=principals,
            )


def combine(
    authority: NamePolicy | None,
    provisioner: NamePolicy | None,
    *,
    provisioner_scope: str = "provisioner policy",
) -> PolicyChain:
    """The authority policy, then the provisioner's: a name must pass both."""
    levels: list[tuple[str, NamePolicy]] = []
    if authority is not None:
        levels.append(("authority policy", authority))
    if provisioner is not None:
        levels.append((provisioner_scope, provisioner))
    return PolicyChain(tuple(levels))
