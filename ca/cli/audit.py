"""`ledgerca audit …`: the ledger key, checkpoints, full verification and inclusion proofs.

Point in time and forensics (`audit at|show|find`) are in `ca.cli.audit_forensics`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ca.audit import checkpoints, proofs
from ca.audit.checkpointer import Checkpointer
from ca.audit.errors import AuditError
from ca.audit.ledger_key import (
    activation_event,
    active_ledger_key,
    create_key_file,
    load_public_key,
)
from ca.audit.verify import audit, check_exported
from ca.authority.initialize import actor
from ca.authority.state import load_snapshot
from ca.cli.ledger import progress_bar
from ca.cli.output import say
from ca.errors import ConfigError
from ca.home import Home
from ca.keys.files import PublicKey, write_public_file
from ca.keys.ids import public_pem
from ca.keys.refs import is_local, load_signer
from ca.passwords import obtain_password
from ca.runtime import Runtime, open_runtime
from ledger import IntegrityViolation
from projections.events import AUTHORITY_STREAM

FilePath = click.Path(path_type=Path, dir_okay=False)


@click.group(name="audit")
def audit_group() -> None:
    """Signed checkpoints, verification, inclusion proofs, point in time, forensics."""


def _password(runtime: Runtime, password_file: Path | None) -> bytes:
    if password_file is None and runtime.config.password_file:
        password_file = runtime.home.resolve(runtime.config.password_file)
    password, _ = obtain_password(password_file, what="CA keys", new=False)
    return password


def _read_pubkey(path: Path) -> PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read the ledger public key {path}: {exc.strerror}") from None
    return load_public_key(data, what=f"ledger public key {path}")


def _write(text: str, out: Path | None, what: str) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    write_public_file(out, text.encode())
    click.echo(f"{what} written to {out}", err=True)


# -- the ledger key ------------------------------------------------------------------------


@audit_group.command(name="init-key")
@click.option("--password-file", type=FilePath, help="The CA keys' password (default: config's).")
@click.option("--pkcs11-uri", help="Use this PKCS#11 key (RFC 7512 URI) instead of a new file.")
@click.pass_obj
def init_key(home: Home, password_file: Path | None, pkcs11_uri: str | None) -> None:
    """Create the ledger key of a CA initialised before checkpoints existed."""
    runtime = open_runtime(home)
    try:
        with runtime.engine.connect() as connection:
            existing = active_ledger_key(connection)
            snapshot = load_snapshot(connection)
        if existing is not None:
            raise ConfigError(f"the ledger already has a ledger key ({existing.key_id[:16]}…)")
        password = _password(runtime, password_file)
        intermediate = snapshot.intermediate
        if is_local(home, intermediate.key_ref):
            # The same password as the intermediate's, so `serve` can open both.
            load_signer(
                home, intermediate.key_ref, password, what="intermediate key",
                pkcs11=runtime.config.pkcs11,
            )  # fmt: skip
        created: Path | None = None
        if pkcs11_uri is not None:
            key_ref = {"type": "pkcs11", "uri": pkcs11_uri}
            public = load_signer(
                home, key_ref, password, what="ledger key", pkcs11=runtime.config.pkcs11
            ).public_key()
        else:
            private, key_ref = create_key_file(home, password)
            public, created = private.public_key(), home.resolve(key_ref["path"])
        version = runtime.store.stream_version(AUTHORITY_STREAM)
        try:
            (recorded,) = runtime.store.append(
                [activation_event(public, key_ref)],
                actor=actor("audit init-key"),
                expected={AUTHORITY_STREAM: version},
            )
        except BaseException:
            if created is not None:
                created.unlink(missing_ok=True)
            raise
    finally:
        runtime.close()
    click.echo(f"ledger key {recorded.data['key_id'][:16]}… active (position {recorded.position})")


@audit_group.command()
@click.option("--out", type=FilePath, help="Write the PEM here instead of standard output.")
@click.pass_obj
def pubkey(home: Home, out: Path | None) -> None:
    """The ledger's public key (PEM): what `check-proof --ledger-pubkey` needs."""
    runtime = open_runtime(home)
    try:
        with runtime.engine.connect() as connection:
            key = active_ledger_key(connection)
    finally:
        runtime.close()
    if key is None:
        raise ConfigError("the ledger has no ledger key: run `ledgerca audit init-key`")
    _write(public_pem(key.public_key), out, "ledger public key")


# -- checkpoints -----------------------------------------------------------------------------


@audit_group.command()
@click.option("--new", "new", is_flag=True, help="Sign and record a checkpoint of the ledger now.")
@click.option("--password-file", type=FilePath, help="With --new: the CA keys' password.")
@click.option("--out", type=FilePath, help="Write the checkpoint here (default stdout).")
@click.pass_obj
def checkpoint(home: Home, new: bool, password_file: Path | None, out: Path | None) -> None:
    """Export the latest signed checkpoint: keep it where the database operator cannot write."""
    runtime = open_runtime(home)
    try:
        if new:
            checkpointer = Checkpointer(
                store=runtime.store,
                home=home,
                password=_password(runtime, password_file),
                settings=runtime.config.checkpoint,
                actor=actor("audit checkpoint"),
                pkcs11=runtime.config.pkcs11,
            )
            with runtime.engine.connect() as connection:
                last = checkpoints.latest(connection)
            found = checkpointer.record(last)
            if found is None:
                raise ConfigError("another instance recorded a checkpoint at the same moment")
        else:
            with runtime.engine.connect() as connection:
                found = checkpoints.latest(connection)
            if found is None:
                raise ConfigError(
                    "no checkpoint recorded yet: start `ledgerca serve`, or use --new"
                )
    finally:
        runtime.close()
    _write(checkpoints.file_text(found), out, f"checkpoint of {found.tree_size} events")


# -- verify ---------------------------------------------------------------------------------


@audit_group.command()
@click.option("--checkpoint", "checkpoint_file", type=FilePath, help="An exported checkpoint.")
@click.option("--ledger-pubkey", type=FilePath, help="Check its signature with this key (PEM).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def verify(
    home: Home, checkpoint_file: Path | None, ledger_pubkey: Path | None, as_json: bool
) -> None:
    """Recompute the chain, the Merkle tree, every checkpoint and every projection."""
    exported = checkpoints.read_file(checkpoint_file) if checkpoint_file else None
    pinned = _read_pubkey(ledger_pubkey) if ledger_pubkey else None
    runtime = open_runtime(home, check_schema=False)
    try:
        if exported is not None:
            check_exported(exported, runtime.engine, pinned, what=f"checkpoint {checkpoint_file}")
        with progress_bar("verifying") as progress:
            report = audit(runtime.store, exported=exported, progress=progress)
    except IntegrityViolation as exc:
        where = f" at position {exc.position}" if exc.position is not None else ""
        if as_json:
            click.echo(json.dumps({"ok": False, "position": exc.position, "error": str(exc)}))
        else:
            click.echo(f"audit verification FAILED{where}: {exc}", err=True)
        sys.exit(1)
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(report.as_json()))
        return
    click.echo(f"chain: {report.events} events, head hash {report.head_hash}")
    click.echo(f"merkle root: {report.root_hash}")
    click.echo(f"checkpoints: {report.checkpoints} verified")
    if report.exported is not None:
        click.echo(f"exported checkpoint: consistent ({report.exported.tree_size} events)")
    click.echo(f"projections: {', '.join(report.projections)} equal a replay")
    click.echo("audit verified")


# -- proofs ---------------------------------------------------------------------------------


@audit_group.command()
@click.option("--serial", help="Prove the issuance of this certificate.")
@click.option("--position", type=int, help="Prove the event at this position.")
@click.option("--checkpoint", "checkpoint_file", type=FilePath, help="Prove against this one.")
@click.option("--out", type=FilePath, help="Write the proof here (default stdout).")
@click.pass_obj
def prove(
    home: Home,
    serial: str | None,
    position: int | None,
    checkpoint_file: Path | None,
    out: Path | None,
) -> None:
    """An inclusion proof of one event in a signed checkpoint's tree."""
    if (serial is None) == (position is None):
        raise click.UsageError("give exactly one of --serial and --position")
    chosen = checkpoints.read_file(checkpoint_file) if checkpoint_file else None
    runtime = open_runtime(home)
    try:
        if serial is not None:
            position = proofs.issuance_position(runtime.engine, serial)
        assert position is not None
        if chosen is not None:
            check_exported(chosen, runtime.engine, None, what=f"checkpoint {checkpoint_file}")
        else:
            with runtime.engine.connect() as connection:
                chosen = checkpoints.latest(connection)
            if chosen is None:
                raise ConfigError(
                    "no checkpoint recorded yet: use `ledgerca audit checkpoint --new`"
                )
        proof = proofs.build(runtime.engine, position, chosen)
    finally:
        runtime.close()
    _write(json.dumps(proof, indent=2, sort_keys=True) + "\n", out, f"proof of position {position}")


@audit_group.command(name="check-proof")
@click.argument("proof_file", metavar="PROOF", type=FilePath)
@click.option("--checkpoint", "checkpoint_file", type=FilePath, required=True)
@click.option("--ledger-pubkey", type=FilePath, required=True, help="The ledger key (PEM).")
def check_proof(proof_file: Path, checkpoint_file: Path, ledger_pubkey: Path) -> None:
    """Verify a proof offline: needs no CA, no database, only these three files."""
    proof = proofs.read_proof(proof_file)
    trusted = checkpoints.read_file(checkpoint_file)
    public = _read_pubkey(ledger_pubkey)
    checked = proofs.check(proof, trusted, public)
    what = (
        f"({checked.type}, {checked.stream})"
        if checked.type is not None
        else f"(hash {proof['hash'][:16]}…, without its record)"
    )
    say(
        f"proof verified: position {checked.position} {what} is in"
        f" the tree of {checked.tree_size} events with root {checked.root_hash}"
    )
