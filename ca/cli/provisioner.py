"""`ledgerca provisioner list|add|update|remove`: provisioner changes as ledger events."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from ca.authority.initialize import actor
from ca.cli.output import say
from ca.errors import BadRequest
from ca.home import Home
from ca.passwords import obtain_password
from ca.runtime import open_runtime


def _json_option(value: str | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BadRequest(f"{what} must be a JSON object")
    return parsed


@click.group()
def provisioner() -> None:
    """Provisioners: who may ask for certificates, and on what terms."""


@provisioner.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_command(home: Home, as_json: bool) -> None:
    """The provisioners in force, in the order they were added."""
    from ca.authority.provisioners import list_all

    runtime = open_runtime(home)
    try:
        rows = list_all(runtime.store)
    finally:
        runtime.close()
    for row in rows:
        if as_json:
            say(json.dumps({"id": row.id, "name": row.name, "type": row.type,
                                   "kid": row.kid, "claims": json.loads(row.claims),
                                   "options": json.loads(row.options)}))  # fmt: skip
        else:
            say(f"{row.name:<24} {row.type:<6} kid={row.kid}  claims={row.claims}")


@provisioner.command()
@click.argument("name")
@click.option("--type", "kind", default="JWK", show_default=True, help="Provisioner type.")
@click.option(
    "--password-file",
    type=click.Path(path_type=Path),
    help="Password protecting the new key (else a prompt, or generated into secrets/).",
)
@click.option("--claims", help='Claims as JSON (or @FILE), e.g. {"maxTLSCertDuration": "8h"}.')
@click.option(
    "--x509-template",
    type=click.Path(path_type=Path, exists=True),
    help="A JSON certificate template file (see the README).",
)
@click.pass_obj
def add(home: Home, name: str, kind: str, password_file: Path | None, claims: str | None,
        x509_template: Path | None) -> None:  # fmt: skip
    """Add a provisioner (recorded as `provisioner.added`)."""
    from ca.authority.provisioners import SUPPORTED_TYPES, add_jwk, add_sshpop

    if kind.upper() not in SUPPORTED_TYPES:
        supported = " or ".join(SUPPORTED_TYPES)
        raise BadRequest(f"provisioner type {kind!r} is not supported yet: use {supported}")
    if kind.upper() == "SSHPOP":
        if password_file is not None or x509_template is not None:
            raise BadRequest("an SSHPOP provisioner has no key and no x509 template")
        runtime = open_runtime(home)
        try:
            event = add_sshpop(runtime.store, name, claims=_json_option(claims, "--claims"),
                               actor=actor("provisioner add"))  # fmt: skip
        finally:
            runtime.close()
        say(f"provisioner {name!r} (SSHPOP) added at position {event.position}")
        return
    options: dict[str, Any] = {}
    if x509_template is not None:
        options["x509"] = {"template": x509_template.read_text()}
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    password, generated = obtain_password(
        password_file, what=f"provisioner {name}", new=True,
        generate_to=home.secrets_dir / f"provisioner_{safe}_password",
    )  # fmt: skip
    runtime = open_runtime(home)
    try:
        event = add_jwk(runtime.store, name, password=password,
                        claims=_json_option(claims, "--claims") or {}, options=options,
                        actor=actor("provisioner add"))  # fmt: skip
    finally:
        runtime.close()
    say(f"provisioner {name!r} added (kid {event.data['key']['kid']}) at position {event.position}")
    if generated:
        say(f"Generated password written to {home.secrets_dir / f'provisioner_{safe}_password'}")


@provisioner.command()
@click.argument("name")
@click.option("--claims", help="Replace the claims (JSON or @FILE).")
@click.option(
    "--x509-template",
    type=click.Path(path_type=Path, exists=True),
    help="Replace the certificate template.",
)
@click.option("--no-x509-template", is_flag=True, help="Go back to the default template.")
@click.option("--rename", help="A new name.")
@click.pass_obj
def update(home: Home, name: str, claims: str | None, x509_template: Path | None,
           no_x509_template: bool, rename: str | None) -> None:  # fmt: skip
    """Change a provisioner (recorded as `provisioner.updated`)."""
    from ca.authority import provisioners as management

    changes: dict[str, Any] = {}
    parsed = _json_option(claims, "--claims")
    if parsed is not None:
        changes["claims"] = parsed
    if x509_template is not None and no_x509_template:
        raise click.UsageError("--x509-template and --no-x509-template exclude each other")
    if x509_template is not None:
        changes["options"] = {"x509": {"template": x509_template.read_text()}}
    elif no_x509_template:
        changes["options"] = {}
    if rename:
        changes["name"] = rename
    runtime = open_runtime(home)
    try:
        event = management.update(runtime.store, name, changes, actor=actor("provisioner update"))
    finally:
        runtime.close()
    say(f"provisioner {name!r} updated ({', '.join(sorted(changes))}) at position {event.position}")


@provisioner.command()
@click.argument("name")
@click.pass_obj
def remove(home: Home, name: str) -> None:
    """Remove a provisioner: its tokens are refused by every instance from the next request."""
    from ca.authority import provisioners as management

    runtime = open_runtime(home)
    try:
        event = management.remove(runtime.store, name, actor=actor("provisioner remove"))
    finally:
        runtime.close()
    say(f"provisioner {name!r} removed at position {event.position}")
