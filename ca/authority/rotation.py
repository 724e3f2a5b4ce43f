"""Rotating the intermediate: a new key and certificate become active through the ledger.

`authority.key_activated` for the new intermediate and `authority.key_retired` for the old
one are appended together; every instance signs with the new key on its next issuance (its
state cache follows state events), with no restart. Certificates issued under the old key
stay in the ledger and keep their issuer key id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca.authority.initialize import actor, key_activated
from ca.authority.state import ActiveKey, load_snapshot
from ca.errors import ConfigError
from ca.keys.files import (
    PrivateKey,
    encrypt_private_key,
    generate_private_key,
    load_private_key,
    write_private_file,
    write_public_file,
)
from ca.keys.ids import key_id
from ca.keys.pkcs11 import PKCS11Settings, create_key, delete_created_key, pkcs11_ref
from ca.keys.refs import file_ref, is_local, load_signer
from ca.pki.profiles import build_intermediate_csr, check_intermediate, sign_intermediate_csr
from ca.runtime import Runtime
from projections.events import AUTHORITY_STREAM, KeyRetired

PENDING_KEY = "secrets/intermediate_ca_pending_key"


@dataclass(frozen=True)
class Rotated:
    old_key_id: str
    new_key_id: str
    certificate: x509.Certificate
    key_path: Path | None
    key_uri: str | None = None
    """The new key's PKCS#11 URI when it was created in a token (`--kms`)."""


def _current(runtime: Runtime) -> tuple[ActiveKey, ActiveKey, int]:
    with runtime.engine.connect() as connection:
        snapshot = load_snapshot(connection)
    if not snapshot.roots or not snapshot.intermediates:
        raise ConfigError("the ledger has no active root or intermediate")
    return (
        snapshot.roots[-1],
        snapshot.intermediate,
        runtime.store.stream_version(AUTHORITY_STREAM),
    )


def _key_type(key: ActiveKey) -> str:
    from ca.authority.x509_issuance import key_type_of

    assert key.certificate is not None
    return key_type_of(key.certificate.public_key())


def _activate(
    runtime: Runtime,
    old: ActiveKey,
    certificate: x509.Certificate,
    key_ref: str | dict[str, str],
    version: int,
) -> None:
    reference = file_ref(key_ref) if isinstance(key_ref, str) else key_ref
    runtime.store.append(
        [
            key_activated("x509_intermediate", certificate, reference).to_new_event(),
            KeyRetired(key_id=old.key_id, role="x509_intermediate").to_new_event(),
        ],
        actor=actor("rotate intermediate"),
        expected={AUTHORITY_STREAM: version},
    )


def _install(runtime: Runtime, certificate: x509.Certificate, key_bytes: bytes) -> tuple[str, Path]:
    home = runtime.home
    new_id = key_id(certificate.public_key())  # type: ignore[arg-type]
    key_ref = f"secrets/intermediate_ca_key.{new_id[:16]}"
    key_path = home.resolve(key_ref)
    if key_path.exists():
        raise ConfigError(f"{key_path} already exists: this intermediate is already installed")
    write_private_file(key_path, key_bytes)
    write_public_file(home.intermediate_cert, certificate.public_bytes(serialization.Encoding.PEM))
    return key_ref, key_path


def rotate_with_root(
    runtime: Runtime,
    *,
    root_password: bytes,
    key_password: bytes,
    now: datetime | None = None,
    kms: str | None = None,
) -> Rotated:
    """The root key is at hand (`secrets/root_ca_key`): make, sign and activate a new key.

    With `kms` (a PKCS#11 URI with a new object label) the new key is created in that token,
    reached through the config's `[pkcs11]` table, and never leaves it.
    """
    root, old, version = _current(runtime)
    home = runtime.home
    if not is_local(home, root.key_ref):
        raise ConfigError(
            "the root key is not on this machine: use `rotate intermediate --csr OUT`, have the"
            " root sign it, then `rotate intermediate --import CERT`"
        )
    root_key = load_signer(
        home, root.key_ref, root_password, what="root key", pkcs11=runtime.config.pkcs11
    )
    assert root.certificate is not None and old.certificate is not None
    name = old.certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    ca_name = str(name[0].value) if name else runtime.config.name
    if kms is not None:
        return _rotate_into_token(runtime, kms, root, root_key, old, version, ca_name, now)
    new_key = generate_private_key(_key_type(old))
    csr = build_intermediate_csr(new_key, name=ca_name)
    certificate = sign_intermediate_csr(
        csr, root_cert=root.certificate, root_key=root_key, now=now or datetime.now(UTC)
    )
    key_ref, key_path = _install(runtime, certificate, encrypt_private_key(new_key, key_password))
    _activate(runtime, old, certificate, key_ref, version)
    return Rotated(old.key_id, key_id(new_key.public_key()), certificate, key_path)


def _rotate_into_token(
    runtime: Runtime,
    kms: str,
    root: ActiveKey,
    root_key: PrivateKey,
    old: ActiveKey,
    version: int,
    ca_name: str,
    now: datetime | None,
) -> Rotated:
    settings = runtime.config.pkcs11 or PKCS11Settings()
    in_token = create_key(kms, settings, runtime.home.path, kty=_key_type(old))
    if not in_token.created:
        raise ConfigError(
            f"the token already holds a key matching {kms}: give the new intermediate key"
            " a new object label"
        )
    try:
        assert root.certificate is not None
        certificate = sign_intermediate_csr(
            build_intermediate_csr(in_token.key, name=ca_name),
            root_cert=root.certificate,
            root_key=root_key,
            now=now or datetime.now(UTC),
        )
        _activate(runtime, old, certificate, pkcs11_ref(in_token.uri), version)
    except BaseException:
        delete_created_key(in_token)
        raise
    write_public_file(
        runtime.home.intermediate_cert, certificate.public_bytes(serialization.Encoding.PEM)
    )
    new_id = key_id(in_token.key.public_key())
    return Rotated(old.key_id, new_id, certificate, None, str(in_token.uri))


def write_rotation_csr(runtime: Runtime, out: Path, *, key_password: bytes) -> Path:
    """For an offline root: a pending key (encrypted) in the home and its CSR at `out`."""
    _, old, _ = _current(runtime)
    pending = runtime.home.resolve(PENDING_KEY)
    if pending.exists():
        raise ConfigError(f"a rotation is already pending ({pending}): import its certificate")
    assert old.certificate is not None
    name = old.certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
    key = generate_private_key(_key_type(old))
    csr = build_intermediate_csr(key, name=str(name[0].value) if name else runtime.config.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_public_file(out, csr.public_bytes(serialization.Encoding.PEM))
    write_private_file(pending, encrypt_private_key(key, key_password))
    return pending


def import_rotation(runtime: Runtime, certificate_file: Path, *, key_password: bytes) -> Rotated:
    """Activate the certificate the offline root signed for the pending key."""
    root, old, version = _current(runtime)
    pending = runtime.home.resolve(PENDING_KEY)
    if not pending.exists():
        raise ConfigError("no rotation is pending: run `rotate intermediate --csr OUT` first")
    try:
        certificate = x509.load_pem_x509_certificate(certificate_file.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {certificate_file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{certificate_file} is not a PEM certificate") from exc
    key_bytes = pending.read_bytes()
    key = load_private_key(key_bytes, key_password, what="pending intermediate key")
    assert root.certificate is not None
    check_intermediate(root.certificate, certificate, key)
    key_ref, key_path = _install(runtime, certificate, key_bytes)
    _activate(runtime, old, certificate, key_ref, version)
    pending.unlink()
    return Rotated(old.key_id, key_id(key.public_key()), certificate, key_path)
