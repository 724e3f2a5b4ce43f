"""`ledgerca`: one entry point for server and client verbs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from ca.cli.output import say
from ca.errors import CAError
from ca.home import Home, default_home
from ca.logs import configure_logging
from ledger import LedgerError


class LedgerCAGroup(click.Group):
    """Turns every expected failure into one clear line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (CAError, LedgerError) as exc:
            _fail(str(exc))
        except SQLAlchemyError as exc:
            detail = getattr(exc, "orig", None) or exc
            _fail(f"database error: {str(detail).strip().splitlines()[0]}")
        except OSError as exc:
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        except KeyboardInterrupt:
            _fail("interrupted")


def _fail(message: str) -> None:
    say(f"ledgerca: error: {message}", err=True)
    sys.exit(1)


@click.group(cls=LedgerCAGroup)
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The CA's home directory (default: $LEDGERCA_HOME or ~/.ledgerca).",
)
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    """ledgerca — a private CA whose every state change is an event in a verifiable ledger."""
    configure_logging()
    ctx.obj = Home((home or default_home()).expanduser().absolute())


def main() -> None:
    cli(prog_name="ledgerca")


# Every command, registered here and nowhere else; the command modules never import this one.
from ca.cli import (  # noqa: E402 - after `cli`, so the package is whole before they load
    admin,
    audit,
    audit_forensics,
    client,
    crl,
    database,
    ledger,
    lifecycle,
    passwords,
    policy,
    projections,
    provisioner,
    rotate,
    serve,
    setup,
    ssh,
)

COMMANDS: tuple[click.Command, ...] = (
    setup.init,
    setup.up,
    serve.serve,
    client.bootstrap,
    client.token,
    client.certificate,
    client.inspect,
    lifecycle.renew,
    lifecycle.rekey,
    lifecycle.revoke,
    passwords.change_password,
    provisioner.provisioner,
    admin.admin_group,
    policy.policy,
    ssh.ssh,
    crl.crl_group,
    rotate.rotate,
    audit.audit_group,
    ledger.ledger_group,
    projections.projections_group,
    database.db,
)
for _command in COMMANDS:
    cli.add_command(_command)
for _command in (audit_forensics.at, audit_forensics.show, audit_forensics.find):
    audit.audit_group.add_command(_command)
