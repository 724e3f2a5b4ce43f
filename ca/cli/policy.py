"""`ledgerca policy show|set|clear`: name policies as `policy.set` events."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ca.authority.initialize import actor
from ca.cli.output import say
from ca.errors import BadRequest
from ca.home import Home
from ca.runtime import open_runtime


def _append(home: Home, provisioner: str | None, policy: dict[str, Any] | None) -> int:
    from ca.authority.policies import set_policy

    runtime = open_runtime(home)
    try:
        command = "policy set" if policy is not None else "policy clear"
        event = set_policy(runtime.store, provisioner, policy, actor=actor(command))
    finally:
        runtime.close()
    return event.position


@click.group()
def policy() -> None:
    """Name policies: which names certificates may carry (deny beats allow)."""


@policy.command(name="set")
@click.argument("source", type=click.Path(path_type=Path, allow_dash=True))
@click.option(
    "--provisioner", help="Set the policy of this provisioner (default: the authority's)."
)
@click.pass_obj
def set_command(home: Home, source: Path, provisioner: str | None) -> None:
    """Set a policy from a JSON file (or - for stdin), step-ca's shape:
    {"allow": {"dns": ["*.internal"]}, "deny": {"dns": ["db.internal"]}}."""
    text = sys.stdin.read() if str(source) == "-" else source.read_text()
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"the policy is not valid JSON: {exc}") from None
    position = _append(home, provisioner, parsed)
    say(f"policy set for {provisioner or 'the authority'} at position {position}")


@policy.command()
@click.option("--provisioner", help="Clear this provisioner's policy (default: the authority's).")
@click.pass_obj
def clear(home: Home, provisioner: str | None) -> None:
    """Remove a policy: every name is allowed again at that level."""
    position = _append(home, provisioner, None)
    say(f"policy cleared for {provisioner or 'the authority'} at position {position}")


@policy.command()
@click.pass_obj
def show(home: Home) -> None:
    """The policies in force."""
    from ca.authority.state import load_snapshot

    runtime = open_runtime(home)
    try:
        with runtime.engine.connect() as connection:
            snapshot = load_snapshot(connection)
    finally:
        runtime.close()
    names = {f"provisioner/{p.id}": f"provisioner {p.name}" for p in snapshot.provisioners}
    for scope, value in sorted(snapshot.policies.items()):
        say(f"{names.get(scope, scope)}: {json.dumps(value.to_json(), sort_keys=True)}")
