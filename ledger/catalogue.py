"""The event catalogue: every type name the CA writes, with its stream and payload.

Names are stable forever (they are in the hash chain). A payload change bumps the schema
number and registers an upcaster; old rows are never rewritten.

authority.initialized    stream `authority`
    {name, root_fingerprint}
authority.key_activated  stream `authority`
    {key_id, role, certificate: PEM | null, public_key: PEM, key_ref: {type, ...}, fingerprint}
    role: x509_root | x509_intermediate | ssh_user | ssh_host | ledger
    key_ref: {"type": "file", "path": ...} | {"type": "pkcs11", "uri": ...} | {"type": "offline"}
authority.key_retired    stream `authority`
    {key_id, role}
provisioner.added        stream `provisioner/<id>`
    {id, name, type, key: public JWK, encrypted_key: JWE | null, claims, options}
provisioner.updated      stream `provisioner/<id>`
    {id, name, changes: {field: new value}}
provisioner.removed      stream `provisioner/<id>`
    {id, name}
policy.set               stream `policy/<scope>` (scope `authority` or `provisioner/<id>`)
    {scope, provisioner_id | null, policy: name policy JSON | null (null clears it)}
admin.added              stream `admins` (one stream: every change is checked against all admins)
    {id, subject, provisioner_id, provisioner_name, type: ADMIN | SUPER_ADMIN}
admin.removed            stream `admins`
    {id, subject}
x509.issued              stream `x509/<serial>`
    {serial, certificate: PEM, subject, sans: [{type, value}], not_before, not_after,
     provisioner: {id, name, type} | null, issuer_key_id, token_id | null,
     renewed_from | null, rekeyed_from | null}
x509.revoked             stream `x509/<serial>`
    {serial, reason_code, reason, revoked_at}
crl.published            stream `crl/<issuer_key_id>`
    {issuer_key_id, number, this_update, next_update, revoked_through, entries, der}
    number: the CRL number, equal to the event's stream version (1, 2, ...); appended with
    `expected` = the previous number, so two instances never publish one number twice.
    revoked_through: the ledger position whose revocations the CRL reflects.
    entries: how many revoked certificates it lists. der: base64 of the signed DER CRL.
ledger.checkpoint        stream `ledger/checkpoint`
    {number, tree_size, root_hash, time, key_id, signature}
    A signed checkpoint over the Merkle tree of positions 1..tree_size, where tree_size is
    always the checkpoint's own position - 1 (see `ledger.merkle`, `ca.audit.checkpoints`).
    number: the stream version, appended with `expected` = number - 1, as for CRLs.
    signature: base64 of the ledger key's signature over the checkpoint statement.
ssh.issued               stream `ssh/<serial>` (serial: uint64 as a decimal string)
    {serial, cert_type: user | host, key_id, principals: [..], valid_after, valid_before,
     extensions: [names], certificate: OpenSSH certificate line, public_key_fingerprint,
     provisioner: {id, name, type} | null, issuer_key_id, token_id | null,
     renewed_from | null, rekeyed_from | null}
ssh.revoked              stream `ssh/<serial>`
    {serial, reason_code, reason, revoked_at, provisioner | null, token_id | null}
token.spent              stream `token/<token_id>`
    {token_id, provisioner: {id, name, type}, purpose: admin}
    A one-time token used for something that writes no event of its own (an admin API
    request authenticated by a token): recorded so that the token cannot be used again.
"""

from __future__ import annotations

AUTHORITY_INITIALIZED = "authority.initialized"
KEY_ACTIVATED = "authority.key_activated"
KEY_RETIRED = "authority.key_retired"
PROVISIONER_ADDED = "provisioner.added"
PROVISIONER_UPDATED = "provisioner.updated"
PROVISIONER_REMOVED = "provisioner.removed"
POLICY_SET = "policy.set"
ADMIN_ADDED = "admin.added"
ADMIN_REMOVED = "admin.removed"
X509_ISSUED = "x509.issued"
X509_REVOKED = "x509.revoked"
CRL_PUBLISHED = "crl.published"
LEDGER_CHECKPOINT = "ledger.checkpoint"
SSH_ISSUED = "ssh.issued"
SSH_REVOKED = "ssh.revoked"
TOKEN_SPENT = "token.spent"  # noqa: S105 - an event type, not a password

AUTHORITY_STREAM = "authority"
CHECKPOINT_STREAM = "ledger/checkpoint"
ADMINS_STREAM = "admins"


def provisioner_stream(provisioner_id: str) -> str:
    return f"provisioner/{provisioner_id}"


def policy_stream(scope: str) -> str:
    return f"policy/{scope}"


def x509_stream(serial: str) -> str:
    return f"x509/{serial}"


def crl_stream(issuer_key_id: str) -> str:
    return f"crl/{issuer_key_id}"


def ssh_stream(serial: str) -> str:
    return f"ssh/{serial}"


def token_stream(token_id: str) -> str:
    return f"token/{token_id}"
