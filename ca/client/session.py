"""The client's side of a CA: which CA, which root it trusts, and how requests go to it.

`ledgerca bootstrap` leaves two files in the home (the same paths the CA itself uses, so a
CA's own home already holds its root): `config/client.toml` (the CA's URL, the root's
SHA-256 fingerprint, the root's path) and `certs/root_ca.crt`. Every later request pins that
root and nothing else: the system trust store plays no part.

A failed request becomes one `CAError` subclass carrying the CA's own message and the
request id, so the CLI prints one line an operator can match against the CA's log.
"""

from __future__ import annotations

import ssl
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from ca import __version__
from ca.errors import CAError, ConfigError
from ca.home import Home
from ca.keys.files import write_public_file

__all__ = [
    "BootstrapResult",
    "CAResponseError",
    "CAUnreachable",
    "ClientConfig",
    "Session",
    "TrustError",
    "bootstrap",
    "check_response",
    "client_config_path",
    "fingerprint_of",
    "load_session",
    "normalize_ca_url",
    "normalize_fingerprint",
]

CLIENT_CONFIG = "client.toml"
TIMEOUT = 30.0
REQUEST_ID = "X-Request-Id"


class CAResponseError(CAError):
    """The CA answered with an error: its `{"status","message"}` body, decoded."""

    def __init__(self, message: str, *, status: int, request_id: str | None) -> None:
        self.status = status
        self.request_id = request_id
        suffix = f"HTTP {status}" + (f", request id {request_id}" if request_id else "")
        super().__init__(f"the CA refused the request: {message} ({suffix})")


class CAUnreachable(CAError):
    """No answer: connection refused, timeout, TLS failure."""


class TrustError(CAError):
    """A root or a TLS certificate is not the one the operator asked to trust."""


@dataclass(frozen=True)
class ClientConfig:
    """`config/client.toml`: where the CA is and which root it must chain to."""

    ca_url: str
    fingerprint: str
    root: str = "certs/root_ca.crt"

    def to_toml(self) -> str:
        return tomli_w.dumps(
            {"ca_url": self.ca_url, "fingerprint": self.fingerprint, "root": self.root}
        )


def client_config_path(home: Home) -> Path:
    return home.config_dir / CLIENT_CONFIG


def normalize_ca_url(url: str) -> str:
    """`https://host[:port]` with no trailing slash; anything but https is refused."""
    parsed = httpx.URL(url.strip())
    if parsed.scheme != "https" or not parsed.host:
        raise ConfigError(f"the CA URL must look like https://host[:port], not {url!r}")
    if parsed.query or parsed.fragment:
        raise ConfigError(f"the CA URL must not carry a query or fragment: {url!r}")
    return str(parsed.copy_with(path=parsed.path.rstrip("/") or "/")).rstrip("/")


def normalize_fingerprint(text: str) -> str:
    """Lower-case hex of a SHA-256 fingerprint, with colons, dashes and spaces dropped."""
    cleaned = "".join(c for c in text.strip().lower() if c not in ":- ")
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ConfigError(
            f"{text!r} is not a SHA-256 fingerprint: expected 64 hex digits "
            "(colons and dashes allowed), as `ledgerca serve` prints it"
        )
    return cleaned


def fingerprint_of(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class Session:
    """A CA URL and the root its TLS certificate (and every chain it issues) must chain to."""

    ca_url: str
    root: x509.Certificate
    root_path: Path | None = None

    @property
    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def root_der(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.root)

    def http(self) -> httpx.Client:
        """An httpx client that trusts this root only and tags each request with an id."""
        return _client(self.ca_url, ssl.create_default_context(cadata=self.root_pem))


def _client(ca_url: str, verify: ssl.SSLContext | bool) -> httpx.Client:
    return httpx.Client(
        base_url=ca_url,
        verify=verify,
        timeout=TIMEOUT,
        headers={"User-Agent": f"ledgerca/{__version__}"},
        event_hooks={"request": [_add_request_id]},
    )


def _add_request_id(request: httpx.Request) -> None:
    request.headers.setdefault(REQUEST_ID, str(uuid.uuid4()))


@contextmanager
def reaching(ca_url: str) -> Iterator[None]:
    """Turn transport failures into one-line `CAUnreachable` / `TrustError` messages."""
    try:
        yield
    except httpx.ConnectError as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(
            exc.__context__, ssl.SSLCertVerificationError
        ):
            raise TrustError(
                f"the TLS certificate of {ca_url} does not chain to the trusted root "
                f"({_first_line(exc)}); if the CA was re-initialised, run `ledgerca bootstrap` "
                "again"
            ) from exc
        raise CAUnreachable(f"cannot connect to the CA at {ca_url}: {_first_line(exc)}") from exc
    except httpx.TimeoutException as exc:
        raise CAUnreachable(f"the CA at {ca_url} did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise CAUnreachable(f"request to the CA at {ca_url} failed: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def check_response(response: httpx.Response, *, expected: tuple[int, ...] = (200,)) -> Any:
    """The JSON body of an expected answer; otherwise raise `CAResponseError`."""
    request_id = response.headers.get(REQUEST_ID) or response.request.headers.get(REQUEST_ID)
    if response.status_code not in expected:
        raise CAResponseError(
            _error_message(response), status=response.status_code, request_id=request_id
        )
    try:
        return response.json()
    except ValueError:
        raise CAResponseError(
            "the answer is not JSON", status=response.status_code, request_id=request_id
        ) from None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return " ".join(body["message"].split())  # one line, whatever the server sent
    return response.reason_phrase or "error"


# -- local state -------------------------------------------------------------------------


def load_session(home: Home, *, ca_url: str | None = None, root: Path | None = None) -> Session:
    """The CA to talk to: options first, then `config/client.toml`, then the CA's own
    config when the CA lives in this home."""
    url = normalize_ca_url(ca_url) if ca_url else None
    root_path = root
    expected: str | None = None
    config = _read_client_config(home)
    if config is not None:
        url = url or config.ca_url
        if root_path is None:
            root_path = home.resolve(config.root)
            expected = config.fingerprint
    elif home.config_file.exists() and (url is None or root_path is None):
        own_url, own_root = _own_ca(home)
        url = url or own_url
        root_path = root_path or own_root
    if url is None or root_path is None:
        raise ConfigError(
            f"no CA configured in {home.path}: run `ledgerca bootstrap --ca-url URL "
            "--fingerprint FP` first (or give --ca-url and --root)"
        )
    certificate = _read_root(root_path)
    if expected is not None and fingerprint_of(certificate) != expected:
        raise TrustError(
            f"{root_path} has fingerprint {fingerprint_of(certificate)}, but "
            f"{client_config_path(home)} trusts {expected}: run `ledgerca bootstrap` again"
        )
    return Session(url, certificate, root_path)


def _read_client_config(home: Home) -> ClientConfig | None:
    path = client_config_path(home)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        return ClientConfig(
            ca_url=normalize_ca_url(str(raw["ca_url"])),
            fingerprint=normalize_fingerprint(str(raw["fingerprint"])),
            root=str(raw.get("root", ClientConfig.root)),
        )
    except KeyError as exc:
        raise ConfigError(f"{path} lacks {exc}: run `ledgerca bootstrap` again") from None


def _own_ca(home: Home) -> tuple[str, Path]:
    from ca.config import load_config  # only for a home that holds a CA

    config = load_config(home)
    port = config.address.rpartition(":")[2]
    host = config.dns_names[0] if config.dns_names else "localhost"
    host = f"[{host}]" if ":" in host else host
    return normalize_ca_url(f"https://{host}:{port}"), home.resolve(config.root_cert)


def _read_root(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"root certificate {path} not found: run `ledgerca bootstrap`") from None
    except OSError as exc:
        raise ConfigError(f"cannot read root certificate {path}: {exc.strerror}") from exc
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigError(f"{path} is not a PEM certificate") from None


# -- bootstrap ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapResult:
    ca_url: str
    fingerprint: str
    root_path: Path
    config_path: Path
    root_unchanged: bool


def bootstrap(home: Home, ca_url: str, fingerprint: str, *, force: bool = False) -> BootstrapResult:
    """Fetch the root by fingerprint, check it, check the CA's TLS chains to it, save both.

    The root is fetched over TLS *without* verification (nothing is trusted yet); the
    fingerprint the operator typed is what makes it trustworthy. Nothing is written unless
    every check passed.
    """
    url = normalize_ca_url(ca_url)
    wanted = normalize_fingerprint(fingerprint)
    with reaching(url), _client(url, verify=False) as insecure:
        try:
            body = check_response(insecure.get(f"/root/{wanted}"))
        except CAResponseError as exc:
            if exc.status != 404:
                raise
            raise TrustError(
                f"the CA at {url} has no root with fingerprint {wanted}: check the fingerprint "
                f"(HTTP 404, request id {exc.request_id})"
            ) from None
    root = _root_from_body(body, url)
    got = fingerprint_of(root)
    if got != wanted:
        raise TrustError(
            f"the CA at {url} sent a root with fingerprint {got}, not {wanted}: refusing to "
            "trust it (check the fingerprint, or whether something sits between you and the CA)"
        )
    session = Session(url, root)
    with reaching(url), session.http() as pinned:
        health = check_response(pinned.get("/health"))
    if not isinstance(health, dict) or health.get("status") != "ok":
        raise CAUnreachable(f"the CA at {url} is not healthy: {health!r}")
    return _save(home, session, force=force)


def _root_from_body(body: Any, url: str) -> x509.Certificate:
    pem = body.get("ca") if isinstance(body, dict) else None
    if not isinstance(pem, str):
        raise CAUnreachable(f"the CA at {url} answered /root without a certificate")
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise CAUnreachable(f"the CA at {url} sent a root that is not a PEM certificate") from None


def _save(home: Home, session: Session, *, force: bool) -> BootstrapResult:
    root_path = home.root_cert
    unchanged = False
    if root_path.exists():
        current = root_path.read_bytes()
        try:
            unchanged = fingerprint_of(x509.load_pem_x509_certificate(current)) == (
                session.fingerprint
            )
        except ValueError:
            unchanged = False
        if not unchanged and home.config_file.exists():
            # Replacing a CA's own root would break that CA, --force or not.
            raise ConfigError(
                f"{home.path} holds a CA whose root differs from the one at {session.ca_url}: "
                "bootstrap into another --home"
            )
        if not unchanged and not force:
            raise ConfigError(
                f"{root_path} already holds a different root: use --force to replace it"
            )
    home.config_dir.mkdir(parents=True, exist_ok=True)
    home.certs_dir.mkdir(parents=True, exist_ok=True)
    if not unchanged:
        write_public_file(root_path, session.root_pem.encode())
    config = ClientConfig(session.ca_url, session.fingerprint, home.relative(root_path))
    config_path = client_config_path(home)
    write_public_file(config_path, config.to_toml().encode())
    return BootstrapResult(session.ca_url, session.fingerprint, root_path, config_path, unchanged)
