"""`ledgerca audit at|show|find`: what the CA believed then, one certificate's story, and
the inventory."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from ca.audit import forensics
from ca.audit.errors import AuditError
from ca.authority.pointintime import Moment, View, moment_at, moment_of
from ca.cli.ledger import parse_since
from ca.cli.output import printable, say
from ca.home import Home
from ca.keys.files import write_public_file
from ca.runtime import Runtime, open_runtime

FilePath = click.Path(path_type=Path, dir_okay=False)


def resolve_moment(runtime: Runtime, when: str | None, position: int | None) -> Moment:
    """TIME (RFC 3339 or a duration ago) or --position N, exactly one."""
    if (when is None) == (position is None):
        raise click.UsageError("give a TIME or --position N (one of them)")
    if position is not None:
        return moment_of(runtime.engine, position)
    assert when is not None
    return moment_at(runtime.engine, parse_since(when))


@click.command()
@click.argument("when", metavar="TIME", required=False)
@click.option("--position", type=int, help="As of this ledger position instead of a time.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--crl", "crl_out", type=FilePath, help="Write the CRL in force then (DER).")
@click.option("--index", "index_out", type=FilePath, help="Write index.txt as of then.")
@click.pass_obj
def at(
    home: Home,
    when: str | None,
    position: int | None,
    as_json: bool,
    crl_out: Path | None,
    index_out: Path | None,
) -> None:
    """What the CA believed at TIME: provisioners, policies, keys, certificates by status."""
    runtime = open_runtime(home)
    try:
        moment = resolve_moment(runtime, when, position)
        view = View(runtime.store, moment)
    finally:
        runtime.close()
    try:
        summary = view.summary()
        if crl_out is not None:
            write_public_file(crl_out, view.crl_der())
        if index_out is not None:
            write_public_file(index_out, view.index_text().encode())
    finally:
        view.close()
    if as_json:
        say(json.dumps(summary, sort_keys=True))
        return
    counts = summary["certificates"]
    say(f"as of position {summary['position']} ({summary['time']}): {summary['name']}")
    say("provisioners: " + (", ".join(
        f"{p['name']} ({p['type']})" for p in summary["provisioners"]) or "none"))  # fmt: skip
    say("policies: " + (", ".join(summary["policies"]) or "none"))
    for key in summary["active_keys"]:
        say(f"active key: {key['role']:<18} {key['key_id']}")
    say(
        f"certificates: {counts['valid']} valid, {counts['revoked']} revoked,"
        f" {counts['expired']} expired"
    )
    for crl in summary["crls"]:
        say(f"crl: number {crl['number']} of {crl['this_update']} ({crl['entries']} entries)")
    for path, what in ((crl_out, "CRL"), (index_out, "index.txt")):
        if path is not None:
            say(f"{what} as of then written to {path}", err=True)


@click.command()
@click.option("--serial", required=True, help="The certificate (decimal, 0x… or aa:bb:…).")
@click.option("--json", "as_json", is_flag=True, help="Print the story as JSON.")
@click.pass_obj
def show(home: Home, serial: str, as_json: bool) -> None:
    """A certificate's whole story: issuance, who and from where, renewals, revocation."""
    runtime = open_runtime(home)
    try:
        story = forensics.story(runtime.engine, serial, now=datetime.now(UTC))
    finally:
        runtime.close()
    if as_json:
        say(json.dumps(story, sort_keys=True))
        return
    issued = story["issued"]
    say(f"serial:         {story['serial']} ({story['status']})")
    say(f"subject:        {story['subject']}")
    say(f"sans:           {', '.join(story['sans'])}")
    say(f"valid:          {story['not_before']} .. {story['not_after']}")
    say(f"issued:         position {issued['position']} at {issued['at']}")
    for label, key in (
        ("provisioner", "provisioner"), ("token id", "token_id"),
        ("authenticated", "authenticated_by"), ("mTLS serial", "mtls_serial"),
        ("admin", "admin"), ("remote address", "remote_address"),
        ("request id", "request_id"), ("instance", "instance"),
        ("issuer key", "issuer_key_id"),
    ):  # fmt: skip
        if issued.get(key):
            say(f"  {label + ':':<16}{issued[key]}")
    for earlier in story["renewed_from"]:
        say(f"came from:      {earlier['serial']} ({earlier['became']})")
    for later in story["renewed_to"]:
        say(f"continued as:   {later['serial']} ({later['from']})")
    revocation = story["revocation"]
    if revocation is not None:
        by = ",".join(f"{k}={v}" for k, v in sorted(revocation["by"].items()))
        say(
            f"revoked:        position {revocation['position']} at {revocation['at']},"
            f" reason {revocation['reason_code']} {revocation['reason'] or ''} by {by}"
        )


@click.command()
@click.option("--provisioner", help="Issued through this provisioner (name).")
@click.option("--san", help="A SAN or the CN matches this glob (*.internal).")
@click.option("--status", type=click.Choice(forensics.STATUSES))
@click.option("--since", help="Issued at or after (RFC 3339, or a duration ago: 24h).")
@click.option("--until", help="Issued at or before.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@click.pass_obj
def find(
    home: Home,
    provisioner: str | None,
    san: str | None,
    status: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """The inventory: certificates matching every filter, in issuance order."""
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive")
    now = datetime.now(UTC)
    filters = forensics.Filters(
        provisioner=provisioner,
        san=san,
        status=status,
        since=parse_since(since, now=now) if since else None,
        until=parse_since(until, now=now) if until else None,
    )
    if filters.since and filters.until and filters.since > filters.until:
        raise AuditError("--since is after --until: nothing can match")
    runtime = open_runtime(home)
    try:
        columns = ("serial", "status", "provisioner", "issued_at", "not_after", "subject", "sans")
        writer = csv.writer(sys.stdout) if as_csv else None
        if writer is not None:
            writer.writerow(columns)
        for found in forensics.find(runtime.engine, filters, now=now):
            if as_json:
                say(json.dumps(found, sort_keys=True))
            elif writer is not None:
                row = [*(found[c] for c in columns[:-1]), " ".join(found["sans"])]
                writer.writerow([printable(str(v)) if v is not None else "" for v in row])
            else:
                say(
                    f"{found['serial']:<40} {found['status']:<8} {found['provisioner'] or '-':<16}"
                    f" {found['issued_at']}  {found['subject']}"
                )
    finally:
        runtime.close()
