"""`ledgerca crl …`: fetch and check the CA's CRL, export index.txt, sign the root's CRL."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ca.client.session import CAResponseError, Session, check_response, load_session, reaching
from ca.crl.builder import pem_crl
from ca.crl.index import index_entries
from ca.crl.root import Revocation, parse_reason, parse_serial, sign_root_crl
from ca.durations import parse_go_duration
from ca.errors import BadRequest, ConfigError
from ca.home import Home
from ca.keys.files import load_private_key, write_public_file
from ca.passwords import obtain_password
from ca.runtime import Runtime, open_runtime

FilePath = click.Path(path_type=Path, dir_okay=False)


@click.group(name="crl")
def crl_group() -> None:
    """Certificate revocation lists: the CA's CRL, index.txt, the offline root's CRL."""


# -- get ---------------------------------------------------------------------------------


@crl_group.command()
@click.option("--out", type=FilePath, help="Write the CRL to this file (DER, or PEM with --pem).")
@click.option("--pem", "as_pem", is_flag=True, help="Write PEM instead of DER.")
@click.option("--ca-url", help="The CA's URL (default: the one bootstrap saved).")
@click.option("--root", type=FilePath, help="The root to trust (default: the one bootstrap saved).")
@click.pass_obj
def get(home: Home, out: Path | None, as_pem: bool, ca_url: str | None, root: Path | None) -> None:
    """Fetch the CA's CRL, check its signature, and show what it says."""
    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        response = http.get("/1.0/crl")
        if response.status_code != 200:
            check_response(response)  # raises with the CA's message
        intermediates = check_response(http.get("/1.0/intermediates"), expected=(200, 201))
    try:
        crl = x509.load_der_x509_crl(response.content)
    except ValueError:
        raise CAResponseError(
            "the CA sent something that is not a DER CRL",
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
        ) from None
    issuer = _signer(crl, intermediates, session)
    if out is not None:
        write_public_file(out, pem_crl(response.content) if as_pem else response.content)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    next_update = crl.next_update_utc
    click.echo(f"{'CRL number:':<14}{number}")
    click.echo(f"{'Issuer:':<14}{crl.issuer.rfc4514_string()}")
    click.echo(f"{'This update:':<14}{_iso(crl.last_update_utc)}")
    click.echo(f"{'Next update:':<14}{_iso(next_update) if next_update else '-'}")
    click.echo(f"{'Entries:':<14}{len(crl)}")
    click.echo(f"{'Signature:':<14}valid (intermediate {issuer.subject.rfc4514_string()})")
    if out is not None:
        click.echo(f"{'Written to:':<14}{out}")


def _signer(
    crl: x509.CertificateRevocationList, body: object, session: Session
) -> x509.Certificate:
    """The intermediate (chaining to the pinned root) whose key signed `crl`, else an error."""
    pems = body.get("crts") if isinstance(body, dict) else None
    if not isinstance(pems, list):
        raise ConfigError(f"the CA at {session.ca_url} answered /intermediates without a list")
    for text in pems:
        try:
            intermediate = x509.load_pem_x509_certificate(str(text).encode())
            intermediate.verify_directly_issued_by(session.root)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if intermediate.subject == crl.issuer and crl.is_signature_valid(
            intermediate.public_key()  # type: ignore[arg-type]
        ):
            return intermediate
    raise ConfigError(
        f"the CRL from {session.ca_url} is not signed by any intermediate of the trusted root"
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- index -------------------------------------------------------------------------------


@crl_group.command()
@click.option("--out", type=FilePath, help="Write to this file instead of standard output.")
@click.option(
    "--all-issuers",
    is_flag=True,
    help="Every certificate in the ledger, not only the active intermediate's.",
)
@click.option("--at", "at_time", help="As the ledger stood then (RFC 3339, or a duration ago).")
@click.pass_obj
def index(home: Home, out: Path | None, all_issuers: bool, at_time: str | None) -> None:
    """Write the OpenSSL CA database (index.txt) of the certificates in the ledger.

    One line per certificate: status V/R/E, expiry, revocation time and reason, serial
    (hex), `unknown`, subject — what `openssl ca` and `openssl ocsp -index` read.
    """
    runtime = open_runtime(home)
    try:
        if at_time is not None:
            text = _index_at(runtime, at_time, all_issuers=all_issuers)
        else:
            from ca.authority.state import StateCache  # only for the active intermediate's id

            issuer = None if all_issuers else StateCache(runtime.engine).current().intermediate
            with runtime.engine.connect() as connection:
                lines = index_entries(
                    connection,
                    now=datetime.now(UTC),
                    issuer_key_id=issuer.key_id if issuer is not None else None,
                )
                text = "".join(line + "\n" for line in lines)
    finally:
        runtime.close()
    if out is None:
        sys.stdout.write(text)
    else:
        write_public_file(out, text.encode())
        click.echo(f"{text.count(chr(10))} certificate(s) written to {out}", err=True)


def _index_at(runtime: Runtime, when: str, *, all_issuers: bool) -> str:
    """index.txt from the ledger replayed up to `when` (see `ca.authority.pointintime`)."""
    from ca.authority.pointintime import View, moment_at
    from ca.cli.ledger import parse_since

    view = View(runtime.store, moment_at(runtime.engine, parse_since(when)))
    try:
        return view.index_text(all_issuers=all_issuers)
    finally:
        view.close()


# -- root --------------------------------------------------------------------------------


@crl_group.command()
@click.option("--root-cert", required=True, type=FilePath, help="The root's certificate (PEM).")
@click.option("--root-key", required=True, type=FilePath, help="The root's encrypted key.")
@click.option("--password-file", type=FilePath, help="File holding the root key's password.")
@click.option(
    "--revoke",
    "serials",
    multiple=True,
    metavar="SERIAL",
    help="Revoke this certificate (decimal, 0x… or aa:bb:… hex); repeat for several.",
)
@click.option(
    "--reason-code",
    "reasons",
    multiple=True,
    metavar="N",
    help="The reason for each --revoke, in order (0-10 or a name such as keyCompromise);"
    " one applies to all.",
)
@click.option(
    "--next-update",
    default="720h",
    show_default=True,
    help="How long the CRL is valid: sign a new one before then.",
)
@click.option("--number", type=click.IntRange(1), help="The CRL number (default: previous + 1).")
@click.option(
    "--previous",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The root's previous CRL (DER or PEM): its entries are kept, its number + 1 is used.",
)
@click.option("--out", required=True, type=FilePath, help="Where to write the CRL.")
@click.option("--pem", "as_pem", is_flag=True, help="Write PEM instead of DER.")
def root(
    root_cert: Path,
    root_key: Path,
    password_file: Path | None,
    serials: tuple[str, ...],
    reasons: tuple[str, ...],
    next_update: str,
    number: int | None,
    previous: Path | None,
    out: Path,
    as_pem: bool,
) -> None:
    """Sign the offline root's CRL, e.g. to revoke a compromised intermediate.

    Needs no ledger and no CA home: only the root's certificate and key. Publish the file
    where the intermediate's CRL Distribution Point (`init --intermediate-crl-url`) points.
    """
    revocations = _revocations(serials, reasons)
    try:
        lifetime = parse_go_duration(next_update)
    except BadRequest as exc:
        raise click.BadParameter(exc.message, param_hint="--next-update") from None
    certificate = _read_certificate(root_cert)
    previous_crl = _read_crl(previous) if previous is not None else None
    password, _ = obtain_password(password_file, what="root key", new=False)
    try:
        key_bytes = root_key.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the root key {root_key}: {exc.strerror or exc}") from exc
    key = load_private_key(key_bytes, password, what="root key")
    signed = sign_root_crl(
        root=certificate,
        root_key=key,
        revoke=revocations,
        now=datetime.now(UTC),
        next_update=lifetime,
        number=number,
        previous=previous_crl,
    )
    der = signed.crl.public_bytes(serialization.Encoding.DER)
    write_public_file(out, pem_crl(der) if as_pem else der)
    for serial in signed.already_listed:
        click.echo(f"serial {serial} was listed already: kept as it was", err=True)
    click.echo(f"Root CRL number {signed.number} with {len(signed.crl)} entries written to {out}")
    next_time = signed.crl.next_update_utc
    if next_time is not None:
        click.echo(f"Next update: {_iso(next_time)} (sign a new one before then)")


def _revocations(serials: tuple[str, ...], reasons: tuple[str, ...]) -> list[Revocation]:
    if reasons and not serials:
        raise click.UsageError("--reason-code needs --revoke")
    if len(reasons) not in (0, 1, len(serials)):
        raise click.UsageError(
            f"{len(serials)} --revoke but {len(reasons)} --reason-code: give one reason for"
            " all, or one per serial"
        )
    codes = [parse_reason(r) for r in reasons]
    if len(codes) == 1:
        codes = codes * len(serials)
    return [Revocation(parse_serial(s), codes[i] if codes else 0) for i, s in enumerate(serials)]


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise ConfigError(f"{path} is not a certificate") from None


def _read_crl(path: Path) -> x509.CertificateRevocationList:
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise ConfigError(f"{path} is not a CRL") from None
