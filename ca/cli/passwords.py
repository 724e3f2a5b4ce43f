"""`ledgerca change-password intermediate|root|ledger|provisioner NAME`."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from ca.audit.ledger_key import KEY_FILE as LEDGER_KEY_FILE
from ca.authority.initialize import actor
from ca.config import load_config
from ca.errors import ConfigError, NotFound
from ca.home import Home
from ca.keys.files import encrypt_private_key, load_private_key, write_private_file
from ca.passwords import obtain_password
from ca.provisioners.jwk_keys import reencrypt_provisioner_key
from ca.runtime import open_runtime
from projections.events import ProvisionerUpdated
from projections.provisioners import provisioners

PasswordFile = click.Path(path_type=Path)


@click.command(name="change-password")
@click.argument("what", type=click.Choice(["intermediate", "root", "ledger", "provisioner"]))
@click.argument("name", required=False)
@click.option("--password-file", type=PasswordFile, help="File holding the current password.")
@click.option("--new-password-file", type=PasswordFile, help="File holding the new password.")
@click.pass_obj
def change_password(
    home: Home,
    what: str,
    name: str | None,
    password_file: Path | None,
    new_password_file: Path | None,
) -> None:
    """Re-encrypt a key under a new password (atomic write, 0600)."""
    if what == "provisioner":
        if not name:
            raise click.UsageError("change-password provisioner needs the provisioner NAME")
        _provisioner(home, name, password_file, new_password_file)
        return
    config = load_config(home)
    path = {
        "intermediate": home.resolve(config.intermediate_key),
        "root": home.root_key,
        "ledger": home.resolve(LEDGER_KEY_FILE),  # signs checkpoints: same password as serve's
    }[what]
    if not path.exists():
        raise ConfigError(
            f"no {what} key at {path}"
            + (
                " (the root is offline: change its password where it lives)"
                if what == "root"
                else ""
            )
        )
    old, _ = obtain_password(password_file, what=f"{what} key", new=False)
    key = load_private_key(path.read_bytes(), old, what=f"{what} key")
    new, _ = obtain_password(new_password_file, what=f"{what} key (new)", new=True)
    write_private_file(path, encrypt_private_key(key, new))
    click.echo(f"{what} key at {path} re-encrypted with the new password")
    if what == "intermediate" and config.password_file:
        click.echo(
            f"note: the config's password_file ({config.password_file}) still holds the old"
            " password; start `serve` with --password-file pointing at the new one"
        )


def _provisioner(
    home: Home, name: str, password_file: Path | None, new_password_file: Path | None
) -> None:
    runtime = open_runtime(home)
    try:
        with runtime.engine.connect() as connection:
            row = connection.execute(
                select(provisioners.c.id, provisioners.c.encrypted_key).where(
                    provisioners.c.name == name
                )
            ).first()
        if row is None:
            raise NotFound(f"no provisioner named {name!r}")
        if not row.encrypted_key:
            raise ConfigError(f"provisioner {name!r} has no encrypted key")
        old, _ = obtain_password(password_file, what=f"provisioner {name}", new=False)
        new, _ = obtain_password(new_password_file, what=f"provisioner {name} (new)", new=True)
        encrypted = reencrypt_provisioner_key(row.encrypted_key, old, new, name=name)
        updated = ProvisionerUpdated(id=row.id, name=name, changes={"encrypted_key": encrypted})
        runtime.store.append(
            [updated.to_new_event()],
            actor=actor("change-password"),
            expected={updated.stream: runtime.store.stream_version(updated.stream)},
        )
    finally:
        runtime.close()
    click.echo(f"provisioner {name!r}: key re-encrypted; recorded as provisioner.updated")
