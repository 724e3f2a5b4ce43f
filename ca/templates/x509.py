"""X.509 leaf templates: their data, the default template, and the strict reading of the result.

The data a template sees (built by `template_data`; names follow step-ca's, lower-cased):

    {
      "subject": {"commonName": "<token subject>"},
      "sans": [{"type": "dns" | "ip" | "email" | "uri", "value": "…"}],  # from the token
      "token": {…the token's claims…},
      "insecure": {
        "cr": {                              # the CSR, as the requester wrote it
          "subject": {"commonName": "…", "organization": […], …},
          "dnsNames": […], "ipAddresses": […], "emailAddresses": […], "uris": […],
          "sans": [{"type": …, "value": …}],
          "publicKeyAlgorithm": "ECDSA" | "Ed25519" | "RSA"
        },
        "user": {…the request's templateData…}
      },
      "key_type": "EC" | "OKP" | "RSA"
    }

"insecure" is step-ca's word for what the CA has not vouched for. As in step-ca, the
pipeline should pass the request's templateData as `user` only to custom templates.

A rendered template is read into a `CertificateTemplate` against step-ca's x509util
field names, refusing anything unknown or mistyped, and refusing to make a CA.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from ca.errors import BadRequest, PolicyError
from ca.keys.files import KeyType
from ca.templates import render_json

__all__ = [
    "DEFAULT_LEAF_TEMPLATE",
    "EXT_KEY_USAGES",
    "KEY_USAGES",
    "SAN",
    "BasicConstraints",
    "CertificateTemplate",
    "SanType",
    "Subject",
    "create_sans",
    "csr_view",
    "default_leaf",
    "render",
    "template_data",
]

SanType = Literal["dns", "ip", "email", "uri"]

KEY_USAGES = (
    "digitalSignature",
    "contentCommitment",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "certSign",
    "crlSign",
    "encipherOnly",
    "decipherOnly",
)
EXT_KEY_USAGES = (
    "serverAuth",
    "clientAuth",
    "codeSigning",
    "emailProtection",
    "timeStamping",
    "ocspSigning",
)

# step-ca's x509util.DefaultLeafTemplate, in this engine's syntax.
DEFAULT_LEAF_TEMPLATE = """{
  "subject": {{ subject }},
  "sans": {{ sans }},
{%- if key_type == "RSA" %}
  "keyUsage": ["keyEncipherment", "digitalSignature"],
{%- else %}
  "keyUsage": ["digitalSignature"],
{%- endif %}
  "extKeyUsage": ["serverAuth", "clientAuth"]
}
"""


@dataclass(frozen=True)
class Subject:
    common_name: str = ""
    country: tuple[str, ...] = ()
    organization: tuple[str, ...] = ()
    organizational_unit: tuple[str, ...] = ()
    locality: tuple[str, ...] = ()
    province: tuple[str, ...] = ()
    street_address: tuple[str, ...] = ()
    postal_code: tuple[str, ...] = ()
    serial_number: tuple[str, ...] = ()


@dataclass(frozen=True)
class SAN:
    type: SanType
    value: str


@dataclass(frozen=True)
class BasicConstraints:
    is_ca: bool
    max_path_len: int | None = None


@dataclass(frozen=True)
class CertificateTemplate:
    """What a template asked for; validity, keys and extensions of the CA's own are added
    by the issuance pipeline."""

    subject: Subject
    sans: tuple[SAN, ...] = ()
    key_usage: tuple[str, ...] = ()
    ext_key_usage: tuple[str, ...] = ()
    basic_constraints: BasicConstraints | None = None
    crl_distribution_points: tuple[str, ...] = ()
    ocsp_server: tuple[str, ...] = ()
    issuing_certificate_url: tuple[str, ...] = ()


def render(template: str, data: Mapping[str, Any]) -> CertificateTemplate:
    """Render a leaf template and read the result strictly (BadRequest / PolicyError)."""
    return _certificate(render_json(template, data))


def default_leaf(subject_cn: str, sans: Sequence[str], key_type: KeyType) -> CertificateTemplate:
    """What `DEFAULT_LEAF_TEMPLATE` renders to for these inputs, built without the template
    engine: the default template is the issuance hot path. A test keeps the two equal."""
    usages = ["keyEncipherment", "digitalSignature"] if key_type == "RSA" else ["digitalSignature"]
    return _certificate(
        {
            "subject": {"commonName": subject_cn},
            "sans": create_sans(sans),
            "keyUsage": usages,
            "extKeyUsage": ["serverAuth", "clientAuth"],
        }
    )


def template_data(
    subject_cn: str,
    sans: Sequence[str],
    token_claims: Mapping[str, Any],
    csr: x509.CertificateSigningRequest,
    user_data: Mapping[str, Any] | None,
    key_type: KeyType,
) -> dict[str, Any]:
    """The data a leaf template sees (shape in the module docstring)."""
    if key_type not in ("EC", "OKP", "RSA"):
        raise ValueError(f"unknown key type {key_type!r}")
    return {
        "subject": {"commonName": subject_cn},
        "sans": create_sans(sans),
        "token": dict(token_claims),
        "insecure": {"cr": csr_view(csr), "user": dict(user_data or {})},
        "key_type": key_type,
    }


def create_sans(values: Sequence[str]) -> list[dict[str, str]]:
    """Typed SANs from plain strings, as step-ca's x509util.CreateSANs: an IP address, else
    a URI when it has a scheme, else an email when it has an "@", else a DNS name; listed
    DNS names first, then IPs, emails, URIs."""
    by_type: dict[SanType, list[str]] = {"dns": [], "ip": [], "email": [], "uri": []}
    for value in values:
        by_type[_san_type_of(value)].append(value)
    return [{"type": kind, "value": value} for kind, found in by_type.items() for value in found]


def csr_view(csr: x509.CertificateSigningRequest) -> dict[str, Any]:
    """The CSR as templates see it (a subset of x509util.CertificateRequest's JSON)."""
    subject: dict[str, Any] = {"commonName": ""}
    for attribute in csr.subject:
        name = _SUBJECT_OIDS.get(attribute.oid)
        value = attribute.value if isinstance(attribute.value, str) else ""
        if name == "commonName":
            subject["commonName"] = subject["commonName"] or value
        elif name is not None:
            subject.setdefault(name, []).append(value)
    try:
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = x509.SubjectAlternativeName([])
    except ValueError as err:
        raise BadRequest(f"invalid csr: its extensions cannot be read: {err}") from None
    dns = [str(n) for n in names.get_values_for_type(x509.DNSName)]
    ips = [str(n) for n in names.get_values_for_type(x509.IPAddress)]
    emails = [str(n) for n in names.get_values_for_type(x509.RFC822Name)]
    uris = [str(n) for n in names.get_values_for_type(x509.UniformResourceIdentifier)]
    return {
        "subject": subject,
        "dnsNames": dns,
        "ipAddresses": ips,
        "emailAddresses": emails,
        "uris": uris,
        "sans": [
            *({"type": "dns", "value": v} for v in dns),
            *({"type": "ip", "value": v} for v in ips),
            *({"type": "email", "value": v} for v in emails),
            *({"type": "uri", "value": v} for v in uris),
        ],
        "publicKeyAlgorithm": _public_key_algorithm(csr.public_key()),
    }


# --- reading a rendered template -------------------------------------------------------

_SUBJECT_FIELDS = {
    "commonName": "common_name",
    "country": "country",
    "organization": "organization",
    "organizationalUnit": "organizational_unit",
    "locality": "locality",
    "province": "province",
    "streetAddress": "street_address",
    "postalCode": "postal_code",
    "serialNumber": "serial_number",
}
_SUBJECT_OIDS = {
    NameOID.COMMON_NAME: "commonName",
    NameOID.COUNTRY_NAME: "country",
    NameOID.ORGANIZATION_NAME: "organization",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "organizationalUnit",
    NameOID.LOCALITY_NAME: "locality",
    NameOID.STATE_OR_PROVINCE_NAME: "province",
    NameOID.STREET_ADDRESS: "streetAddress",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.SERIAL_NUMBER: "serialNumber",
}
# Plain lists merged into `sans`, in this order, after `sans` itself.
_SAN_LISTS: dict[str, SanType] = {
    "dnsNames": "dns",
    "ipAddresses": "ip",
    "emailAddresses": "email",
    "uris": "uri",
}
_FIELDS = frozenset(
    {
        "subject",
        "sans",
        *_SAN_LISTS,
        "keyUsage",
        "extKeyUsage",
        "basicConstraints",
        "crlDistributionPoints",
        "ocspServer",
        "issuingCertificateURL",
    }
)
# step-ca's x509util reads usage names case-insensitively.
_KEY_USAGE_NAMES = {name.lower(): name for name in KEY_USAGES}
_EXT_KEY_USAGE_NAMES = {name.lower(): name for name in EXT_KEY_USAGES}
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def _certificate(document: Any) -> CertificateTemplate:
    root = _object(document, "the template")
    _only(root, _FIELDS, "")
    sans = list(_sans(root.get("sans"), "sans"))
    for field, kind in _SAN_LISTS.items():
        sans += (_san(kind, v, field) for v in _strings(root.get(field), field))
    result = CertificateTemplate(
        subject=_subject(root.get("subject")),
        sans=tuple(dict.fromkeys(sans)),
        key_usage=_usages(root.get("keyUsage"), "keyUsage", _KEY_USAGE_NAMES),
        ext_key_usage=_usages(root.get("extKeyUsage"), "extKeyUsage", _EXT_KEY_USAGE_NAMES),
        basic_constraints=_basic_constraints(root.get("basicConstraints")),
        crl_distribution_points=_strings(
            root.get("crlDistributionPoints"), "crlDistributionPoints"
        ),
        ocsp_server=_strings(root.get("ocspServer"), "ocspServer"),
        issuing_certificate_url=_strings(
            root.get("issuingCertificateURL"), "issuingCertificateURL"
        ),
    )
    # Defence in depth: whatever a template (or its data) says, a leaf is never a CA.
    constraints = result.basic_constraints
    if (constraints is not None and constraints.is_ca) or "certSign" in result.key_usage:
        raise PolicyError("templates cannot issue CA certificates")
    return result


def _subject(value: Any) -> Subject:
    if value is None:
        return Subject()
    subject = _object(value, "subject")
    _only(subject, frozenset(_SUBJECT_FIELDS), "subject.")
    values: dict[str, Any] = {}
    for name, attribute in _SUBJECT_FIELDS.items():
        path = f"subject.{name}"
        if name == "commonName":
            common_name = subject.get(name)
            if common_name is not None and not isinstance(common_name, str):
                raise _wrong_type(path, "a string", common_name)
            values[attribute] = common_name or ""
        else:
            values[attribute] = _strings(subject.get(name), path)
    return Subject(**values)


def _sans(value: Any, path: str) -> tuple[SAN, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _wrong_type(path, "a list", value)
    sans = []
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        entry = _object(item, item_path)
        _only(entry, frozenset({"type", "value"}), f"{item_path}.")
        kind = entry.get("type")
        if kind not in _SAN_LISTS.values():
            raise BadRequest(
                f"template: {item_path}.type must be one of dns, ip, email, uri, got {kind!r}"
            )
        text = entry.get("value")
        if not isinstance(text, str):
            raise _wrong_type(f"{item_path}.value", "a string", text)
        sans.append(_san(cast(SanType, kind), text, item_path))
    return tuple(sans)


def _san(kind: SanType, value: str, path: str) -> SAN:
    if not value:
        raise BadRequest(f"template: {path}: a {kind} name cannot be empty")
    if kind == "ip" and not _is_ip(value):
        raise BadRequest(f"template: {path}: {value!r} is not an IP address")
    if kind == "uri" and not _URI_SCHEME.match(value):
        raise BadRequest(f"template: {path}: the URI {value!r} has no scheme")
    return SAN(kind, value)


def _usages(value: Any, path: str, names: Mapping[str, str]) -> tuple[str, ...]:
    found = []
    for name in _strings(value, path):
        canonical = names.get(name.lower())
        if canonical is None:
            allowed = ", ".join(names.values())
            raise BadRequest(f"template: {path}: unknown usage {name!r}; allowed: {allowed}")
        found.append(canonical)
    return tuple(dict.fromkeys(found))


def _basic_constraints(value: Any) -> BasicConstraints | None:
    if value is None:
        return None
    constraints = _object(value, "basicConstraints")
    _only(constraints, frozenset({"isCA", "maxPathLen"}), "basicConstraints.")
    is_ca = constraints.get("isCA", False)
    if not isinstance(is_ca, bool):
        raise _wrong_type("basicConstraints.isCA", "true or false", is_ca)
    max_path_len = constraints.get("maxPathLen")
    if max_path_len is not None:
        if isinstance(max_path_len, bool) or not isinstance(max_path_len, int):
            raise _wrong_type("basicConstraints.maxPathLen", "an integer", max_path_len)
        if max_path_len < -1:
            raise BadRequest("template: basicConstraints.maxPathLen must be -1 or more")
        if not is_ca and max_path_len > 0:
            raise BadRequest("template: basicConstraints.maxPathLen needs isCA true")
    return BasicConstraints(is_ca=is_ca, max_path_len=max_path_len)


def _strings(value: Any, path: str) -> tuple[str, ...]:
    """x509util's MultiString: absent, one string, or a list of strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise _wrong_type(path, "a string or a list of strings", value)


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(path, "an object", value)
    return value


def _only(value: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
    for name in value:
        if name not in allowed:
            raise BadRequest(f"template: unknown field {prefix + name!r}")


def _wrong_type(path: str, expected: str, value: Any) -> BadRequest:
    return BadRequest(f"template: {path} must be {expected}, got {_json_type(value)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _is_ip(value: str) -> bool:
    if "%" in value:  # Python accepts IPv6 scope ids, Go's ParseIP and certificates do not
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _san_type_of(value: str) -> SanType:
    if _is_ip(value):
        return "ip"
    if _URI_SCHEME.match(value):
        return "uri"
    if "@" in value:
        return "email"
    return "dns"


def _public_key_algorithm(key: object) -> str:
    # Go's x509.PublicKeyAlgorithm names, as x509util shows them.
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ECDSA"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return "Unknown"
