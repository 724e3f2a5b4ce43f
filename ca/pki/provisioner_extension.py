"""step-ca's provisioner extension (OID 1.3.6.1.4.1.37476.9000.64.1).

    SEQUENCE { INTEGER type, OCTET STRING name, OCTET STRING credentialID,
               SEQUENCE OF UTF8String keyValuePairs OPTIONAL }

step tools read it to find the provisioner of a certificate at renewal and revocation time,
so ledgerca writes it byte-compatibly. The DER is tiny and fixed, so it is encoded here
rather than pulling in an ASN.1 library.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

OID = x509.ObjectIdentifier("1.3.6.1.4.1.37476.9000.64.1")

PROVISIONER_TYPES = {
    "JWK": 1, "OIDC": 2, "GCP": 3, "AWS": 4, "Azure": 5, "ACME": 6,
    "X5C": 7, "K8sSA": 8, "SSHPOP": 9, "SCEP": 10, "Nebula": 11,
}  # fmt: skip


@dataclass(frozen=True)
class ProvisionerExtension:
    type: int
    name: str
    credential_id: str
    key_values: tuple[str, ...] = ()

    def to_extension(self) -> x509.UnrecognizedExtension:
        return x509.UnrecognizedExtension(OID, encode(self))


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def _integer(n: int) -> bytes:
    body = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True)
    return _tlv(0x02, body)


def encode(ext: ProvisionerExtension) -> bytes:
    parts = [
        _integer(ext.type),
        _tlv(0x04, ext.name.encode()),
        _tlv(0x04, ext.credential_id.encode()),
    ]
    if ext.key_values:
        parts.append(_tlv(0x30, b"".join(_tlv(0x0C, kv.encode()) for kv in ext.key_values)))
    return _tlv(0x30, b"".join(parts))


def _read(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """One TLV at `offset`: (tag, value, offset after it)."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    else:
        length = first
    end = offset + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[offset:end], end


def decode(data: bytes) -> ProvisionerExtension:
    """Parse the extension value; ValueError if it is not the structure above."""
    tag, body, end = _read(data, 0)
    if tag != 0x30 or end != len(data):
        raise ValueError("not a SEQUENCE")
    fields: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(body):
        field_tag, value, offset = _read(body, offset)
        fields.append((field_tag, value))
    if len(fields) < 3 or [t for t, _ in fields[:3]] != [0x02, 0x04, 0x04]:
        raise ValueError("unexpected provisioner extension layout")
    key_values: list[str] = []
    if len(fields) > 3 and fields[3][0] == 0x30:
        inner = fields[3][1]
        offset = 0
        while offset < len(inner):
            _, value, offset = _read(inner, offset)
            key_values.append(value.decode())
    return ProvisionerExtension(
        type=int.from_bytes(fields[0][1], "big", signed=True),
        name=fields[1][1].decode(),
        credential_id=fields[2][1].decode(),
        key_values=tuple(key_values),
    )


def from_certificate(certificate: x509.Certificate) -> ProvisionerExtension | None:
    try:
        extension = certificate.extensions.get_extension_for_oid(OID)
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    if not isinstance(value, x509.UnrecognizedExtension):
        return None
    return decode(value.value)
