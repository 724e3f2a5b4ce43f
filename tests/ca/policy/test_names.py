"""Name policies decide as step-ca's do: deny beats allow, any allow list denies the rest."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ca.errors import BadRequest, PolicyError
from ca.policy import NamePolicy, NameRules, NameType, combine, evaluate

KWARG: dict[NameType, str] = {
    "dns": "dns",
    "ip": "ips",
    "email": "emails",
    "uri": "uris",
    "cn": "common_names",
    "principal": "principals",
}


def allows(policy: NamePolicy, kind: NameType, name: Any) -> bool:
    names: dict[str, Any] = {KWARG[kind]: [name]}
    try:
        evaluate(policy, **names)
    except PolicyError:
        return False
    return True


def policy(
    allow: dict[str, Any] | None = None, deny: dict[str, Any] | None = None, **kw: Any
) -> NamePolicy:
    return NamePolicy(NameRules(**(allow or {})), NameRules(**(deny or {})), **kw)


# (allow entries, deny entries, name type, name, allowed?)
CASES = [
    # DNS: exact, one-level wildcard, any-depth leading dot, case-insensitive
    ({"dns": ["example.com"]}, {}, "dns", "example.com", True),
    ({"dns": ["example.com"]}, {}, "dns", "www.example.com", False),
    ({"dns": ["*.example.com"]}, {}, "dns", "www.example.com", True),
    ({"dns": ["*.example.com"]}, {}, "dns", "a.b.example.com", False),
    ({"dns": ["*.example.com"]}, {}, "dns", "example.com", False),
    ({"dns": ["*.example.com"]}, {}, "dns", "wwwexample.com", False),
    ({"dns": [".example.com"]}, {}, "dns", "a.b.example.com", True),
    ({"dns": [".example.com"]}, {}, "dns", "example.com", False),
    ({"dns": ["*.Example.COM"]}, {}, "dns", "WWW.example.com", True),
    ({"dns": ["*.xn--fsq.jp"]}, {}, "dns", "xn--jp-cd2fp15c.xn--fsq.jp", True),
    ({"dns": [".example.com"]}, {}, "dns", "bücher.example.com", False),
    ({"dns": [".example.com"]}, {}, "dns", "xn--bcher-kva.example.com", True),
    ({"dns": [".example.com"]}, {}, "dns", "xn--abc.example.com", False),
    ({"dns": [".example.com"]}, {}, "dns", "bad name.example.com", False),
    ({}, {"dns": ["bad.example.com"]}, "dns", "good.example.com", True),
    ({}, {"dns": ["*.internal"]}, "dns", "db.internal", False),
    ({}, {"dns": ["*.internal"]}, "dns", "a.db.internal", True),
    ({}, {"dns": [".internal"]}, "dns", "a.db.internal", False),
    # IP: single addresses and CIDR ranges, v4 and v6, edges of the range
    ({"ip": ["10.0.0.0/24"]}, {}, "ip", "10.0.0.0", True),
    ({"ip": ["10.0.0.0/24"]}, {}, "ip", "10.0.0.255", True),
    ({"ip": ["10.0.0.0/24"]}, {}, "ip", "10.0.1.0", False),
    ({"ip": ["10.0.0.0/24"]}, {}, "ip", ipaddress.ip_address("10.0.0.7"), True),
    ({"ip": ["10.0.0.0/24"]}, {}, "ip", "::ffff:10.0.0.7", True),
    ({"ip": ["10.0.0.5"]}, {}, "ip", "10.0.0.5", True),
    ({"ip": ["10.0.0.5"]}, {}, "ip", "10.0.0.6", False),
    ({"ip": ["2001:db8::/32"]}, {}, "ip", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", True),
    ({"ip": ["2001:db8::/32"]}, {}, "ip", "2001:db9::", False),
    ({"ip": ["2001:db8::/32"]}, {}, "ip", "10.0.0.1", False),
    ({"ip": ["0.0.0.0/0"]}, {}, "ip", "2001:db8::1", False),
    ({"ip": ["::/0"]}, {}, "ip", "2001:db8::1", True),
    ({"ip": ["0.0.0.0/0"]}, {"ip": ["10.0.0.0/8"]}, "ip", "10.1.2.3", False),
    ({"ip": ["0.0.0.0/0"]}, {"ip": ["10.0.0.0/8"]}, "ip", "11.0.0.0", True),
    ({}, {"ip": ["10.0.0.0/8"]}, "ip", "::ffff:10.9.9.9", False),
    ({}, {"ip": ["::ffff:10.0.0.1"]}, "ip", "10.0.0.1", False),
    ({"ip": ["10.0.0.0/8"]}, {}, "ip", "not-an-ip", False),
    # Email: full address, @domain, bare domain; local part exact, domain case-insensitive
    ({"email": ["alice@example.com"]}, {}, "email", "alice@EXAMPLE.com", True),
    ({"email": ["alice@example.com"]}, {}, "email", "Alice@example.com", False),
    ({"email": ["alice@example.com"]}, {}, "email", "bob@example.com", False),
    ({"email": ["@example.com"]}, {}, "email", "bob@example.com", True),
    ({"email": ["example.com"]}, {}, "email", "bob@Example.Com", True),
    ({"email": ["example.com"]}, {}, "email", "bob@mail.example.com", False),
    (
        {"email": ["example.com"]},
        {"email": ["root@example.com"]},
        "email",
        "root@example.com",
        False,
    ),
    ({"email": ["example.com"]}, {}, "email", "no-at-sign.example.com", False),
    # URI: matched by host, as dns entries are
    ({"uri": ["trust.example"]}, {}, "uri", "spiffe://trust.example/ns/web/sa/api", True),
    ({"uri": ["trust.example"]}, {}, "uri", "spiffe://other.example/ns/web", False),
    ({"uri": ["*.example.com"]}, {}, "uri", "https://API.example.com:8443/x", True),
    ({"uri": ["*.example.com"]}, {}, "uri", "https://a.b.example.com/", False),
    ({"uri": ["example.com"]}, {}, "uri", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", False),
    ({"uri": ["example.com"]}, {}, "uri", "https://10.0.0.1/", False),
    ({}, {"uri": ["evil.example"]}, "uri", "https://evil.example/", False),
    ({}, {"uri": ["evil.example"]}, "uri", "https://good.example/", True),
    # Common names: cn entries, else read as the name they look like
    ({"cn": ["Web Team"]}, {}, "cn", "web team", True),
    ({"cn": ["Web Team"]}, {}, "cn", "Ops Team", False),
    ({"dns": ["*.example.com"]}, {}, "cn", "www.example.com", True),
    ({"dns": ["*.example.com"]}, {}, "cn", "db.internal", False),
    ({"ip": ["10.0.0.0/8"]}, {}, "cn", "10.1.1.1", True),
    ({"email": ["example.com"]}, {}, "cn", "bob@example.com", True),
    ({"dns": ["*.example.com"]}, {}, "cn", "Web Team", False),
    ({"cn": ["bad.example.com"]}, {"dns": ["bad.example.com"]}, "cn", "bad.example.com", False),
    ({"dns": ["*.example.com"]}, {"cn": ["bad.example.com"]}, "cn", "bad.example.com", False),
    ({}, {"dns": [".internal"]}, "cn", "Web Team", True),
    ({}, {"cn": ["Web Team"]}, "cn", "WEB TEAM", False),
    # Principals (SSH): case-insensitive, `*` is any
    ({"principal": ["alice"]}, {}, "principal", "Alice", True),
    ({"principal": ["*"]}, {"principal": ["root"]}, "principal", "root", False),
    ({"principal": ["*"]}, {"principal": ["root"]}, "principal", "bob", True),
]


@pytest.mark.parametrize(("allow", "deny", "kind", "name", "expected"), CASES)
def test_names_are_decided_as_step_ca_decides_them(
    allow: dict[str, Any], deny: dict[str, Any], kind: NameType, name: Any, expected: bool
) -> None:
    assert allows(policy(allow, deny), kind, name) is expected


def test_deny_beats_allow_and_the_message_names_the_entry() -> None:
    p = policy({"dns": [".example.com"]}, {"dns": ["*.admin.example.com"]})
    with pytest.raises(PolicyError) as refused:
        evaluate(p, scope="authority policy", dns=["www.example.com", "db.admin.example.com"])
    assert refused.value.message == (
        "dns name 'db.admin.example.com' is denied by the authority policy "
        "(deny dns entry '*.admin.example.com')"
    )
    assert refused.value.status == 403


def test_an_allow_list_of_one_type_refuses_names_of_every_other_type() -> None:
    p = policy({"dns": ["*.example.com"]})
    assert allows(p, "dns", "www.example.com")
    others: list[tuple[NameType, str]] = [
        ("ip", "10.0.0.1"),
        ("email", "a@example.com"),
        ("uri", "https://www.example.com"),
        ("principal", "alice"),
    ]
    for kind, name in others:
        assert not allows(p, kind, name), kind
    with pytest.raises(PolicyError, match=r"ip address '10.0.0.1' is not allowed by the "):
        evaluate(p, scope="provisioner 'web' policy", ips=["10.0.0.1"])


def test_deny_entries_of_a_type_do_not_reopen_it_when_another_type_has_an_allow_list() -> None:
    # step-ca would let 192.168.1.1 through here (its type "has constraints"); we do not, so
    # adding a deny entry can never allow more.
    p = policy({"dns": ["*.example.com"]}, {"ip": ["10.0.0.0/8"]})
    assert not allows(p, "ip", "192.168.1.1")


def test_a_deny_only_policy_allows_every_other_name() -> None:
    p = policy(deny={"dns": [".internal"]})
    assert allows(p, "dns", "www.example.com")
    assert allows(p, "ip", "10.0.0.1")
    assert allows(p, "uri", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66")


def test_the_empty_policy_allows_everything_even_wildcards() -> None:
    evaluate(NamePolicy(), dns=["*.example.com", "bücher.de"], ips=["x"], uris=["urn:x"])


def test_wildcard_names_are_refused_unless_the_policy_allows_them() -> None:
    strict = policy({"dns": ["*.example.com"]})
    with pytest.raises(PolicyError, match="wildcard names are not allowed"):
        evaluate(strict, dns=["*.example.com"])
    assert not allows(policy(deny={"ip": ["10.0.0.0/8"]}), "dns", "*.example.com")
    assert not allows(strict, "cn", "*.example.com")

    relaxed = policy({"dns": ["*.example.com"]}, allow_wildcard_names=True)
    assert allows(relaxed, "dns", "*.example.com")
    assert allows(relaxed, "dns", "*.EXAMPLE.com")
    assert not allows(relaxed, "dns", "*.a.example.com")
    assert not allows(
        policy({"dns": ["www.example.com"]}, allow_wildcard_names=True), "dns", "*.example.com"
    )
    assert allows(policy({"dns": [".com"]}, allow_wildcard_names=True), "dns", "*.example.com")


@pytest.mark.parametrize(
    "denied", ["www.example.com", "*.example.com", ".example.com", ".com", "*.Example.com"]
)
def test_a_wildcard_name_is_denied_when_any_name_it_covers_is_denied(denied: str) -> None:
    p = policy({"dns": [".com"]}, {"dns": [denied]}, allow_wildcard_names=True)
    assert not allows(p, "dns", "*.example.com")


@pytest.mark.parametrize("denied", ["example.com", "*.www.example.com", "www.other.com", "*.com"])
def test_a_wildcard_name_passes_deny_entries_that_cover_none_of_its_names(denied: str) -> None:
    p = policy({"dns": [".com"]}, {"dns": [denied]}, allow_wildcard_names=True)
    assert allows(p, "dns", "*.example.com")


def test_combined_policies_refuse_what_either_level_refuses() -> None:
    authority = policy({"dns": [".example.com"]})
    provisioner = policy(deny={"dns": ["*.prod.example.com"]})
    both = combine(authority, provisioner, provisioner_scope="provisioner 'web' policy")
    both.evaluate(dns=iter(["a.dev.example.com"]))
    with pytest.raises(PolicyError, match="by the authority policy"):
        both.evaluate(dns=["db.internal"])
    with pytest.raises(PolicyError, match="by the provisioner 'web' policy"):
        both.evaluate(dns=iter(["db.prod.example.com"]))
    combine(None, None).evaluate(dns=["anything.at.all"])


def test_json_round_trips_in_the_admin_api_form() -> None:
    doc = {
        "allow": {
            "dns": ["*.example.com", ".corp.example"],
            "ips": ["10.0.0.0/8", "2001:db8::/32", "192.168.1.10"],
            "emails": ["@example.com", "alice@example.org"],
            "uris": ["trust.example"],
            "commonNames": ["Web Team"],
        },
        "deny": {"dns": ["admin.example.com"], "ips": ["10.0.0.0/24"]},
        "allowWildcardNames": True,
    }
    p = NamePolicy.from_json(doc)
    assert p.to_json() == doc
    assert NamePolicy.from_json(p.to_json()) == p
    assert NamePolicy.from_json({}) == NamePolicy()
    assert NamePolicy().to_json() == {}


def test_ca_json_field_names_read_the_same_as_the_admin_api_names() -> None:
    ca_json = {
        "allow": {"cn": ["x"], "dns": ["a.example"], "ip": ["10.0.0.1"], "email": ["e.example"]},
        "deny": {"uri": ["u.example"], "principal": ["root"]},
    }
    linkedca = {
        "allow": {
            "commonNames": ["x"],
            "dns": ["a.example"],
            "ips": ["10.0.0.1"],
            "emails": ["e.example"],
        },
        "deny": {"uris": ["u.example"], "principals": ["root"]},
    }
    assert NamePolicy.from_json(ca_json) == NamePolicy.from_json(linkedca)


def test_entries_are_normalised() -> None:
    rules = NameRules(
        dns=(" WWW.Example.com ", "www.example.com"),
        ip=("10.1.2.3/8", "2001:DB8::1"),
        email=("Alice@EXAMPLE.com",),
    )
    assert rules.dns == ("www.example.com",)
    assert rules.ip == ("10.0.0.0/8", "2001:db8::1")
    assert rules.email == ("Alice@example.com",)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"allow": {"dns": [""]}}, "policy allow dns entry ''"),
        ({"allow": {"dns": ["  "]}}, "policy allow dns entry '  '"),
        ({"allow": {"dns": ["*"]}}, "policy allow dns entry '*'"),
        ({"allow": {"dns": ["a.*.example.com"]}}, "'a.*.example.com'"),
        ({"allow": {"dns": ["*example.com"]}}, "'*example.com'"),
        ({"allow": {"dns": ["bücher.de"]}}, "A-labels"),
        ({"allow": {"dns": ["xn--abc.de"]}}, "not a valid A-label"),
        ({"allow": {"dns": ["example..com"]}}, "'example..com'"),
        ({"deny": {"ips": ["10.0.0.0/33"]}}, "policy deny ip entry '10.0.0.0/33'"),
        ({"deny": {"ips": ["10.0.0"]}}, "'10.0.0'"),
        ({"deny": {"ips": ["2001:db8::/129"]}}, "'2001:db8::/129'"),
        ({"allow": {"emails": ["*@example.com"]}}, "'*@example.com'"),
        ({"allow": {"emails": ["a@b@example.com"]}}, "more than one '@'"),
        ({"allow": {"uris": ["spiffe://trust.example"]}}, "not a URI"),
        ({"allow": {"uris": ["10.0.0.1"]}}, "not IP address"),
        ({"allow": {"dns": [7]}}, "dns entry 7"),
        ({"allow": {"dns": "example.com"}}, "must be a list"),
        ({"allow": {"dnsNames": ["x"]}}, "unknown field 'dnsNames' in policy allow"),
        ({"allow": {"ip": ["10.0.0.1"], "ips": ["10.0.0.2"]}}, "two field names"),
        ({"allow": ["example.com"]}, "policy allow must be an object"),
        ({"x509": {}}, "unknown field 'x509'"),
        ({"allowWildcardNames": "yes"}, "true or false"),
    ],
)
def test_malformed_policies_are_refused_naming_the_entry(doc: Any, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        NamePolicy.from_json(doc)
    assert message in refused.value.message


def test_a_policy_must_be_an_object() -> None:
    with pytest.raises(BadRequest, match="JSON object"):
        NamePolicy.from_json(["allow"])


# -- properties -----------------------------------------------------------------------------

# Small alphabets and address pools, so that generated names often meet generated entries.
LABEL = st.text(alphabet="abx01", min_size=1, max_size=3)
HOST = st.lists(LABEL, min_size=1, max_size=3).map(".".join)
IPV4 = st.one_of(st.ip_addresses(network="10.0.0.0/30"), st.ip_addresses(v=4)).map(str)
IPV6 = st.one_of(
    st.ip_addresses(network="2001:db8::/126"),
    st.ip_addresses(network="::ffff:10.0.0.0/126"),
    st.ip_addresses(v=6),
).map(str)
EMAIL = st.tuples(LABEL, HOST).map("@".join)
URI = HOST.map(lambda h: f"spiffe://{h}/workload")
CN = st.one_of(HOST, st.text(alphabet="abcXYZ ", min_size=1, max_size=10).filter(str.strip))
PRINCIPAL = LABEL

NAMES: dict[NameType, st.SearchStrategy[str]] = {
    "dns": HOST,
    "ip": st.one_of(IPV4, IPV6),
    "email": EMAIL,
    "uri": URI,
    "cn": CN,
    "principal": PRINCIPAL,
}
# What a policy entry may be, per type (a name is always also a valid exact entry).
ENTRIES: dict[NameType, st.SearchStrategy[str]] = {
    "dns": st.one_of(HOST, HOST.map("*.{}".format), HOST.map(".{}".format)),
    "ip": st.one_of(
        IPV4,
        IPV6,
        st.ip_addresses(v=4).flatmap(lambda a: st.integers(0, 32).map(lambda n: f"{a}/{n}")),
        st.ip_addresses(v=6).flatmap(lambda a: st.integers(0, 128).map(lambda n: f"{a}/{n}")),
    ),
    "email": st.one_of(EMAIL, HOST, HOST.map("@{}".format)),
    "uri": st.one_of(HOST, HOST.map("*.{}".format)),
    "cn": CN,
    "principal": st.one_of(PRINCIPAL, st.just("*")),
}
KINDS = list(NAMES)


@st.composite
def rules(draw: st.DrawFn) -> NameRules:
    kinds = draw(st.lists(st.sampled_from(KINDS), max_size=3, unique=True))
    values: dict[str, Any] = {
        k: tuple(draw(st.lists(ENTRIES[k], min_size=1, max_size=3))) for k in kinds
    }
    return NameRules(**values)


@st.composite
def name_sets(draw: st.DrawFn) -> dict[str, Any]:
    """Names of every type, wildcard DNS names among them."""
    names = {KWARG[k]: draw(st.lists(NAMES[k], max_size=2)) for k in KINDS}
    names["dns"] += draw(st.lists(HOST.map("*.{}".format), max_size=1))
    return names


def refused(p: NamePolicy, names: dict[str, Any]) -> bool:
    try:
        evaluate(p, **names)
    except PolicyError:
        return True
    return False


@settings(max_examples=40, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            KWARG[k]: st.lists(st.one_of(NAMES[k], st.text(max_size=12)), max_size=3)
            for k in KINDS
            if k != "ip"
        }
    ),
    st.lists(st.one_of(st.ip_addresses(), st.text(max_size=12)), max_size=3),
)
def test_the_empty_policy_allows_any_names(names: dict[str, Any], ips: list[Any]) -> None:
    evaluate(NamePolicy(), ips=ips, **names)


@settings(max_examples=80, deadline=None)
@given(rules(), rules(), st.booleans(), name_sets(), st.sampled_from(KINDS), st.data())
def test_adding_a_deny_entry_never_allows_a_refused_name(
    allow: NameRules,
    deny: NameRules,
    wildcards: bool,
    names: dict[str, Any],
    kind: NameType,
    data: st.DataObject,
) -> None:
    before = NamePolicy(allow, deny, wildcards)
    extra = data.draw(ENTRIES[kind])
    values: dict[str, Any] = {
        k: (*deny.entries(k), extra) if k == kind else deny.entries(k) for k in KINDS
    }
    stricter = NameRules(**values)
    after = NamePolicy(allow, stricter, wildcards)
    if refused(before, names):
        assert refused(after, names)
    for key, values in names.items():
        for name in values:
            if refused(before, {key: [name]}):
                assert refused(after, {key: [name]}), (key, name)


@settings(max_examples=80, deadline=None)
@given(rules(), rules(), st.sampled_from(KINDS), st.data())
def test_a_name_listed_in_allow_and_not_denied_is_allowed(
    allow: NameRules, deny: NameRules, kind: NameType, data: st.DataObject
) -> None:
    name = data.draw(NAMES[kind])
    # uri entries name hosts: a URI is "listed exactly" by its host.
    entry = (urlsplit(name).hostname or "") if kind == "uri" else name
    not_denied = allows(NamePolicy(deny=deny), kind, name)
    values: dict[str, Any] = {
        k: (*allow.entries(k), entry) if k == kind else allow.entries(k) for k in KINDS
    }
    listed = NameRules(**values)
    if not_denied:
        assert allows(NamePolicy(listed, deny), kind, name)
