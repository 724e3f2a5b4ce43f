"""Client verbs for a certificate's life after issuance: `renew`, `rekey`, `revoke`.

They behave like step's `step ca renew|rekey|revoke`: mTLS by default, a renewal token for
expired certificates or behind TLS-terminating proxies, CRT and KEY replaced atomically.
`renew --daemon` keeps a certificate fresh until SIGTERM, one log line per renewal.
"""

from __future__ import annotations

import random
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import click

from ca.cli.client import _ca_options, _provisioner_options
from ca.client.lifecycle import (
    Credentials,
    load_credentials,
    new_key_like,
    normalize_serial,
    renew_at,
    save,
)
from ca.client.lifecycle import rekey as rekey_certificate
from ca.client.lifecycle import renew as renew_certificate
from ca.client.lifecycle import revoke as revoke_certificate
from ca.client.session import Session, load_session, reaching
from ca.client.tokens import load_signer, token_claims
from ca.durations import parse_go_duration
from ca.errors import BadRequest, CAError, ConfigError
from ca.home import Home
from ca.passwords import is_interactive

ExistingFile = click.Path(path_type=Path, dir_okay=False, exists=True)
# The daemon never renews more often than this fraction of the lifetime, even when
# --expires-in asks for more than the certificate will ever have left.
MIN_INTERVAL_FRACTION = 20
RETRY_LIMIT = timedelta(minutes=1)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(text: str | None, flag: str) -> timedelta | None:
    if text is None:
        return None
    try:
        value = parse_go_duration(text)
    except BadRequest as exc:
        raise BadRequest(f"{flag}: {exc.message}") from None
    if value <= timedelta(0):
        raise BadRequest(f"{flag} must be positive")
    return value


def _confirm_overwrite(paths: list[Path], force: bool) -> None:
    if force or not is_interactive():
        return
    names = " and ".join(str(p) for p in paths)
    if not click.confirm(f"Overwrite {names}?", default=False):
        raise ConfigError("not overwriting: use --force to replace the files")


@click.command()
@click.argument("crt", type=ExistingFile)
@click.argument("key", type=ExistingFile)
@click.option(
    "--mtls/--no-mtls",
    default=True,
    show_default=True,
    help="Authenticate with the certificate over mTLS, or with a renewal token signed by its "
    "key (always the token for an expired certificate).",
)
@click.option("--force", is_flag=True, help="Overwrite CRT without asking; renew even if not due.")
@click.option("--daemon", is_flag=True, help="Keep renewing until SIGTERM.")
@click.option(
    "--expires-in",
    help="Renew when this much time is left (Go duration; default a third of the lifetime). "
    "Without --daemon, a certificate with more time left is not renewed unless --force.",
)
@_ca_options
@click.pass_obj
def renew(
    home: Home,
    crt: Path,
    key: Path,
    mtls: bool,
    force: bool,
    daemon: bool,
    expires_in: str | None,
    ca_url: str | None,
    root: Path | None,
) -> None:
    """Renew the certificate in CRT (its key in KEY): same names and lifetime, new serial.

    CRT is replaced atomically with the new leaf and intermediate; KEY is unchanged.
    """
    before_expiry = _duration(expires_in, "--expires-in")
    credentials = load_credentials(crt, key)
    session = load_session(home, ca_url=ca_url, root=root)
    if daemon:
        _daemon(session, credentials, mtls=mtls, expires_in=before_expiry)
        return
    now = _now()
    if before_expiry is not None and not force:
        due = credentials.leaf.not_valid_after_utc - before_expiry
        if now < due:
            expiry = _iso(credentials.leaf.not_valid_after_utc)
            click.echo(f"{crt} is not due for renewal: it expires {expiry}, beyond --expires-in")
            return
    _confirm_overwrite([crt], force)
    chain = renew_certificate(session, credentials, mtls=mtls, now=now)
    save(credentials, chain, credentials.key)
    click.echo(f"Your certificate has been saved in {crt}.")
    click.echo(f"Serial: {chain[0].serial_number} (renewed from {credentials.serial})")
    click.echo(f"Not after: {_iso(chain[0].not_valid_after_utc)}")


def _daemon(
    session: Session, credentials: Credentials, *, mtls: bool, expires_in: timedelta | None
) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rng = random.SystemRandom()
    last_renewal: datetime | None = None
    failures = 0
    click.echo(
        f"{_iso(_now())} renewing {credentials.crt} (serial {credentials.serial}) until SIGTERM",
    )
    while not stop.is_set():
        leaf = credentials.leaf
        period = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        due = renew_at(leaf, expires_in=expires_in, rng=rng)
        if last_renewal is not None:
            due = max(due, last_renewal + period / MIN_INTERVAL_FRACTION)
        if stop.wait(max(0.0, (due - _now()).total_seconds())):
            break
        now = _now()
        try:
            chain = renew_certificate(session, credentials, mtls=mtls, now=now)
            save(credentials, chain, credentials.key)
            credentials = load_credentials(credentials.crt, credentials.key_file)
        except (CAError, OSError) as exc:
            failures += 1
            wait = min(RETRY_LIMIT, period / MIN_INTERVAL_FRACTION) * min(failures, 4) / 4
            click.echo(
                f"{_iso(now)} renewal of {credentials.crt} failed: {exc}; "
                f"retrying in {int(wait.total_seconds())}s",
                err=True,
            )
            if stop.wait(wait.total_seconds()):
                break
            continue
        failures = 0
        last_renewal = now
        click.echo(
            f"{_iso(now)} renewed {credentials.crt}: serial {credentials.serial}, "
            f"not after {_iso(credentials.leaf.not_valid_after_utc)}"
        )
    click.echo(f"{_iso(_now())} stopped")


@click.command()
@click.argument("crt", type=ExistingFile)
@click.argument("key", type=ExistingFile)
@click.option("--force", is_flag=True, help="Overwrite CRT and KEY without asking.")
@_ca_options
@click.pass_obj
def rekey(
    home: Home, crt: Path, key: Path, force: bool, ca_url: str | None, root: Path | None
) -> None:
    """Replace the certificate's key: a new key of the same type in KEY, its certificate in
    CRT (over mTLS with the current pair)."""
    credentials = load_credentials(crt, key)
    session = load_session(home, ca_url=ca_url, root=root)
    _confirm_overwrite([crt, key], force)
    new_key = new_key_like(credentials.key)
    chain = rekey_certificate(session, credentials, new_key)
    save(credentials, chain, new_key)
    click.echo(f"Your certificate has been saved in {crt}.")
    click.echo(f"Your private key has been saved in {key}.")
    click.echo(f"Serial: {chain[0].serial_number} (rekeyed from {credentials.serial})")


@click.command()
@click.argument("serial")
@click.option(
    "--reason-code",
    type=click.IntRange(0, 10),
    default=0,
    show_default=True,
    help="RFC 5280 reason: 0 unspecified, 1 keyCompromise, 2 cACompromise, "
    "3 affiliationChanged, 4 superseded, 5 cessationOfOperation, 6 certificateHold, "
    "8 removeFromCRL, 9 privilegeWithdrawn, 10 aACompromise.",
)
@click.option("--reason", default="", help="Free text recorded with the revocation.")
@click.option("--cert", "cert", type=ExistingFile, help="Revoke over mTLS with this certificate.")
@click.option("--key", "key", type=ExistingFile, help="The key of --cert.")
@click.option("--token", "given_token", help="A revocation token (else one is minted here).")
@_provisioner_options
@_ca_options
@click.pass_obj
def revoke(
    home: Home,
    serial: str,
    reason_code: int,
    reason: str,
    cert: Path | None,
    key: Path | None,
    given_token: str | None,
    provisioner: str | None,
    provisioner_password_file: Path | None,
    ca_url: str | None,
    root: Path | None,
) -> None:
    """Revoke the certificate with SERIAL (decimal or 0x-hex).

    With --cert/--key the certificate revokes itself over mTLS; otherwise a one-time token
    of a JWK provisioner authorizes it (sub = the serial), as `step ca revoke` does.
    """
    if reason_code == 7:
        raise BadRequest("--reason-code 7 is not an RFC 5280 reason")
    if (cert is None) != (key is None):
        raise ConfigError("--cert and --key go together")
    decimal = normalize_serial(serial)
    session = load_session(home, ca_url=ca_url, root=root)
    if cert is not None and key is not None:
        credentials = load_credentials(cert, key)
        if credentials.serial != decimal:
            raise ConfigError(
                f"{cert} has serial {credentials.serial}, not {decimal}: over mTLS a "
                "certificate can revoke only itself"
            )
        revoke_certificate(
            session, decimal, reason_code=reason_code, reason=reason, credentials=credentials
        )
    else:
        token = given_token
        if token is None:
            with reaching(session.ca_url), session.http() as http:
                signer = load_signer(
                    http, name=provisioner, password_file=provisioner_password_file
                )
            token = signer.token(
                token_claims(
                    issuer=signer.name,
                    subject=decimal,
                    audience=f"{session.ca_url}/1.0/revoke",
                    sans=None,
                    root_der=session.root_der,
                    now=_now(),
                )
            )
        revoke_certificate(session, decimal, reason_code=reason_code, reason=reason, token=token)
    click.echo(f"Certificate with serial number {decimal} has been revoked.")
