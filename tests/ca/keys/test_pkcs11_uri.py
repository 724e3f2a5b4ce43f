"""RFC 7512 PKCS#11 URIs: what names a key in a token, and what is refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ca.errors import ConfigError
from ca.keys.pkcs11_uri import parse_pkcs11_uri


def test_token_and_object_name_a_key() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=CA;object=intermediate")
    assert (uri.token, uri.object, uri.id, uri.type) == ("CA", "intermediate", None, None)


def test_percent_encoded_values_and_id_bytes_decode() -> None:
    uri = parse_pkcs11_uri(
        "PKCS11:token=My%20Token;object=int%3bkey;id=%01%ff%10;type=private;serial=abc123"
    )
    assert uri.token == "My Token"
    assert uri.object == "int;key"
    assert uri.id == b"\x01\xff\x10"
    assert uri.type == "private"
    assert uri.serial == "abc123"


def test_query_names_the_pin_file_and_module() -> None:
    uri = parse_pkcs11_uri(
        "pkcs11:token=CA;object=k?pin-source=file:/etc/ca/pin&module-path=/usr/lib/m.so"
    )
    assert uri.pin_file() == Path("/etc/ca/pin")
    assert uri.module_path == "/usr/lib/m.so"
    assert parse_pkcs11_uri("pkcs11:token=CA;id=%01?pin-source=file:///p").pin_file() == Path("/p")
    assert parse_pkcs11_uri("pkcs11:token=CA;id=%01?pin-source=secrets/pin").pin_file() == Path(
        "secrets/pin"
    )


def test_the_normalised_form_round_trips_and_records_the_exact_key() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=My Token;object=a/b?pin-source=file:/p")
    exact = uri.with_id(b"\x00\xab")
    text = str(exact)
    assert text == "pkcs11:token=My%20Token;object=a%2Fb;id=%00%ab;type=private?pin-source=file:/p"
    assert parse_pkcs11_uri(text) == exact


@given(
    token=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s),
    label=st.text(min_size=1, max_size=20),
    key_id=st.binary(min_size=1, max_size=20),
)
def test_any_labels_and_ids_survive_a_round_trip(token: str, label: str, key_id: bytes) -> None:
    from ca.keys.pkcs11_uri import PKCS11URI

    uri = PKCS11URI(token=token, object=label, id=key_id, type="private")
    assert parse_pkcs11_uri(str(uri)) == uri


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://hsm/key", "must start with pkcs11:"),
        ("pkcs11:object=intermediate", "must name the token"),
        ("pkcs11:token=CA", "must name the key"),
        ("pkcs11:token=CA;object=k;object=j", "object is given twice"),
        ("pkcs11:token=CA;object=k;colour=blue", "unknown attribute 'colour'"),
        ("pkcs11:token=CA;object=k;type=cert", "a signing key is type=private, not type=cert"),
        ("pkcs11:token=CA;object=k;type=banana", "type must be one of"),
        ("pkcs11:token=CA;id=%g1", "bad percent-encoding in id"),
        ("pkcs11:token=CA;object=%ff", "object is not UTF-8"),
        ("pkcs11:token=CA;object", "'object' is not name=value"),
        ("pkcs11:token=CA;object=k?pin-value=1234", "pin-value would put the PIN in the URI"),
    ],
)
def test_bad_uris_are_refused_with_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_pkcs11_uri(text)
    assert message in raised.value.message
    assert "\n" not in raised.value.message


def test_a_pin_source_that_is_not_a_file_is_refused() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=CA;object=k?pin-source=https://vault/pin")
    with pytest.raises(ConfigError, match="not supported"):
        uri.pin_file()


def test_vendor_attributes_are_kept_aside() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=CA;object=k;x-vendor=1")
    assert uri.extra == {"x-vendor": "1"}
