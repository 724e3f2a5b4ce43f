"""`ledgerca init` and `ledgerca up`."""

from __future__ import annotations

from pathlib import Path

import click

from ca.authority.initialize import (
    InitOptions,
    InitResult,
    initialize,
    write_intermediate_csr,
)
from ca.cli.serve import default_workers, start
from ca.config import DEFAULT_BODY_LIMIT
from ca.home import Home

PasswordFile = click.Path(path_type=Path)


def _report(result: InitResult) -> None:
    click.echo(f"CA initialized in {result.home}")
    click.echo(f"Database: {_redacted(result.database)}")
    for path in result.generated_passwords:
        click.echo(f"Generated password written to {path} (mode 0600): keep it safe")
    click.echo(f"Root fingerprint: {result.root_fingerprint}")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.command()
@click.option(
    "--name", required=False, help="The CA's name (subject of its root and intermediate)."
)
@click.option("--dns", "dns", required=False, help="DNS names or IPs of the CA, comma separated.")
@click.option("--address", required=False, help="Listen address HOST:PORT.")
@click.option(
    "--key-type", default="EC", show_default=True, help="EC (P-256), OKP (Ed25519) or RSA."
)
@click.option("--password-file", type=PasswordFile, help="File holding the CA keys' password.")
@click.option(
    "--provisioner", default="admin", show_default=True, help="The first JWK provisioner."
)
@click.option("--provisioner-password-file", type=PasswordFile, help="Its password file.")
@click.option("--db", "database", help="Database URL (default: SQLite in the home).")
@click.option("--force", is_flag=True, help="Replace an existing home.")
@click.option(
    "--intermediate-csr",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Only create an intermediate key and a CSR for an offline root to sign.",
)
@click.option(
    "--root-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Import: the offline root's certificate.",
)
@click.option(
    "--intermediate-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Import: the intermediate certificate the offline root signed.",
)
@click.option(
    "--intermediate-key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Import: the intermediate's encrypted key (its password via --password-file).",
)
@click.option(
    "--crl-url",
    metavar="URL",
    help="The CRL Distribution Point new leaves carry (crl_url in ca.toml): where relying"
    " parties fetch this CA's CRL, e.g. https://DNS:PORT/1.0/crl. Default: none.",
)
@click.option(
    "--intermediate-crl-url",
    help="Give the intermediate a CRL Distribution Point: where `ledgerca crl root` output"
    " will be published.",
)
@click.option(
    "--kms",
    metavar="PKCS11_URI",
    help="Keep the intermediate key in an HSM: 'pkcs11:token=LABEL;object=LABEL' (RFC 7512);"
    " created there unless the token has a key with that label.",
)
@click.option(
    "--pkcs11-module",
    metavar="PATH",
    help="The PKCS#11 module for --kms, e.g. /usr/lib/softhsm/libsofthsm2.so (kept in the"
    " config's [pkcs11] table).",
)
@click.option(
    "--pin-file",
    type=PasswordFile,
    help="File (mode 0600) holding the token's user PIN, for --kms (kept in the config).",
)
@click.option("--ssh", is_flag=True, help="Also create the SSH user and host CA keys.")
@click.pass_obj
def init(
    home: Home,
    name: str | None,
    dns: str | None,
    address: str | None,
    key_type: str,
    password_file: Path | None,
    provisioner: str,
    provisioner_password_file: Path | None,
    database: str | None,
    force: bool,
    intermediate_csr: Path | None,
    root_cert: Path | None,
    intermediate_cert: Path | None,
    intermediate_key: Path | None,
    crl_url: str | None,
    intermediate_crl_url: str | None,
    kms: str | None,
    pkcs11_module: str | None,
    pin_file: Path | None,
    ssh: bool,
) -> None:
    """Create a new CA: root, intermediate, first provisioner, home and ledger."""
    if intermediate_csr is not None:
        if kms:
            raise click.UsageError("--intermediate-csr writes a key file: it cannot use --kms")
        if not name:
            raise click.UsageError("--intermediate-csr needs --name")
        if intermediate_crl_url:
            raise click.UsageError(
                "--intermediate-crl-url needs the root key: with an offline root, add the"
                " CRL Distribution Point when the root signs the CSR"
            )
        csr, key, generated = write_intermediate_csr(
            intermediate_csr, name=name, kty=key_type, password_file=password_file
        )
        click.echo(f"Intermediate CSR written to {csr}")
        click.echo(f"Intermediate key (encrypted, 0600) written to {key}")
        if generated:
            click.echo(f"Generated password written to {key.with_name(csr.stem + '_password')}")
        click.echo(
            "Have the root sign the CSR, then run `ledgerca init --root-cert R"
            f" --intermediate-cert I --intermediate-key {key} ...`"
        )
        return
    missing = [
        flag
        for flag, value in (("--name", name), ("--dns", dns), ("--address", address))
        if not value
    ]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}")
    assert name and dns and address
    result = initialize(
        home.path,
        InitOptions(
            name=name,
            dns_names=tuple(n.strip() for n in dns.split(",") if n.strip()),
            address=address,
            key_type=key_type,
            password_file=password_file,
            provisioner=provisioner,
            provisioner_password_file=provisioner_password_file,
            database=database,
            force=force,
            root_cert=root_cert,
            intermediate_cert=intermediate_cert,
            intermediate_key=intermediate_key,
            crl_url=crl_url,
            intermediate_crl_url=intermediate_crl_url,
            kms=kms,
            pkcs11_module=pkcs11_module,
            pin_file=pin_file,
            ssh=ssh,
        ),
        say=click.echo,
    )
    _report(result)


@click.command()
@click.option("--name", default="ledgerca", show_default=True, help="Name for a new CA.")
@click.option(
    "--dns", default="localhost,127.0.0.1", show_default=True, help="DNS names for a new CA."
)
@click.option("--address", default="127.0.0.1:8443", show_default=True, help="Listen address.")
@click.option("--password-file", type=PasswordFile, help="The CA keys' password file.")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=default_workers, show_default="one per CPU"
)
@click.pass_obj
def up(
    home: Home, name: str, dns: str, address: str, password_file: Path | None, workers: int
) -> None:
    """Initialise the CA if its home is new, then serve it."""
    if not home.config_file.exists():
        result = initialize(
            home.path,
            InitOptions(
                name=name,
                dns_names=tuple(n.strip() for n in dns.split(",") if n.strip()),
                address=address,
                password_file=password_file,
            ),
            say=click.echo,
        )
        _report(result)
    start(
        home,
        address=None,
        workers=workers,
        password_file=password_file,
        body_limit=DEFAULT_BODY_LIMIT,
    )
