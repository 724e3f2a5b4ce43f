"""RFC 7512 PKCS#11 URIs: how a key in a token is named (`pkcs11:token=CA;object=intermediate`).

Only what naming a signing key needs is accepted: the token attributes, `object`, `id` and
`type` in the path; `pin-source` and `module-path` in the query (`x-` attributes are
ignored, anything else is refused rather than silently ignored). `pin-value` is refused on
purpose: a URI ends up in events, configs and shell histories, a PIN must not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

from ca.errors import ConfigError

__all__ = ["PKCS11URI", "parse_pkcs11_uri"]

_TOKEN_ATTRIBUTES = ("token", "manufacturer", "serial", "model")
_PATH_ATTRIBUTES = (*_TOKEN_ATTRIBUTES, "object", "id", "type")
_QUERY_ATTRIBUTES = ("pin-source", "module-path")
_OBJECT_TYPES = ("private", "public", "cert", "secret-key", "data")
# RFC 7512 §2.3: pchar minus ";" and "/" stays literal in a path value; "&" stays in queries.
_SAFE_PATH = "-._~!$'()*+,=:@&"
_SAFE_QUERY = "-._~!$'()*+,=:@/?;"


def _fail(uri: str, why: str) -> ConfigError:
    return ConfigError(f"invalid PKCS#11 URI {uri!r}: {why}")


@dataclass(frozen=True)
class PKCS11URI:
    """A parsed PKCS#11 URI; `str()` gives its normalised form (safe to record in events)."""

    token: str
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    pin_source: str | None = None
    module_path: str | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        path = [
            f"{name}={quote(value, safe=_SAFE_PATH)}"
            for name, value in (
                ("token", self.token),
                ("manufacturer", self.manufacturer),
                ("serial", self.serial),
                ("model", self.model),
                ("object", self.object),
            )
            if value is not None
        ]
        if self.id is not None:
            path.append("id=" + "".join(f"%{byte:02x}" for byte in self.id))
        if self.type is not None:
            path.append(f"type={self.type}")
        query = [
            f"{name}={quote(value, safe=_SAFE_QUERY)}"
            for name, value in (("pin-source", self.pin_source), ("module-path", self.module_path))
            if value is not None
        ]
        return "pkcs11:" + ";".join(path) + ("?" + "&".join(query) if query else "")

    def with_id(self, key_id: bytes) -> PKCS11URI:
        """The same URI naming exactly one key: its id, and `type=private`."""
        return PKCS11URI(
            token=self.token,
            object=self.object,
            id=key_id,
            type="private",
            manufacturer=self.manufacturer,
            serial=self.serial,
            model=self.model,
            pin_source=self.pin_source,
            module_path=self.module_path,
        )

    def with_object(self, label: str) -> PKCS11URI:
        """Another key in the same token, named `label` (no id: a new key gets its own)."""
        return PKCS11URI(
            token=self.token,
            object=label,
            type=self.type,
            manufacturer=self.manufacturer,
            serial=self.serial,
            model=self.model,
            pin_source=self.pin_source,
            module_path=self.module_path,
        )

    def pin_file(self) -> Path | None:
        """The file `pin-source` names (`file:/path`, `file:///path` or `file:relative`)."""
        if self.pin_source is None:
            return None
        source = self.pin_source
        if source.startswith("file://"):
            source = source[len("file://") :]
            if not source.startswith("/"):
                raise ConfigError(f"pin-source {self.pin_source!r}: a file:// URL needs /path")
        elif source.startswith("file:"):
            source = source[len("file:") :]
        elif "://" in source or source.startswith("|"):
            raise ConfigError(
                f"pin-source {self.pin_source!r} is not supported: use pin-source=file:/path"
            )
        if not source:
            raise ConfigError("pin-source names no file")
        return Path(source)


def _decode(uri: str, name: str, value: str) -> bytes:
    if "%" in value:
        # Every "%" must start a two-digit hex escape: unquote would pass a stray one through.
        for position, char in enumerate(value):
            if char == "%":
                escape = value[position + 1 : position + 3]
                if len(escape) != 2 or any(c not in "0123456789abcdefABCDEF" for c in escape):
                    raise _fail(uri, f"bad percent-encoding in {name}")
    return unquote_to_bytes(value)


def _text(uri: str, name: str, value: str) -> str:
    try:
        return _decode(uri, name, value).decode("utf-8")
    except UnicodeDecodeError:
        raise _fail(uri, f"{name} is not UTF-8") from None


def _pairs(uri: str, text: str, separator: str, allowed: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in text.split(separator):
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not eq or not name:
            raise _fail(uri, f"{item!r} is not name=value")
        if name == "pin-value":
            raise _fail(
                uri,
                "pin-value would put the PIN in the URI (and in the ledger):"
                " use pin-source=file:/path or a PIN file",
            )
        if name not in allowed and not name.startswith("x-"):
            raise _fail(uri, f"unknown attribute {name!r}")
        if name in pairs:
            raise _fail(uri, f"{name} is given twice")
        pairs[name] = value
    return pairs


def parse_pkcs11_uri(uri: str) -> PKCS11URI:
    """Parse an RFC 7512 URI naming a signing key; ConfigError says what is wrong with it."""
    uri = uri.strip()
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() != "pkcs11":
        raise _fail(uri, "it must start with pkcs11:")
    path, _, query = rest.partition("?")
    attrs = _pairs(uri, path, ";", _PATH_ATTRIBUTES)
    params = _pairs(uri, query, "&", _QUERY_ATTRIBUTES)
    text = {name: _text(uri, name, value) for name, value in attrs.items() if name != "id"}
    if not text.get("token"):
        raise _fail(uri, "it must name the token (token=LABEL)")
    key_id = _decode(uri, "id", attrs["id"]) if "id" in attrs else None
    if not text.get("object") and not key_id:
        raise _fail(uri, "it must name the key (object=LABEL and/or id=%XX…)")
    kind = text.get("type")
    if kind is not None and kind not in _OBJECT_TYPES:
        raise _fail(uri, f"type must be one of {', '.join(_OBJECT_TYPES)}, not {kind!r}")
    if kind not in (None, "private"):
        raise _fail(uri, f"a signing key is type=private, not type={kind}")
    options = {name: _text(uri, name, value) for name, value in params.items()}
    return PKCS11URI(
        token=text["token"],
        object=text.get("object") or None,
        id=key_id,
        type=kind,
        manufacturer=text.get("manufacturer"),
        serial=text.get("serial"),
        model=text.get("model"),
        pin_source=options.get("pin-source"),
        module_path=options.get("module-path"),
        extra={k: v for k, v in {**text, **options}.items() if k.startswith("x-")},
    )
