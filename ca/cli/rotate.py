"""`ledgerca rotate intermediate`."""

from __future__ import annotations

from pathlib import Path

import click

from ca.errors import ConfigError
from ca.home import Home
from ca.passwords import obtain_password
from ca.runtime import open_runtime

PasswordFile = click.Path(path_type=Path)


@click.group()
def rotate() -> None:
    """Replace a CA key; every instance follows on its next request."""


@rotate.command()
@click.option(
    "--password-file",
    type=PasswordFile,
    help="Password for the new intermediate key (default: the config's, so running"
    " instances can load it).",
)
@click.option(
    "--root-password-file",
    type=PasswordFile,
    help="Password of the root key (default: the same as --password-file).",
)
@click.option(
    "--csr",
    "csr_out",
    type=click.Path(path_type=Path),
    help="Offline root: write a new key (pending) and its CSR here, then stop.",
)
@click.option(
    "--import",
    "import_cert",
    type=click.Path(path_type=Path),
    help="Offline root: activate the certificate the root signed for the pending key.",
)
@click.option(
    "--kms",
    metavar="PKCS11_URI",
    help="Create the new key in an HSM: 'pkcs11:token=LABEL;object=NEW_LABEL' (module and PIN"
    " from the config's [pkcs11] table).",
)
@click.pass_obj
def intermediate(
    home: Home,
    password_file: Path | None,
    root_password_file: Path | None,
    csr_out: Path | None,
    import_cert: Path | None,
    kms: str | None,
) -> None:
    """Activate a new intermediate and retire the old one (`authority.key_activated/retired`)."""
    from ca.authority.rotation import import_rotation, rotate_with_root, write_rotation_csr

    if csr_out and import_cert:
        raise click.UsageError("--csr and --import are two separate steps")
    if kms and (csr_out or import_cert):
        raise click.UsageError("--kms needs the root key at hand: not with --csr or --import")
    runtime = open_runtime(home)
    try:
        if password_file is None and runtime.config.password_file:
            password_file = home.resolve(runtime.config.password_file)
        if kms is not None:
            # The new key needs no password; only the root's is asked for.
            root_password, _ = obtain_password(
                root_password_file or password_file, what="root key", new=False
            )
            rotated = rotate_with_root(
                runtime, root_password=root_password, key_password=b"", kms=kms
            )
            click.echo(
                f"intermediate {rotated.new_key_id[:16]} active; {rotated.old_key_id[:16]} retired"
            )
            click.echo(f"new key in the token: {rotated.key_uri}")
            return
        key_password, _ = obtain_password(password_file, what="intermediate key", new=False)
        if csr_out is not None:
            pending = write_rotation_csr(runtime, csr_out, key_password=key_password)
            click.echo(f"CSR written to {csr_out}; pending key in {pending}")
            click.echo(
                "Have the root sign it, then run `ledgerca rotate intermediate --import CERT`"
            )
            return
        if import_cert is not None:
            rotated = import_rotation(runtime, import_cert, key_password=key_password)
        else:
            if root_password_file is None:
                root_password_file = password_file
            root_password, _ = obtain_password(root_password_file, what="root key", new=False)
            rotated = rotate_with_root(
                runtime, root_password=root_password, key_password=key_password
            )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        runtime.close()
    click.echo(f"intermediate {rotated.new_key_id[:16]} active; {rotated.old_key_id[:16]} retired")
    click.echo(f"new key: {rotated.key_path}; every instance signs with it from its next request")
