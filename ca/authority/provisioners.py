"""Provisioner management as events: add, update, remove — honoured by every instance.

Each change is validated before it is appended (claims parse, templates compile, names are
unique) and carries its actor; the `provisioners` projection refuses what would break the CA
(a duplicate name) inside the append transaction.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from sqlalchemy import select

from ca.authority import admins
from ca.authority.state import load_snapshot
from ca.errors import BadRequest, ConfigError, NotFound, PolicyError
from ca.pki.claims import Claims
from ca.pki.issuer import check_template
from ca.pki.leaf_rules import LeafRules
from ca.provisioners.jwk import JWKProvisioner
from ca.provisioners.jwk_keys import create_provisioner_key, thumbprint
from ca.templates.x509 import render
from ledger import EventStore, NewEvent, RecordedEvent
from projections.events import (
    ADMINS_STREAM,
    AdminRemoved,
    ProvisionerAdded,
    ProvisionerRemoved,
    ProvisionerUpdated,
    provisioner_stream,
)
from projections.provisioners import provisioners

SUPPORTED_TYPES = ("JWK", "SSHPOP")
SSHPOP_NAME = "sshpop"
"""The name step-ca gives the SSHPOP provisioner `step ca init --ssh` makes."""
MAX_NAME_LENGTH = 128
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
"""RFC 7518 private (and symmetric) key members: never in a provisioner's public key."""


@dataclass(frozen=True)
class ProvisionerRow:
    id: str
    name: str
    type: str
    kid: str | None
    claims: str
    options: str


_ROWS = select(
    provisioners.c.id,
    provisioners.c.name,
    provisioners.c.type,
    provisioners.c.kid,
    provisioners.c.claims,
    provisioners.c.options,
)


def find(store: EventStore, name: str) -> ProvisionerRow:
    with store.engine.connect() as connection:
        row = connection.execute(_ROWS.where(provisioners.c.name == name)).first()
    if row is None:
        raise NotFound(f"no provisioner named {name!r}")
    return ProvisionerRow(*row)


def list_all(store: EventStore) -> list[ProvisionerRow]:
    with store.engine.connect() as connection:
        rows = connection.execute(_ROWS.order_by(provisioners.c.added_position)).all()
    return [ProvisionerRow(*row) for row in rows]


def check_name(name: str, *, taken: Sequence[ProvisionerRow], renaming: str | None = None) -> None:
    """A provisioner name: non-empty, at most MAX_NAME_LENGTH printable characters, and not
    the name of another provisioner once both are normalised (NFKC, case-folded), so two
    provisioners never look alike in a listing, a log line or a token's `iss`."""
    if not name or not name.strip():
        raise BadRequest("a provisioner needs a name")
    if len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"a provisioner name is at most {MAX_NAME_LENGTH} characters")
    if not name.isprintable() or name != name.strip():
        raise BadRequest(
            "a provisioner name holds only printable characters, without leading or trailing spaces"
        )
    folded = _normalised(name)
    for row in taken:
        if row.id != renaming and _normalised(row.name) == folded:
            raise BadRequest(f"a provisioner named {row.name!r} already exists")


def _normalised(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


def check_encrypted_key(value: str) -> None:
    """An `encryptedKey` must be a compact JWE (its contents are the client's business: it
    is encrypted with a password the CA never sees)."""
    try:
        jwe.extract_compact(value.encode(), jwe.default_registry)  # type: ignore[attr-defined]
    except (ValueError, TypeError, JoseError):
        raise BadRequest("encryptedKey is not a compact JWE") from None


def validate_claims(claims: Mapping[str, Any]) -> None:
    Claims.from_json(None, claims)


def validate_options(options: Mapping[str, Any], rules: LeafRules | None = None) -> None:
    """Options are a JSON object with at most an x509 template, which must render with sample
    data and produce a leaf the release rule accepts (`ca.pki.issuer.check_template`; `rules`
    are the CA's, or a CA with no keys yet when None)."""
    if not isinstance(options, Mapping):
        raise BadRequest("options must be a JSON object")
    unknown = set(options) - {"x509"}
    if unknown:
        raise BadRequest(f"unknown provisioner option(s): {', '.join(sorted(unknown))}")
    x509_options = options.get("x509", {})
    if not isinstance(x509_options, Mapping) or set(x509_options) - {"template"}:
        raise BadRequest("options.x509 may only hold a template")
    template = x509_options.get("template")
    if template is not None:
        if not isinstance(template, str):
            raise BadRequest("options.x509.template must be a string")
        # Compile and render with sample data, so a broken template is refused now rather
        # than at the first issuance.
        sample = {
            "subject": {"commonName": "example.internal"},
            "sans": [{"type": "dns", "value": "example.internal"}],
            "token": {"sub": "example.internal", "sans": ["example.internal"]},
            "insecure": {"cr": {"subject": {"commonName": "example.internal"}}, "user": {}},
            "key_type": "EC",
        }
        try:
            check_template(render(template, sample), rules or LeafRules())
        except PolicyError as exc:
            raise BadRequest(
                f"the x509 template would issue a forbidden leaf: {exc.message}"
            ) from None


def _leaf_rules(store: EventStore) -> LeafRules:
    """The release rule's view of this CA, without its config: no OCSP URL is a template's
    to add (the CA adds its configured `ocsp_url` itself)."""
    with store.engine.connect() as connection:
        snapshot = load_snapshot(connection)
    keys = (*snapshot.roots, *snapshot.intermediates)
    return LeafRules.of(tuple(k.certificate for k in keys), ())


def add_jwk(
    store: EventStore,
    name: str,
    *,
    password: bytes,
    claims: Mapping[str, Any],
    options: Mapping[str, Any],
    actor: Mapping[str, Any],
) -> RecordedEvent:
    """A new JWK provisioner whose key pair is made here, encrypted with `password`."""
    key = create_provisioner_key(password)
    return add_jwk_key(
        store, name, public_jwk=key.public_jwk, encrypted_key=key.encrypted_key,
        claims=claims, options=options, actor=actor,
    )  # fmt: skip


def sshpop_added(name: str = SSHPOP_NAME) -> ProvisionerAdded:
    """An SSHPOP provisioner, listed as step-ca lists it: `{"type": "SSHPOP", "name":
    "sshpop", "claims": {"enableSSHCA": true}}`. It has no key: the SSH certificate in
    the token's header is the credential."""
    return ProvisionerAdded(
        id=str(uuid.uuid4()),
        name=name,
        type="SSHPOP",
        key={},
        encrypted_key=None,
        claims={"enableSSHCA": True},
        options={},
    )


def add_sshpop(
    store: EventStore,
    name: str,
    *,
    claims: Mapping[str, Any] | None = None,
    actor: Mapping[str, Any],
    also: Sequence[NewEvent] = (),
) -> RecordedEvent:
    """A new SSHPOP provisioner (SSH renew, rekey and revoke by proof of possession)."""
    check_name(name, taken=list_all(store))
    added = sshpop_added(name)
    if claims is not None:
        validate_claims(claims)
        added = dataclasses.replace(added, claims=dict(claims))
    recorded, *_ = store.append(
        [added.to_new_event(), *also], actor=actor, expected={added.stream: 0}
    )
    return recorded


def ssh_enabled_events(store: EventStore) -> list[NewEvent]:
    """What setting up the SSH CA changes among the provisioners, as `step ca init --ssh`
    leaves them: an SSHPOP provisioner (unless one exists), and `enableSSHCA` on the
    CA's first JWK provisioner (the one `init` made) unless its claims already say."""
    rows = list_all(store)
    events: list[NewEvent] = []
    if not any(row.type == "SSHPOP" for row in rows):
        name = SSHPOP_NAME
        if any(_normalised(row.name) == name for row in rows):
            name = f"{SSHPOP_NAME}-{uuid.uuid4().hex[:6]}"
        events.append(sshpop_added(name).to_new_event())
    first = next((row for row in rows if row.type == "JWK"), None)
    if first is not None:
        claims = json.loads(first.claims)
        if "enableSSHCA" not in claims:
            changes = {"claims": {**claims, "enableSSHCA": True}}
            events.append(
                ProvisionerUpdated(id=first.id, name=first.name, changes=changes).to_new_event()
            )
    return events


def public_jwk_of(value: object) -> dict[str, Any]:
    """Check a public JWK sent by a client (the admin API): a key we can verify tokens
    with, no private part, `kid` its thumbprint."""
    if not isinstance(value, Mapping):
        raise BadRequest("key must be a JWK object")
    if any(part in value for part in PRIVATE_JWK_MEMBERS):
        raise BadRequest("key must be a public JWK: it holds private key material")
    try:
        kid = thumbprint(dict(value))
    except ConfigError as exc:
        raise BadRequest(f"key is not a usable JWK: {exc.message}") from None
    if value.get("kid") not in (None, kid):
        raise BadRequest("the key's kid is not its RFC 7638 thumbprint")
    return {**value, "kid": kid}


def add_jwk_key(
    store: EventStore,
    name: str,
    *,
    public_jwk: Mapping[str, Any],
    encrypted_key: str | None,
    claims: Mapping[str, Any],
    options: Mapping[str, Any],
    actor: Mapping[str, Any],
    also: Sequence[NewEvent] = (),
) -> RecordedEvent:
    """A new JWK provisioner for a key pair made elsewhere (the admin API's clients).

    `also`: events appended atomically with the change (the caller's spent admin token).
    """
    existing = list_all(store)
    check_name(name, taken=existing)
    validate_claims(claims)
    validate_options(options, _leaf_rules(store))
    try:
        JWKProvisioner.from_row("check", name, json.dumps(dict(public_jwk)), "{}", "{}")
    except ConfigError as exc:
        raise BadRequest(f"key cannot verify tokens: {exc.message}") from None
    if any(row.kid == public_jwk.get("kid") for row in existing):
        raise BadRequest(f"a provisioner with key id {public_jwk.get('kid')!r} already exists")
    if encrypted_key is not None:
        check_encrypted_key(encrypted_key)
    added = ProvisionerAdded(
        id=str(uuid.uuid4()),
        name=name,
        type="JWK",
        key=dict(public_jwk),
        encrypted_key=encrypted_key,
        claims=dict(claims),
        options=dict(options),
    )
    recorded, *_ = store.append(
        [added.to_new_event(), *also],
        actor=actor,
        expected={added.stream: 0},
    )
    return recorded


def update(
    store: EventStore,
    name: str,
    changes: Mapping[str, Any],
    *,
    actor: Mapping[str, Any],
    by_super_admin: bool = True,
    also: Sequence[NewEvent] = (),
) -> RecordedEvent:
    """Change a provisioner's claims, options or name.

    `also`: events appended atomically with the change (the caller's spent admin token).

    Renaming a provisioner that a super admin is bound to is a super admin's decision alone
    (`by_super_admin` is False for an `ADMIN` calling the admin API; the CLI runs with
    database access and counts as a super admin).
    """
    current = find(store, name)
    if "claims" in changes:
        validate_claims(changes["claims"])
    if "options" in changes:
        validate_options(changes["options"], _leaf_rules(store))
    if not changes:
        raise BadRequest("nothing to update")
    stream = provisioner_stream(current.id)
    expected = {stream: store.stream_version(stream)}
    if "name" in changes:
        if not isinstance(changes["name"], str):
            raise BadRequest("name must be a string")
        check_name(changes["name"], taken=list_all(store), renaming=current.id)
        _, version = _bound_admins(store, current, by_super_admin=by_super_admin)
        expected[ADMINS_STREAM] = version
    updated = ProvisionerUpdated(id=current.id, name=current.name, changes=dict(changes))
    recorded, *_ = store.append(
        [updated.to_new_event(), *also],
        actor=actor,
        expected=expected,
    )
    return recorded


def remove(
    store: EventStore,
    name: str,
    *,
    actor: Mapping[str, Any],
    by_super_admin: bool = True,
    also: Sequence[NewEvent] = (),
) -> RecordedEvent:
    """Remove a provisioner and, in the same append, every admin bound to it.

    Refused when super admins exist and none would remain usable (as step-ca refuses it), and
    for an `ADMIN` when a super admin is bound to the provisioner.
    """
    current = find(store, name)
    bound, version = _bound_admins(store, current, by_super_admin=by_super_admin)
    everyone, _ = admins.current(store)
    usable = {p.id for p in list_all(store)} - {current.id}
    if any(a.is_super for a in everyone) and not any(
        a.is_super and a.provisioner_id in usable for a in everyone
    ):
        raise PolicyError(
            f"cannot remove provisioner {current.name!r} because no super admins will remain"
        )
    removed = ProvisionerRemoved(id=current.id, name=current.name)
    stream = removed.stream
    recorded, *_ = store.append(
        [
            removed.to_new_event(),
            *(AdminRemoved(id=a.id, subject=a.subject).to_new_event() for a in bound),
            *also,
        ],
        actor=actor,
        expected={stream: store.stream_version(stream), ADMINS_STREAM: version},
    )
    return recorded


def _bound_admins(
    store: EventStore, provisioner: ProvisionerRow, *, by_super_admin: bool
) -> tuple[list[admins.Admin], int]:
    """The admins bound to `provisioner` and the admins stream version they were read at.

    The version goes into the append as a precondition, so a super admin bound concurrently
    through another instance makes the change conflict instead of slipping past the check.
    """
    everyone, version = admins.current(store)
    bound = [a for a in everyone if a.provisioner_id == provisioner.id]
    if not by_super_admin and any(a.is_super for a in bound):
        raise PolicyError(
            f"only a super admin may rename or remove provisioner {provisioner.name!r}: "
            "super admins are bound to it"
        )
    return bound, version
