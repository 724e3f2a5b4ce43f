"""`ledgerca init`: a new PKI, a new home and the ledger's first events — or nothing at all.

The home is assembled in a staging directory beside its final place and renamed into place
only after the ledger commit, so a failure at any step leaves no partial home and no events.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.exc import SQLAlchemyError

import migrations
from ca.audit.ledger_key import activation_event, create_key_file
from ca.authority.provisioners import sshpop_added
from ca.config import CAConfig, save_config
from ca.errors import ConfigError
from ca.home import EMBEDDED_DATABASE, Home
from ca.keys.files import (
    PrivateKey,
    encrypt_private_key,
    ensure_private_dir,
    generate_private_key,
    key_type,
    load_private_key,
    write_private_file,
    write_public_file,
)
from ca.keys.ids import key_id, public_pem
from ca.keys.pkcs11 import PKCS11Settings, create_key, delete_created_key, pkcs11_ref
from ca.keys.pkcs11_uri import parse_pkcs11_uri
from ca.keys.refs import file_ref
from ca.passwords import obtain_password
from ca.pki.profiles import (
    build_intermediate_csr,
    build_root,
    check_intermediate,
    fingerprint,
    pem,
    sign_intermediate_csr,
)
from ca.provisioners.jwk_keys import create_provisioner_key
from ca.ssh.keys import ssh_key_events
from ledger import EventStore, NewEvent, create_engine
from projections.events import (
    AUTHORITY_STREAM,
    AuthorityInitialized,
    KeyActivated,
    ProvisionerAdded,
)
from projections.runner import Projections

Say = Callable[[str], None]


@dataclass(frozen=True)
class InitOptions:
    name: str
    dns_names: tuple[str, ...]
    address: str
    key_type: str = "EC"
    password_file: Path | None = None
    provisioner: str = "admin"
    provisioner_password_file: Path | None = None
    database: str | None = None
    force: bool = False
    root_cert: Path | None = None
    intermediate_cert: Path | None = None
    intermediate_key: Path | None = None
    crl_url: str | None = None
    """The CRL Distribution Point the CA's leaves carry (`crl_url` in the config)."""
    intermediate_crl_url: str | None = None
    """A CRL Distribution Point for the intermediate: where the root's CRL is published."""
    kms: str | None = None
    """A PKCS#11 URI: the intermediate key is created (or found) in that token."""
    pkcs11_module: str | None = None
    pin_file: Path | None = None
    """The token's PIN file (recorded in the config for `serve`)."""
    ssh: bool = False
    """Also create the SSH user and host CA keys (`ca.ssh.keys`)."""

    def pkcs11_settings(self) -> PKCS11Settings | None:
        if self.kms is None:
            return None
        pin_file = str(self.pin_file.expanduser().absolute()) if self.pin_file else None
        return PKCS11Settings(module=self.pkcs11_module, pin_file=pin_file)


@dataclass
class InitResult:
    home: Path
    root_fingerprint: str
    database: str
    generated_passwords: list[Path] = field(default_factory=list)


def actor(command: str) -> dict[str, str]:
    """Who ran a local command: recorded with every event it writes."""
    return {"cli": command, "user": getpass.getuser(), "host": socket.gethostname()}


def validate(options: InitOptions) -> None:
    if not options.name.strip():
        raise ConfigError("--name must not be empty")
    if not options.dns_names or not all(n.strip() for n in options.dns_names):
        raise ConfigError("--dns needs at least one DNS name or IP address")
    _host, sep, port = options.address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {options.address!r} is not HOST:PORT")
    key_type(options.key_type)
    imported = (options.root_cert, options.intermediate_cert, options.intermediate_key)
    if any(imported) and not all(imported):
        raise ConfigError(
            "importing an intermediate needs --root-cert, --intermediate-cert and"
            " --intermediate-key together"
        )
    if options.crl_url is not None:
        check_crl_url(options.crl_url, "--crl-url")
    if options.intermediate_crl_url is not None:
        if options.root_cert is not None:
            raise ConfigError(
                "--intermediate-crl-url needs the root key, which an offline root keeps:"
                " add the CRL Distribution Point when the root signs the intermediate"
            )
        check_crl_url(options.intermediate_crl_url, "--intermediate-crl-url")
    if options.kms is None:
        if options.pkcs11_module is not None or options.pin_file is not None:
            raise ConfigError("--pkcs11-module and --pin-file go with --kms")
        return
    if options.root_cert is not None:
        raise ConfigError("--kms creates the intermediate key: it cannot import one as well")
    uri = parse_pkcs11_uri(options.kms)
    if uri.object is None:
        raise ConfigError(f"--kms {options.kms!r} needs object=LABEL: the label of the key")
    settings = options.pkcs11_settings()
    assert settings is not None
    settings.module_for(uri)


def check_crl_url(url: str, flag: str) -> None:
    """A CRL Distribution Point must be an absolute http(s) or ldap URL."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https", "ldap") or not parsed.netloc:
        raise ConfigError(f"{flag} {url!r} is not an http://, https:// or ldap:// URL")


def _check_database(url: str) -> None:
    """Refuse an unreachable database, or one that already holds a ledger, before any write."""
    engine = create_engine(url)
    try:
        with engine.connect():
            pass
        if migrations.current_revision(engine) is not None:
            migrations.upgrade(engine)
            if EventStore(engine).head().position > 0:
                raise ConfigError(
                    f"the database {engine.url.render_as_string(hide_password=True)}"
                    " already holds a ledger: point --db at a new database"
                )
    except SQLAlchemyError as exc:
        raise ConfigError(
            f"cannot reach the database {engine.url.render_as_string(hide_password=True)}:"
            f" {_first_line(getattr(exc, 'orig', None) or exc)}"
        ) from exc
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else exc.__class__.__name__


def initialize(home_path: Path, options: InitOptions, *, say: Say) -> InitResult:
    validate(options)
    home = Home(home_path)
    if home.exists() and not options.force:
        raise ConfigError(f"{home.path} already holds a CA: use --force to replace it")
    if options.database is not None:
        _check_database(options.database)
    settings = options.pkcs11_settings()
    if options.kms is not None and settings is not None:
        # A missing or readable-by-others PIN file stops init before any work.
        settings.pin_for(parse_pkcs11_uri(options.kms), home.path)

    home.path.parent.mkdir(parents=True, exist_ok=True)
    staging = Home(home.path.parent / f".{home.path.name}.init-{uuid.uuid4().hex[:8]}")
    undo: list[Callable[[], None]] = []
    try:
        result = _build(staging, home, options, say=say, undo=undo)
        _swap_in(staging.path, home.path, force=options.force)
    except BaseException:
        shutil.rmtree(staging.path, ignore_errors=True)
        for action in undo:
            action()
        raise
    return result


def _swap_in(staging: Path, final: Path, *, force: bool) -> None:
    if force and final.exists():
        retired = final.parent / f".{final.name}.replaced-{uuid.uuid4().hex[:8]}"
        final.rename(retired)
        staging.rename(final)
        shutil.rmtree(retired, ignore_errors=True)
        return
    try:
        # rename(2) refuses a non-empty target: of two concurrent inits, one loses here.
        staging.rename(final)
    except OSError as exc:
        raise ConfigError(f"{final} already holds a CA: use --force to replace it") from exc


def _build(
    staging: Home, home: Home, options: InitOptions, *, say: Say, undo: list[Callable[[], None]]
) -> InitResult:
    ensure_private_dir(staging.path)
    for directory in (staging.config_dir, staging.certs_dir, staging.secrets_dir, staging.db_dir):
        ensure_private_dir(directory)
    generated: list[Path] = []

    ca_password, made = obtain_password(
        options.password_file,
        what="CA keys",
        new=options.root_cert is None,
        generate_to=staging.secrets_dir / "ca_password",
    )
    ca_password_generated = made
    if made:
        generated.append(home.secrets_dir / "ca_password")
    now = datetime.now(UTC)

    root_key: PrivateKey | None
    intermediate_ref = file_ref("secrets/intermediate_ca_key")
    if options.kms is not None:
        root_key = generate_private_key(options.key_type)
        root = build_root(root_key, name=options.name, now=now)
        settings = options.pkcs11_settings()
        assert settings is not None
        in_token = create_key(options.kms, settings, home.path, kty=options.key_type)
        undo.append(lambda: delete_created_key(in_token))
        intermediate_ref = pkcs11_ref(in_token.uri)
        say(
            f"Intermediate key {'created' if in_token.created else 'found'} in the token:"
            f" {in_token.uri}"
        )
        intermediate = sign_intermediate_csr(
            build_intermediate_csr(in_token.key, name=options.name),
            root_cert=root,
            root_key=root_key,
            now=now,
            crl_url=options.intermediate_crl_url,
        )
        write_private_file(staging.root_key, encrypt_private_key(root_key, ca_password))
    elif options.root_cert is not None:
        root, intermediate, intermediate_key, key_bytes = _import_intermediate(options, ca_password)
        root_key = None
        write_private_file(staging.intermediate_key, key_bytes)
    else:
        root_key = generate_private_key(options.key_type)
        root = build_root(root_key, name=options.name, now=now)
        intermediate_key = generate_private_key(options.key_type)
        csr = build_intermediate_csr(intermediate_key, name=options.name)
        intermediate = sign_intermediate_csr(
            csr,
            root_cert=root,
            root_key=root_key,
            now=now,
            crl_url=options.intermediate_crl_url,
        )
        write_private_file(staging.root_key, encrypt_private_key(root_key, ca_password))
        write_private_file(
            staging.intermediate_key, encrypt_private_key(intermediate_key, ca_password)
        )
    write_public_file(staging.root_cert, pem(root).encode())
    write_public_file(staging.intermediate_cert, pem(intermediate).encode())
    # The ledger key signs checkpoints only: separate from every CA key (ca.audit.ledger_key).
    ledger_key, ledger_key_ref = create_key_file(staging, ca_password, kty=options.key_type)

    provisioner_password, made = obtain_password(
        options.provisioner_password_file,
        what=f"provisioner {options.provisioner}",
        new=True,
        generate_to=staging.secrets_dir / "provisioner_password",
    )
    if made:
        generated.append(home.secrets_dir / "provisioner_password")
    provisioner_key = create_provisioner_key(provisioner_password, kty="EC")

    database = options.database or EMBEDDED_DATABASE
    config = CAConfig(
        name=options.name,
        dns_names=options.dns_names,
        address=options.address,
        database=database,
        password_file="secrets/ca_password" if ca_password_generated else None,
        crl_url=options.crl_url,
        pkcs11=options.pkcs11_settings(),
    )
    save_config(staging.config_file, config)

    root_fp = fingerprint(root)
    root_ref = file_ref("secrets/root_ca_key") if root_key is not None else {"type": "offline"}
    events: list[NewEvent] = [
        AuthorityInitialized(name=options.name, root_fingerprint=root_fp).to_new_event(),
        key_activated("x509_root", root, root_ref).to_new_event(),
        key_activated("x509_intermediate", intermediate, intermediate_ref).to_new_event(),
        ProvisionerAdded(
            id=str(uuid.uuid4()),
            name=options.provisioner,
            type="JWK",
            key=provisioner_key.public_jwk,
            encrypted_key=provisioner_key.encrypted_key,
            claims={"enableSSHCA": True} if options.ssh else {},
            options={},
        ).to_new_event(),
        activation_event(ledger_key.public_key(), ledger_key_ref),
    ]
    if options.ssh:
        events += ssh_key_events(staging.path, ca_password, options.key_type)
        events.append(sshpop_added().to_new_event())
    # The embedded database is created inside the staging home and moves with it.
    engine_url = staging.database_url(database)
    engine = create_engine(engine_url)
    try:
        migrations.upgrade(engine)
        store = EventStore(engine, inline=Projections().inline_applier())
        store.append(events, actor=actor("init"), expected={AUTHORITY_STREAM: 0})
    except SQLAlchemyError as exc:
        raise ConfigError(f"cannot write the ledger: {exc}") from exc
    finally:
        engine.dispose()
    return InitResult(home.path, root_fp, home.database_url(database), generated)


def key_activated(
    role: str, certificate: x509.Certificate, key_ref: dict[str, str]
) -> KeyActivated:
    """The activation of an X.509 CA key (root or intermediate) with its certificate."""
    public = certificate.public_key()
    return KeyActivated(
        key_id=key_id(public),  # type: ignore[arg-type]
        role=role,
        certificate=pem(certificate),
        public_key=public_pem(public),  # type: ignore[arg-type]
        key_ref=key_ref,
        fingerprint=fingerprint(certificate),
    )


def _read_cert(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM certificate ({what})") from exc


def _import_intermediate(
    options: InitOptions, password: bytes
) -> tuple[x509.Certificate, x509.Certificate, PrivateKey, bytes]:
    assert options.root_cert and options.intermediate_cert and options.intermediate_key
    root = _read_cert(options.root_cert, "root certificate")
    intermediate = _read_cert(options.intermediate_cert, "intermediate certificate")
    try:
        key_bytes = options.intermediate_key.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the intermediate key {options.intermediate_key}: {exc.strerror or exc}"
        ) from exc
    key = load_private_key(key_bytes, password, what="intermediate key")
    check_intermediate(root, intermediate, key)
    return root, intermediate, key, key_bytes


def write_intermediate_csr(
    out: Path, *, name: str, kty: str, password_file: Path | None
) -> tuple[Path, Path, bool]:
    """For an offline root: a new intermediate key (encrypted) and its CSR.

    Returns (csr path, key path, whether the password was generated beside the key).
    """
    key_path = out.with_name(out.stem + "_key")
    password_path = out.with_name(out.stem + "_password")
    for path in (out, key_path):
        if path.exists():
            raise ConfigError(f"{path} already exists: choose another --intermediate-csr path")
    out.parent.mkdir(parents=True, exist_ok=True)
    key = generate_private_key(kty)
    password, generated = obtain_password(
        password_file, what="intermediate key", new=True, generate_to=password_path
    )
    csr = build_intermediate_csr(key, name=name)
    write_public_file(out, csr.public_bytes(serialization.Encoding.PEM))
    try:
        write_private_file(key_path, encrypt_private_key(key, password))
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out, key_path, generated
