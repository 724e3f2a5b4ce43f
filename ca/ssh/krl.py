"""OpenSSH key revocation lists, built in Python from the ledger's revoked SSH serials.

The format is OpenSSH's PROTOCOL.krl: a header, then one certificates section per CA key,
each holding a serial-list subsection. sshd's `RevokedKeys FILE` and `ssh-keygen -Q -f FILE`
read it. Pure: the version, the time and the serials are arguments.

A section whose CA key is the empty string applies to every CA (PROTOCOL.krl §2: "ca_key
may be an empty string to indicate the certificate section applies to all CAs"; `ssh-keygen
-Q -l` prints it as "Wildcard CA"). Serials revoked without being issued here have no known
CA key, so they go there (`ANY_CA`): a certificate with that serial from any of our keys is
revoked.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from datetime import datetime

__all__ = ["ANY_CA", "KRL_MAGIC", "build_krl"]

ANY_CA = b""
"""The CA key of a certificates section that applies to every CA key."""

KRL_MAGIC = b"SSHKRL\n\0"
KRL_FORMAT_VERSION = 1
SECTION_CERTIFICATES = 1
CERT_SECTION_SERIAL_LIST = 0x20


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _certificates_section(ca_key_blob: bytes, serials: Iterable[int]) -> bytes:
    ordered = sorted(set(serials))
    serial_list = b"".join(struct.pack(">Q", serial) for serial in ordered)
    body = _string(ca_key_blob) + _string(b"")  # ca_key, reserved
    if ordered:
        body += bytes([CERT_SECTION_SERIAL_LIST]) + _string(serial_list)
    return bytes([SECTION_CERTIFICATES]) + _string(body)


def build_krl(
    revoked: Mapping[bytes, Iterable[int]],
    *,
    version: int,
    generated: datetime,
    comment: str = "",
) -> bytes:
    """A KRL revoking, for each CA key (its wire blob, or `ANY_CA`), the certificates with
    those serials.

    `version` must grow whenever the content changes (the ledger position of the newest
    revocation does); `generated` is the time it is built.
    """
    header = (
        KRL_MAGIC
        + struct.pack(">I", KRL_FORMAT_VERSION)
        + struct.pack(">Q", version)
        + struct.pack(">Q", max(0, int(generated.timestamp())))
        + struct.pack(">Q", 0)  # flags: none defined
        + _string(b"")  # reserved
        + _string(comment.encode("utf-8"))
    )
    sections = b"".join(
        _certificates_section(ca_key, serials) for ca_key, serials in sorted(revoked.items())
    )
    return header + sections
