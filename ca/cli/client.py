"""Client verbs: `ledgerca bootstrap`, `token`, `certificate` and `inspect`.

They talk to any CA that speaks step-ca's API, pinning the root saved by `bootstrap`.
`certificate` writes the private key unencrypted (PKCS#8 PEM, mode 0600), as
`step ca certificate` does: services read it at start-up without a password.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca.client.session import (
    CAResponseError,
    Session,
    check_response,
    fingerprint_of,
    load_session,
    reaching,
)
from ca.client.session import bootstrap as bootstrap_ca
from ca.client.tokens import load_signer, sign_audience, token_claims, token_validity
from ca.durations import format_go_duration, parse_time_duration
from ca.errors import BadRequest, CAError, ConfigError
from ca.home import Home
from ca.keys.files import PrivateKey, generate_private_key, write_private_file, write_public_file
from ca.pki.provisioner_extension import PROVISIONER_TYPES, from_certificate
from ca.pki.sans import split_sans
from ca.tokens import peek

F = TypeVar("F", bound=Callable[..., Any])
FilePath = click.Path(path_type=Path, dir_okay=False)


def _ca_options(command: F) -> F:
    command = click.option(
        "--root", type=FilePath, help="The root to trust (default: the one bootstrap saved)."
    )(command)
    command = click.option("--ca-url", help="The CA's URL (default: the one bootstrap saved).")(
        command
    )
    return command


def _provisioner_options(command: F) -> F:
    command = click.option(
        "--provisioner-password-file",
        type=FilePath,
        help="File holding the provisioner's password (else a prompt on a terminal).",
    )(command)
    command = click.option(
        "--provisioner", help="The JWK provisioner to use (default: the only one)."
    )(command)
    return command


@click.command()
@click.option("--ca-url", required=True, help="The CA's URL, https://host[:port].")
@click.option("--fingerprint", required=True, help="SHA-256 fingerprint of the CA's root (hex).")
@click.option("--force", is_flag=True, help="Replace a different root saved earlier.")
@click.pass_obj
def bootstrap(home: Home, ca_url: str, fingerprint: str, force: bool) -> None:
    """Trust a CA: fetch its root, check the fingerprint and the CA's TLS, save both."""
    result = bootstrap_ca(home, ca_url, fingerprint, force=force)
    verb = "is already in" if result.root_unchanged else "has been saved in"
    click.echo(f"The root certificate {verb} {result.root_path}")
    click.echo(f"The CA URL and root fingerprint have been saved in {result.config_path}")


@click.command()
@click.argument("subject")
@click.option("--san", multiple=True, help="A SAN the token authorizes (repeat; default SUBJECT).")
@_provisioner_options
@click.option(
    "--not-before",
    default="",
    help="When the token becomes valid: RFC 3339 time or duration from now (default now).",
)
@click.option(
    "--not-after",
    default="",
    help="When the token expires: RFC 3339 time or duration from now (default 5m, at most 1h).",
)
@click.option("--admin", is_flag=True, help="A token for the admin API (audience …/admin).")
@_ca_options
@click.pass_obj
def token(
    home: Home,
    subject: str,
    san: tuple[str, ...],
    provisioner: str | None,
    provisioner_password_file: Path | None,
    not_before: str,
    not_after: str,
    admin: bool,
    ca_url: str | None,
    root: Path | None,
) -> None:
    """Print a one-time token for a certificate for SUBJECT (as `step ca token` does), or
    with --admin a token authenticating admin SUBJECT to the admin API.

    --not-before/--not-after bound the token, as in step's CLI; the certificate's validity is
    chosen when it is requested (`ledgerca certificate --not-after`).
    """
    now = datetime.now(UTC)
    nbf, exp = token_validity(now, not_before=not_before, not_after=not_after)
    session = load_session(home, ca_url=ca_url, root=root)
    with reaching(session.ca_url), session.http() as http:
        signer = load_signer(http, name=provisioner, password_file=provisioner_password_file)
    claims = token_claims(
        issuer=signer.name,
        subject=subject,
        audience=f"{session.ca_url}/admin" if admin else sign_audience(session.ca_url),
        sans=list(san),
        root_der=session.root_der,
        now=now,
        not_before=nbf,
        not_after=exp,
    )
    click.echo(signer.token(claims))


@click.command()
@click.argument("subject")
@click.argument("crt", type=FilePath)
@click.argument("key", type=FilePath)
@click.option("--san", multiple=True, help="A SAN for the certificate (repeat; default SUBJECT).")
@click.option("--token", "given_token", help="A one-time token (else one is minted here).")
@click.option(
    "--kty",
    type=click.Choice(["EC", "OKP", "RSA"], case_sensitive=False),
    default="EC",
    show_default=True,
    help="EC (P-256), OKP (Ed25519) or RSA (3072 bits).",
)
@click.option("--not-before", default="", help="Certificate start: RFC 3339 time or duration.")
@click.option("--not-after", default="", help="Certificate end: RFC 3339 time or duration.")
@_provisioner_options
@click.option("--force", is_flag=True, help="Overwrite CRT and KEY if they exist.")
@_ca_options
@click.pass_obj
def certificate(
    home: Home,
    subject: str,
    crt: Path,
    key: Path,
    san: tuple[str, ...],
    given_token: str | None,
    kty: str,
    not_before: str,
    not_after: str,
    provisioner: str | None,
    provisioner_password_file: Path | None,
    force: bool,
    ca_url: str | None,
    root: Path | None,
) -> None:
    """Get a certificate for SUBJECT: write the chain to CRT and a new key to KEY.

    KEY is an unencrypted PKCS#8 PEM file (mode 0600), as `step ca certificate` writes it.
    """
    _check_outputs(crt, key, force=force)
    for flag, value in (("--not-before", not_before), ("--not-after", not_after)):
        try:
            parse_time_duration(value)
        except BadRequest as exc:
            raise BadRequest(f"{flag}: {exc.message}") from None
    session = load_session(home, ca_url=ca_url, root=root)
    sans = list(san) or _token_sans(given_token) or [subject]
    private_key = generate_private_key(kty)
    csr = build_csr(private_key, subject, sans)
    csr_der = csr.public_bytes(serialization.Encoding.DER)
    with reaching(session.ca_url), session.http() as http:
        ott = given_token
        if ott is None:
            signer = load_signer(http, name=provisioner, password_file=provisioner_password_file)
            ott = signer.token(
                token_claims(
                    issuer=signer.name,
                    subject=subject,
                    audience=sign_audience(session.ca_url),
                    sans=sans,
                    root_der=session.root_der,
                    now=datetime.now(UTC),
                    csr_der=csr_der,
                )
            )
        body: dict[str, Any] = {
            "csr": csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            "ott": ott,
        }
        if not_before:
            body["notBefore"] = not_before
        if not_after:
            body["notAfter"] = not_after
        response = http.post("/1.0/sign", json=body)
    chain = _chain_from(check_response(response, expected=(200, 201)), session)
    leaf = chain[0]
    if leaf.public_key() != private_key.public_key():
        raise CAResponseError(
            "the certificate does not carry the requested key",
            status=response.status_code,
            request_id=response.headers.get("X-Request-Id"),
        )
    write_private_file(
        key,
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_public_file(crt, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    click.echo(f"Certificate: {crt}")
    click.echo(f"Private key: {key} (unencrypted, mode 0600)")
    click.echo(f"Serial: {leaf.serial_number} (0x{leaf.serial_number:x})")
    click.echo(f"Not after: {_iso(leaf.not_valid_after_utc)}")


def _check_outputs(crt: Path, key: Path, *, force: bool) -> None:
    if crt.absolute() == key.absolute():
        raise ConfigError("CRT and KEY must be different files")
    if force:
        return
    for path in (crt, key):
        if path.exists() or path.is_symlink():
            raise ConfigError(f"{path} already exists: use --force to overwrite it")


def _token_sans(given_token: str | None) -> list[str]:
    """The SANs a given token authorizes: the CSR must carry exactly those."""
    if given_token is None:
        return []
    try:
        sans = peek(given_token).claims.get("sans")
    except CAError as exc:
        raise BadRequest(f"--token: {exc.message}") from None
    if isinstance(sans, list) and all(isinstance(s, str) for s in sans):
        return list(sans)
    return []


def build_csr(key: PrivateKey, subject: str, sans: list[str]) -> x509.CertificateSigningRequest:
    """CN = subject; SANs typed as step types them (ip, uri, email, else dns)."""
    names: list[x509.GeneralName] = []
    for san in split_sans(sans):
        match san.type:
            case "ip":
                names.append(x509.IPAddress(ipaddress.ip_address(san.value)))
            case "uri":
                names.append(x509.UniformResourceIdentifier(san.value))
            case "email":
                names.append(x509.RFC822Name(san.value))
            case _:
                names.append(x509.DNSName(san.value))
    try:
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        )
    except ValueError as exc:
        raise BadRequest(f"cannot use {subject!r} as the certificate subject: {exc}") from None
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def _chain_from(body: Any, session: Session) -> list[x509.Certificate]:
    pems: Any = body.get("certChain") if isinstance(body, dict) else None
    if not pems and isinstance(body, dict):
        pems = [p for p in (body.get("crt"), body.get("ca")) if p]
    if not isinstance(pems, list) or not pems or not all(isinstance(p, str) for p in pems):
        raise ConfigError(f"the CA at {session.ca_url} answered /sign without a certificate")
    try:
        return [x509.load_pem_x509_certificate(p.encode()) for p in pems]
    except ValueError:
        raise ConfigError(f"the CA at {session.ca_url} sent a malformed certificate") from None


# -- inspect -----------------------------------------------------------------------------


@click.command()
@click.argument("crt", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect(crt: Path, as_json: bool) -> None:
    """Show what a certificate (the first of a PEM bundle, or DER) says."""
    certificates = read_certificates(crt)
    summary = describe(certificates[0])
    summary["bundle"] = len(certificates)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    for label, value in _text_lines(summary):
        click.echo(f"{label + ':':<22}{value}")


def read_certificates(path: Path) -> list[x509.Certificate]:
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise ConfigError(f"{path} holds no PEM or DER certificate") from None


_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}
_KEY_USAGES = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "contentCommitment"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
_PROVISIONER_NAMES = {number: name for name, number in PROVISIONER_TYPES.items()}


def describe(certificate: x509.Certificate) -> dict[str, Any]:
    """The facts `inspect` shows, as JSON-ready values."""
    extensions = certificate.extensions
    return {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": str(certificate.serial_number),
        "serial_hex": f"{certificate.serial_number:x}",
        "not_before": _iso(certificate.not_valid_before_utc),
        "not_after": _iso(certificate.not_valid_after_utc),
        "validity": format_go_duration(
            certificate.not_valid_after_utc - certificate.not_valid_before_utc
        ),
        "public_key": _key_description(certificate),
        "is_ca": _is_ca(extensions),
        "sans": _sans(extensions),
        "key_usage": _key_usage(extensions),
        "extended_key_usage": _eku(extensions),
        "provisioner": _provisioner(certificate),
        "sha256_fingerprint": fingerprint_of(certificate),
    }


def _text_lines(summary: dict[str, Any]) -> list[tuple[str, str]]:
    provisioner = summary["provisioner"]
    lines = [
        ("Subject", summary["subject"]),
        ("Issuer", summary["issuer"]),
        ("Serial", f"{summary['serial']} (0x{summary['serial_hex']})"),
        ("Not before", summary["not_before"]),
        ("Not after", f"{summary['not_after']} (valid for {summary['validity']})"),
        ("Public key", summary["public_key"]),
        ("CA", "yes" if summary["is_ca"] else "no"),
        ("SANs", ", ".join(f"{s['type']}:{s['value']}" for s in summary["sans"]) or "-"),
        ("Key usage", ", ".join(summary["key_usage"]) or "-"),
        ("Extended key usage", ", ".join(summary["extended_key_usage"]) or "-"),
    ]
    if isinstance(provisioner, dict):
        described = (
            f"{provisioner['name']} ({provisioner['type']}, credential "
            f"{provisioner['credential_id']})"
            if "name" in provisioner
            else provisioner.get("error", "?")
        )
        lines.append(("Provisioner", described))
    lines.append(("SHA-256 fingerprint", summary["sha256_fingerprint"]))
    if summary.get("bundle", 1) > 1:
        lines.append(("Bundle", f"{summary['bundle'] - 1} more certificate(s) after this one"))
    return lines


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key_description(certificate: x509.Certificate) -> str:
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return type(key).__name__


def _is_ca(extensions: x509.Extensions) -> bool:
    try:
        return bool(extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _sans(extensions: x509.Extensions) -> list[dict[str, str]]:
    try:
        names = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    labels: dict[type, str] = {
        x509.DNSName: "dns",
        x509.IPAddress: "ip",
        x509.RFC822Name: "email",
        x509.UniformResourceIdentifier: "uri",
    }
    return [
        {"type": labels.get(type(name), type(name).__name__), "value": str(name.value)}
        for name in names
    ]


def _key_usage(extensions: x509.Extensions) -> list[str]:
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [label for attribute, label in _KEY_USAGES if getattr(usage, attribute)]


def _eku(extensions: x509.Extensions) -> list[str]:
    try:
        usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [_EKU_NAMES.get(oid, oid.dotted_string) for oid in usages]


def _provisioner(certificate: x509.Certificate) -> dict[str, Any] | None:
    try:
        extension = from_certificate(certificate)
    except ValueError as exc:
        return {"error": f"malformed provisioner extension: {exc}"}
    if extension is None:
        return None
    return {
        "type": _PROVISIONER_NAMES.get(extension.type, str(extension.type)),
        "name": extension.name,
        "credential_id": extension.credential_id,
        "key_values": list(extension.key_values),
    }
