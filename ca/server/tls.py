"""The server's SSLContext, built here because Hypercorn 0.18 cannot pin a maximum version.

TLS 1.2 minimum and 1.3 maximum by default, step-ca's two ECDHE-ECDSA suites for TLS 1.2,
no renegotiation, no compression, and client certificates optional at the TLS layer (the
endpoints that need one — renew, rekey, revoke — decide).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ca.config import TLSSettings
from ca.errors import ConfigError

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def tls_version(text: str) -> ssl.TLSVersion:
    try:
        return _VERSIONS[text]
    except KeyError:
        raise ConfigError(f"TLS version {text!r} is not supported: use 1.2 or 1.3") from None


def apply_protocol_settings(context: ssl.SSLContext, settings: TLSSettings) -> None:
    """Versions and TLS 1.2 suites; on a live context they apply to the next handshake."""
    minimum, maximum = tls_version(settings.min_version), tls_version(settings.max_version)
    if minimum > maximum:
        raise ConfigError("tls.min_version is above tls.max_version")
    try:
        # Only affects TLS 1.2; TLS 1.3 suites are all AEAD and fixed by OpenSSL.
        context.set_ciphers(":".join(settings.cipher_suites))
    except ssl.SSLError as exc:
        raise ConfigError(
            f"tls.cipher_suites: no usable cipher in {settings.cipher_suites}"
        ) from exc
    # Widen before narrowing, so the pair is never momentarily inverted (OpenSSL refuses).
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = maximum
    context.minimum_version = minimum


def server_context(
    settings: TLSSettings,
    *,
    cert_file: Path,
    key_file: Path,
    client_ca_file: Path,
    password: bytes | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    apply_protocol_settings(context, settings)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(["h2", "http/1.1"])
    context.load_cert_chain(cert_file, key_file, password=password)
    context.load_verify_locations(cafile=str(client_ca_file))
    context.verify_mode = ssl.CERT_OPTIONAL
    return context
