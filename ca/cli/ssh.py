"""`ledgerca ssh ...`: the SSH CA's server verbs (init, rotate, krl) and client verbs
(certificate, renew, rekey, revoke, hosts, config)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import httpx

from ca.cli.client import _ca_options, _provisioner_options
from ca.cli.output import say
from ca.client.session import load_session, reaching
from ca.client.ssh import (
    certificate_from,
    certificate_path,
    post_ssh,
    read_certificate,
    read_private_key,
    read_public_key,
    ssh_sign_claims,
    sshpop_token,
)
from ca.client.tokens import list_provisioners, load_signer, token_claims
from ca.errors import ConfigError
from ca.home import Home
from ca.keys.files import write_public_file
from ca.passwords import obtain_password
from ca.pki.serials import parse_ssh_serial
from ca.runtime import open_runtime
from ca.ssh.certificates import parse_certificate

FilePath = click.Path(path_type=Path, dir_okay=False)


@click.group()
def ssh() -> None:
    """The SSH certificate authority: user and host certificates, KRL, client config."""


def _ca_password(home: Home, password_file: Path | None) -> bytes:
    runtime = open_runtime(home)
    try:
        if password_file is None and runtime.config.password_file:
            password_file = home.resolve(runtime.config.password_file)
    finally:
        runtime.close()
    password, _ = obtain_password(password_file, what="CA keys", new=False)
    return password


# -- server verbs --------------------------------------------------------------------------


@ssh.command("init")
@click.option("--password-file", type=FilePath, help="The CA keys' password (default: config).")
@click.option(
    "--key-type",
    type=click.Choice(["EC", "OKP"], case_sensitive=False),
    default="EC",
    show_default=True,
    help="EC (ECDSA P-256) or OKP (Ed25519).",
)
@click.pass_obj
def init(home: Home, password_file: Path | None, key_type: str) -> None:
    """Create and activate the SSH user and host CA keys of an existing CA."""
    from ca.authority.ssh_activation import enable_ssh

    password = _ca_password(home, password_file)
    runtime = open_runtime(home)
    try:
        files = enable_ssh(runtime, password, key_type)
    finally:
        runtime.close()
    for f in files:
        click.echo(f"{f.role}: key {f.key_path} (encrypted, 0600), public key {f.public_path}")


@ssh.command()
@click.argument("role", type=click.Choice(["user", "host"]))
@click.option("--password-file", type=FilePath, help="The CA keys' password (default: config).")
@click.option("--key-type", type=click.Choice(["EC", "OKP"], case_sensitive=False), default="EC")
@click.pass_obj
def rotate(home: Home, role: str, password_file: Path | None, key_type: str) -> None:
    """Activate a new SSH user or host CA key and retire the current one."""
    from ca.authority.ssh_activation import rotate_ssh_key

    password = _ca_password(home, password_file)
    runtime = open_runtime(home)
    try:
        new = rotate_ssh_key(
            runtime, "ssh_user" if role == "user" else "ssh_host", password, key_type
        )
    finally:
        runtime.close()
    click.echo(f"new {role} CA key {new.key_path}; public key {new.public_path}")
    click.echo("distribute the new public key; /ssh/federation still lists the retired one")


@ssh.command()
@click.option("--out", type=FilePath, required=True, help="Where to write the KRL.")
@_ca_options
@click.pass_obj
def krl(home: Home, out: Path, ca_url: str | None, root: Path | None) -> None:
    """Write the OpenSSH KRL of every revoked SSH certificate (for sshd's RevokedKeys).

    On the CA's machine it is built from the ledger; elsewhere (a client home, or with
    --ca-url) it is fetched from the CA's `/ssh/krl`.
    """
    if ca_url is None and home.config_file.exists():
        data, summary = _local_krl(home)
    else:
        data, summary = _remote_krl(home, ca_url, root)
    write_public_file(out, data)
    click.echo(f"{summary} written to {out}")


def _local_krl(home: Home) -> tuple[bytes, str]:
    from ca.ssh.inventory import revoked_serials
    from ca.ssh.krl import build_krl

    runtime = open_runtime(home)
    try:
        revoked = revoked_serials(runtime.engine)
        data = build_krl(
            revoked.by_ca_key,
            version=revoked.version,
            generated=datetime.now(UTC),
            comment=f"{runtime.config.name} SSH KRL",
        )
    finally:
        runtime.close()
    count = sum(len(s) for s in revoked.by_ca_key.values())
    return data, f"KRL version {revoked.version} with {count} revoked certificate(s)"


def _remote_krl(home: Home, ca_url: str | None, root: Path | None) -> tuple[bytes, str]:
    from ca.client.session import check_response
    from ca.ssh.krl import KRL_MAGIC

    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        response = http.get("/1.0/ssh/krl")
        if response.status_code != 200:
            check_response(response)
    if not response.content.startswith(KRL_MAGIC):
        raise ConfigError(f"the CA at {session.ca_url} sent something that is not a KRL")
    return response.content, f"KRL from {session.ca_url}"


# -- client verbs --------------------------------------------------------------------------


@ssh.command()
@click.argument("key_id")
@click.argument("public_key_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--principal", "principals", multiple=True, help="A principal (repeat).")
@click.option("--host", is_flag=True, help="A host certificate (default: a user certificate).")
@click.option("--not-before", default="", help="validAfter: RFC 3339 time or duration.")
@click.option("--not-after", default="", help="validBefore: RFC 3339 time or duration.")
@click.option("--token", "given_token", help="A one-time token (else one is minted here).")
@click.option("--force", is_flag=True, help="Overwrite an existing certificate file.")
@_provisioner_options
@_ca_options
@click.pass_obj
def certificate(
    home: Home,
    key_id: str,
    public_key_file: Path,
    principals: tuple[str, ...],
    host: bool,
    not_before: str,
    not_after: str,
    given_token: str | None,
    force: bool,
    provisioner: str | None,
    provisioner_password_file: Path | None,
    ca_url: str | None,
    root: Path | None,
) -> None:
    """Sign PUBLIC_KEY_FILE; write the certificate beside it as `<name>-cert.pub`."""
    out = certificate_path(public_key_file)
    if out.exists() and not force:
        raise ConfigError(f"{out} already exists: use --force to overwrite it")
    public_key = read_public_key(public_key_file)
    cert_type = "host" if host else "user"
    wanted = list(principals) or [key_id]
    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        ott = given_token
        if ott is None:
            signer = load_signer(http, name=provisioner, password_file=provisioner_password_file)
            base = token_claims(
                issuer=signer.name,
                subject=key_id,
                audience=f"{session.ca_url}/1.0/ssh/sign",
                sans=wanted,
                root_der=session.root_der,
                now=datetime.now(UTC),
            )
            ott = signer.token(
                ssh_sign_claims(
                    base,
                    cert_type=cert_type,
                    key_id=key_id,
                    principals=wanted,
                    valid_after=not_before,
                    valid_before=not_after,
                )
            )
        body = {
            "publicKey": public_key,
            "ott": ott,
            "certType": cert_type,
            "keyID": key_id,
            "principals": wanted,
            "validAfter": not_before,
            "validBefore": not_after,
        }
        line = certificate_from(post_ssh(http, "/1.0/ssh/sign", body))
    _write_certificate(out, line)


def _write_certificate(out: Path, line: str) -> None:
    write_public_file(out, (line + "\n").encode())
    cert = parse_certificate(line)
    click.echo(f"Certificate: {out}")
    click.echo(f"Serial: {cert.serial}")
    click.echo(f"Valid before: {datetime.fromtimestamp(cert.valid_before, UTC):%Y-%m-%dT%H:%M:%SZ}")


def _sshpop(
    http: httpx.Client, session_url: str, op: str, cert_file: Path, key_file: Path
) -> tuple[str, str]:
    """An SSHPOP token for the CA's SSHPOP provisioner, named as step names it: `iss` and
    the audience's `#sshpop/<name>` fragment."""
    listed = [p for p in list_provisioners(http) if p.get("type") == "SSHPOP"]
    if not listed:
        raise ConfigError("the CA has no SSHPOP provisioner: add one with "
                          "`ledgerca provisioner add sshpop --type SSHPOP`")  # fmt: skip
    name = str(listed[0].get("name", ""))
    line = read_certificate(cert_file)
    serial = str(parse_certificate(line).serial)
    token = sshpop_token(
        line,
        read_private_key(key_file),
        audience=f"{session_url}/1.0/ssh/{op}#sshpop/{name}",
        subject=serial,
        now=datetime.now(UTC),
        issuer=name,
    )
    return token, serial


@ssh.command()
@click.argument("cert_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("key_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--out", type=FilePath, help="Where to write the new certificate (default CERT).")
@_ca_options
@click.pass_obj
def renew(
    home: Home,
    cert_file: Path,
    key_file: Path,
    out: Path | None,
    ca_url: str | None,
    root: Path | None,
) -> None:
    """Renew a host certificate, proving possession of it and its KEY (SSHPOP)."""
    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        token, _ = _sshpop(http, session.ca_url, "renew", cert_file, key_file)
        line = certificate_from(post_ssh(http, "/1.0/ssh/renew", {"ott": token}))
    _write_certificate(out or cert_file, line)


@ssh.command()
@click.argument("cert_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("key_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("new_public_key", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_ca_options
@click.pass_obj
def rekey(
    home: Home,
    cert_file: Path,
    key_file: Path,
    new_public_key: Path,
    ca_url: str | None,
    root: Path | None,
) -> None:
    """A certificate like CERT (a host certificate) for NEW_PUBLIC_KEY, beside it."""
    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        token, _ = _sshpop(http, session.ca_url, "rekey", cert_file, key_file)
        body = {"ott": token, "publicKey": read_public_key(new_public_key)}
        line = certificate_from(post_ssh(http, "/1.0/ssh/rekey", body))
    _write_certificate(certificate_path(new_public_key), line)


@ssh.command()
@click.argument("serial")
@click.option("--reason", default="", help="Free-text reason, recorded in the ledger.")
@click.option("--reason-code", type=click.IntRange(0, 10), default=0, show_default=True)
@click.option("--token", "given_token", help="A one-time token (else one is minted here).")
@_provisioner_options
@_ca_options
@click.pass_obj
def revoke(
    home: Home,
    serial: str,
    reason: str,
    reason_code: int,
    given_token: str | None,
    provisioner: str | None,
    provisioner_password_file: Path | None,
    ca_url: str | None,
    root: Path | None,
) -> None:
    """Revoke the SSH certificate with SERIAL; it enters the KRL at once."""
    decimal = parse_ssh_serial(serial)
    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        ott = given_token
        if ott is None:
            signer = load_signer(http, name=provisioner, password_file=provisioner_password_file)
            ott = signer.token(
                token_claims(
                    issuer=signer.name,
                    subject=decimal,
                    audience=f"{session.ca_url}/1.0/ssh/revoke",
                    sans=None,
                    root_der=session.root_der,
                    now=datetime.now(UTC),
                )
            )
        body = {
            "serial": decimal,
            "ott": ott,
            "reasonCode": reason_code,
            "reason": reason,
            "passive": True,
        }
        post_ssh(http, "/1.0/ssh/revoke", body)
    click.echo(f"SSH certificate with serial number {decimal} has been revoked.")


@ssh.command()
@click.option("--json", "as_json", is_flag=True, help="Print step-ca's JSON.")
@_ca_options
@click.pass_obj
def hosts(home: Home, as_json: bool, ca_url: str | None, root: Path | None) -> None:
    """List hosts holding a valid, unrevoked host certificate."""
    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        from ca.client.session import check_response

        answer = check_response(http.get("/1.0/ssh/hosts"))
    if as_json:
        click.echo(json.dumps(answer))
        return
    for entry in answer.get("hosts", []) if isinstance(answer, dict) else []:
        say(entry.get("hostname", ""))


@ssh.command("check-host")
@click.argument("hostname")
@click.option("--verbose", is_flag=True, help="Print true or false.")
@_ca_options
@click.pass_obj
def check_host(
    home: Home, hostname: str, verbose: bool, ca_url: str | None, root: Path | None
) -> None:
    """Exit 0 if HOSTNAME holds a valid host certificate of this CA, else 1.

    What the `Match exec` line of `ssh config` runs, as step's `ssh check-host`: only the
    hosts it accepts get the CA's known_hosts; every other host keeps your own settings.
    """
    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        answer = post_ssh(http, "/1.0/ssh/check-host", {"type": "host", "principal": hostname})
    exists = answer.get("exists") is True
    if verbose:
        click.echo("true" if exists else "false")
    if not exists:
        sys.exit(1)


@ssh.command()
@click.option("--host", is_flag=True, help="Host side: sshd snippet and user CA keys.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Template data, as step's --set: Certificate= and Key= (host side), User=.",
)
@click.option("--pattern", default="*", show_default=True, help="Hosts the host CA may vouch for.")
@click.option("--write", is_flag=True, help="Write the files instead of printing them.")
@_ca_options
@click.pass_obj
def config(
    home: Home,
    host: bool,
    sets: tuple[str, ...],
    pattern: str,
    write: bool,
    ca_url: str | None,
    root: Path | None,
) -> None:
    """Print (or --write) the ssh_config / known_hosts (or sshd_config) files that trust
    this SSH CA.

    User side: a `Host *` snippet for ~/.ssh/config that includes HOME/ssh/config, whose
    `Match exec "ledgerca --home HOME ssh check-host %h"` block gives only the CA's hosts
    its known_hosts (HOME/ssh/known_hosts). Host side: `--set Certificate=NAME --set
    Key=NAME` (in /etc/ssh, or absolute paths) for the sshd_config snippet and the user
    CA keys.
    """
    from ca.client.ssh_templates import read_templates, write_template

    data: dict[str, str] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        data[key] = value
    kind = "host" if host else "user"
    if not host:
        # The Match exec line asks this home's CA, with no options: it must know one.
        load_session(home)
        data = {"Client": "ledgerca", "LedgercaHome": str(home.path), "hostPattern": pattern,
                **data}  # fmt: skip
    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        answer = post_ssh(http, "/1.0/ssh/config", {"type": kind, "data": data})
    for template in read_templates(answer, kind):
        if write:
            write_template(template)
            click.echo(f"{template.type} {template.path}")
            continue
        click.echo(f"# {template.name} ({template.type}) -> {template.path}")
        click.echo(template.content, nl=template.content[-1:] != "\n")
