"""The parts of a leaf a template names: its subject, SANs and key usages, checked.

`ca.pki.issuer` assembles them into certificates. Pure: nothing here reads the clock or
the database.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Any

import idna
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.errors import BadRequest, PolicyError

_SUBJECT_OIDS = (
    ("country", NameOID.COUNTRY_NAME),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizational_unit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("province", NameOID.STATE_OR_PROVINCE_NAME),
    ("street_address", NameOID.STREET_ADDRESS),
    ("postal_code", NameOID.POSTAL_CODE),
    ("serial_number", NameOID.SERIAL_NUMBER),
)

EXTENDED_KEY_USAGES = {
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocspSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
}

_KEY_USAGE_ARGS = {
    "digitalSignature": "digital_signature",
    "contentCommitment": "content_commitment",
    "keyEncipherment": "key_encipherment",
    "dataEncipherment": "data_encipherment",
    "keyAgreement": "key_agreement",
    "certSign": "key_cert_sign",
    "crlSign": "crl_sign",
    "encipherOnly": "encipher_only",
    "decipherOnly": "decipher_only",
}


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value if v]


def subject_name(subject: Any) -> x509.Name:
    """Go's order: country … serialNumber, then commonName last (as step-ca encodes)."""
    attributes: list[x509.NameAttribute[str]] = []
    for field, oid in _SUBJECT_OIDS:
        attributes.extend(
            x509.NameAttribute(oid, v) for v in _values(getattr(subject, field, None))
        )
    common_name = getattr(subject, "common_name", "") or ""
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def check_dns_name(name: str) -> str:
    """A DNS SAN as RFC 5280 and RFC 1123 allow it, or BadRequest: LDH labels of 1-63
    characters (no leading or trailing hyphen), at most 253 in all, a leftmost `*` label for
    a wildcard, and IDNs only as A-labels (`xn--…`) that decode. Applied to every leaf's
    DNS names whether or not a name policy is set: a NUL, a space or a U-label in a SAN is
    read differently by different relying parties (and a U-label cannot be encoded at all).
    """
    shown = repr(name[:80])
    if not name.isascii():
        try:
            suggestion = idna.encode(name, uts46=True).decode()
        except idna.IDNAError:
            suggestion = ""
        hint = f": write it as the A-label {suggestion!r}" if suggestion else ""
        raise BadRequest(f"the DNS name {shown} is not ASCII{hint}")
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise BadRequest(f"{shown} is not a valid DNS name (letters, digits and hyphens only)")
    for label in labels:
        if label[:4].lower() == "xn--":
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise BadRequest(f"{shown} holds an invalid IDN label {label!r}") from None
    return name


def general_names(sans: Iterable[Any]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for san in sans:
        kind, value = san.type, san.value
        if kind == "dns":
            names.append(x509.DNSName(check_dns_name(value)))
        elif kind == "ip":
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        elif kind == "email":
            names.append(x509.RFC822Name(value))
        elif kind == "uri":
            names.append(x509.UniformResourceIdentifier(value))
        else:
            raise PolicyError(f"unsupported SAN type {kind!r}")
    return names


def key_usage(names: Sequence[str]) -> x509.KeyUsage:
    flags = {arg: False for arg in _KEY_USAGE_ARGS.values()}
    for name in names:
        flags[_KEY_USAGE_ARGS[name]] = True
    return x509.KeyUsage(**flags)
