"""The CA's own TLS certificate: issued by its intermediate, recorded, renewed in-process.

Files: `certs/server_tls.crt` (leaf + intermediate) and `secrets/server_tls_key` (encrypted
with the CA password, 0600). Whichever worker notices first that a third of the lifetime is
left renews under a file lock; every worker then loads the new pair into its live
SSLContext, so open connections are not dropped and new handshakes get the new certificate.
"""

from __future__ import annotations

import fcntl
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ca.authority.authority import utcnow
from ca.home import Home
from ca.keys.files import encrypt_private_key, write_private_file, write_public_file

DEFAULT_LIFETIME = timedelta(hours=24)
_SHA256 = hashes.SHA256()
_PEM = serialization.Encoding.PEM


class Issuer(Protocol):
    def issue_server_certificate(
        self, public_key: ec.EllipticCurvePublicKey, dns_names: tuple[str, ...], lifetime: timedelta
    ) -> list[x509.Certificate]: ...

    def intermediate_fingerprint(self) -> str: ...


@dataclass
class ServerCertificate:
    home: Home
    issuer: Issuer
    dns_names: tuple[str, ...]
    password: bytes
    lifetime: timedelta = DEFAULT_LIFETIME
    clock: Callable[[], datetime] = utcnow
    """What "now" is when deciding on a renewal: the issuer's clock (see the worker)."""

    @property
    def cert_file(self) -> Path:
        return self.home.certs_dir / "server_tls.crt"

    @property
    def key_file(self) -> Path:
        return self.home.secrets_dir / "server_tls_key"

    @property
    def lock_file(self) -> Path:
        return self.home.certs_dir / ".server_tls.lock"

    def current(self) -> x509.Certificate | None:
        try:
            return x509.load_pem_x509_certificates(self.cert_file.read_bytes())[0]
        except (OSError, ValueError, IndexError):
            return None

    def renew_at(self, certificate: x509.Certificate) -> datetime:
        start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        return end - (end - start) / 3

    def needs_renewal(self, now: datetime) -> bool:
        certificate = self.current()
        if certificate is None or not self.key_file.exists():
            return True
        if now >= self.renew_at(certificate):
            return True
        # A rotated intermediate or changed DNS names: the old certificate no longer fits.
        chain = x509.load_pem_x509_certificates(self.cert_file.read_bytes())
        issuer_fp = chain[1].fingerprint(_SHA256).hex() if len(chain) > 1 else ""
        return issuer_fp != self.issuer.intermediate_fingerprint() or _names(certificate) != set(
            self.dns_names
        )

    def ensure(self, now: datetime | None = None) -> bool:
        """Issue a new certificate if needed; True if this call issued one."""
        now = now or self.clock()
        if not self.needs_renewal(now):
            return False
        with self._locked():
            if not self.needs_renewal(now):
                return False  # another worker renewed while we waited for the lock
            key = ec.generate_private_key(ec.SECP256R1())
            chain = self.issuer.issue_server_certificate(
                key.public_key(), self.dns_names, self.lifetime
            )
            write_private_file(self.key_file, encrypt_private_key(key, self.password))
            write_public_file(self.cert_file, b"".join(c.public_bytes(_PEM) for c in chain))
            return True

    def load_into(self, context: ssl.SSLContext) -> None:
        context.load_cert_chain(self.cert_file, self.key_file, password=self.password)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _names(certificate: x509.Certificate) -> set[str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names: set[str] = set(san.get_values_for_type(x509.DNSName))
    names.update(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return names
