"""`ledgerca admin list|add|remove`: the admins of the admin API, as events.

Run on a machine with access to the database (the operator's bootstrap path): the first
super admin is added here, later ones through the API as well.
"""

from __future__ import annotations

import click

from ca.authority import admins
from ca.authority.initialize import actor
from ca.authority.provisioners import find
from ca.cli.output import say
from ca.home import Home
from ca.runtime import open_runtime


@click.group(name="admin")
def admin_group() -> None:
    """Admins of the admin API (/admin/...): subjects bound to a provisioner."""


@admin_group.command(name="list")
@click.pass_obj
def list_command(home: Home) -> None:
    """The admins in force."""
    runtime = open_runtime(home)
    try:
        found, _ = admins.current(runtime.store)
    finally:
        runtime.close()
    for admin in found:
        say(f"{admin.id}  {admin.type:<11}  {admin.provisioner_name}  {admin.subject}")


@admin_group.command()
@click.argument("subject")
@click.option("--provisioner", required=True, help="The provisioner the admin authenticates with.")
@click.option("--super", "is_super", is_flag=True, help="A super admin (may manage admins).")
@click.pass_obj
def add(home: Home, subject: str, provisioner: str, is_super: bool) -> None:
    """Add an admin: SUBJECT is the certificate CN/SAN or token `sub` it authenticates as."""
    runtime = open_runtime(home)
    try:
        row = find(runtime.store, provisioner)
        admin = admins.add(
            runtime.store, subject=subject, provisioner_id=row.id, provisioner_name=row.name,
            admin_type=admins.SUPER_ADMIN if is_super else admins.ADMIN,
            actor=actor("admin add"),
        )  # fmt: skip
    finally:
        runtime.close()
    say(f"admin {admin.subject!r} ({admin.type}) added with id {admin.id}")


@admin_group.command()
@click.argument("admin")
@click.pass_obj
def remove(home: Home, admin: str) -> None:
    """Remove an admin, by id or subject (never the last super admin)."""
    runtime = open_runtime(home)
    try:
        removed = admins.remove(runtime.store, admin, actor=actor("admin remove"))
    finally:
        runtime.close()
    say(f"admin {removed.subject!r} removed")
