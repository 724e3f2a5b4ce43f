"""Serial numbers as requests write them: decimal, or hexadecimal with `0x`, to decimal text."""

from __future__ import annotations

import re

from ca.errors import BadRequest

__all__ = ["parse_serial", "parse_ssh_serial"]

_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")


def _number(text: str) -> int | None:
    if _DECIMAL.fullmatch(text):
        return int(text, 10)
    if _HEX.fullmatch(text):
        return int(text, 16)
    return None


def parse_serial(text: str) -> str:
    """An X.509 serial as step-ca keys it: decimal digits, from decimal or `0x` hexadecimal."""
    text = text.strip()
    if not text:
        raise BadRequest("missing serial")
    value = _number(text)
    if value is None:
        raise BadRequest(
            f"'{text[:80]}' is not a valid serial number - use a base 10 representation or a "
            "base 16 representation with '0x' prefix"
        )
    if value <= 0 or value.bit_length() > 160:  # RFC 5280: positive, at most 20 octets
        raise BadRequest(f"'{text[:80]}' is not a valid serial number")
    return str(value)


def parse_ssh_serial(text: str) -> str:
    """An SSH serial as a decimal string: a uint64 in decimal or `0x` hexadecimal."""
    text = text.strip()
    if not text:
        raise BadRequest("missing serial")
    value = _number(text)
    if value is None:
        raise BadRequest(f"'{text[:40]}' is not a valid SSH serial number")
    if not 0 < value < 2**64:
        raise BadRequest(f"'{text[:40]}' is not a valid SSH serial number (a uint64)")
    return str(value)
