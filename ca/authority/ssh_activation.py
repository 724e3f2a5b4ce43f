"""Setting up and rotating the SSH CA keys of an existing CA (`ledgerca ssh init|rotate`).

Keys are encrypted with the CA password (the one `serve` loads keys with) and activated
through the ledger; a rotation appends the new key's activation and the old key's
retirement together, so every instance switches on its next request.
"""

from __future__ import annotations

from ca.authority.initialize import actor
from ca.authority.provisioners import ssh_enabled_events
from ca.authority.state import load_snapshot
from ca.errors import ConfigError
from ca.keys.ids import key_id
from ca.runtime import Runtime
from ca.ssh.keys import (
    ROLES,
    Role,
    SSHKeyFiles,
    activation_events,
    generate_ssh_key,
    write_ssh_key,
)
from ledger import NewEvent
from projections.events import AUTHORITY_STREAM, KeyRetired

__all__ = ["enable_ssh", "rotate_ssh_key"]


def _append(
    runtime: Runtime, files: list[SSHKeyFiles], events: list[NewEvent], command: str
) -> None:
    version = runtime.store.stream_version(AUTHORITY_STREAM)
    try:
        runtime.store.append(events, actor=actor(command), expected={AUTHORITY_STREAM: version})
    except BaseException:
        # Nothing was recorded: leave no key file the ledger does not know.
        for f in files:
            f.key_path.unlink(missing_ok=True)
            f.public_path.unlink(missing_ok=True)
        raise


def enable_ssh(runtime: Runtime, password: bytes, kty: str = "EC") -> list[SSHKeyFiles]:
    """Create and activate the SSH user and host CA keys; add the SSHPOP provisioner and
    enable SSH on the CA's first provisioner, as `step ca init --ssh` does."""
    with runtime.engine.connect() as connection:
        snapshot = load_snapshot(connection)
    if snapshot.ssh_user_keys or snapshot.ssh_host_keys:
        raise ConfigError("the SSH CA is already set up: use `ledgerca ssh rotate user|host`")
    files: list[SSHKeyFiles] = []
    try:
        for role in ROLES:
            files.append(write_ssh_key(runtime.home.path, role, generate_ssh_key(kty), password))
    except BaseException:
        for f in files:
            f.key_path.unlink(missing_ok=True)
        raise
    events = [*activation_events(files), *ssh_enabled_events(runtime.store)]
    _append(runtime, files, events, "ssh init")
    return files


def rotate_ssh_key(runtime: Runtime, role: Role, password: bytes, kty: str = "EC") -> SSHKeyFiles:
    """Activate a new `role` key and retire the current one."""
    with runtime.engine.connect() as connection:
        snapshot = load_snapshot(connection)
    current = snapshot.ssh_user_keys if role == "ssh_user" else snapshot.ssh_host_keys
    if not current:
        raise ConfigError("the SSH CA is not set up: run `ledgerca ssh init` first")
    key = generate_ssh_key(kty)
    new = write_ssh_key(
        runtime.home.path, role, key, password, suffix=f".{key_id(key.public_key())[:16]}"
    )
    events = [
        *activation_events([new]),
        *(KeyRetired(key_id=old.key_id, role=role).to_new_event() for old in current),
    ]
    _append(runtime, [new], events, f"ssh rotate {role.removeprefix('ssh_')}")
    return new
