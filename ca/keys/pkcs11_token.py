"""PKCS#11 tokens through python-pkcs11: one login per token, one session per thread.

PKCS#11 login state belongs to the application, not the session: one long-lived session per
token logs in with the PIN and keeps the whole process logged in, and every thread signs in a
session of its own (operations are per-session state), opened lazily and finding the key
object once. Tokens are cached per process, so two keys in one token share the login.

Calls into the module are serialised by one process-wide lock: python-pkcs11 initialises the
module with `C_Initialize(NULL)`, which per the standard promises single-threaded use, and
SoftHSM then runs without its own mutexes (concurrent signing failed with CKR_GENERAL_ERROR
in our tests). The lock costs little: a SoftHSM P-256 signature takes a fraction of a
millisecond.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
from pkcs11.exceptions import (
    NoSuchKey,
    PinIncorrect,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)

from ca.errors import ConfigError, SignerError
from ca.keys.files import MIN_RSA_BITS, PublicKey, key_type
from ca.keys.pkcs11_uri import PKCS11URI

__all__ = ["HSMKeyObject", "Token", "close_all", "describe", "open_token"]

T = TypeVar("T")

# DER of the EC_PARAMS a token stores for each curve we sign with (named-curve OIDs).
_P256 = bytes.fromhex("06082a8648ce3d030107")
_P384 = bytes.fromhex("06052b81040022")
_ED25519_OID = bytes.fromhex("06032b6570")
_ED25519_NAME = b"\x13\x0cedwards25519"
_CURVES: dict[bytes, ec.EllipticCurve] = {_P256: ec.SECP256R1(), _P384: ec.SECP384R1()}

_lock = threading.RLock()
"""Held around every call into a PKCS#11 module (see the module docstring)."""
_tokens: dict[tuple[str, int], Token] = {}


def describe(exc: BaseException) -> str:
    """python-pkcs11 exceptions often carry no text: their class name is the CKR_ code."""
    return str(exc).strip() or type(exc).__name__


class _ThreadSession:
    """A thread's session; closed when the thread (and so its thread-local) goes away."""

    def __init__(self, session: pkcs11.Session) -> None:
        self.session = session
        self.objects: dict[tuple[str | None, bytes | None], pkcs11.PrivateKey] = {}
        self.generation = 0

    def __del__(self) -> None:
        # The module may already be finalized: then there is nothing left to close.
        with contextlib.suppress(Exception), _lock:
            self.session.close()


class Token:
    """One token of one module, logged in for the life of the process."""

    def __init__(
        self, module: str, token: pkcs11.Token, login: pkcs11.Session, pin_digest: bytes
    ) -> None:
        self.module = module
        self.label = token.label
        self.pin_digest = pin_digest
        self._token = token
        self._login = login
        self._local = threading.local()
        self._generation = 0
        """Bumped when a key is deleted: threads drop the object handles they found."""

    def _thread_session(self) -> _ThreadSession:
        current: _ThreadSession | None = getattr(self._local, "session", None)
        if current is None:
            try:
                with _lock:
                    current = _ThreadSession(self._token.open())  # the login is shared
            except PKCS11Error as exc:
                raise SignerError(
                    f"cannot open a session on PKCS#11 token {self.label!r}: {describe(exc)}"
                ) from exc
            self._local.session = current
        return current

    def private_key(self, uri: PKCS11URI) -> pkcs11.PrivateKey:
        """The key object `uri` names, in this thread's session."""
        current = self._thread_session()
        if current.generation != self._generation:
            current.objects.clear()
            current.generation = self._generation
        cache_key = (uri.object, uri.id)
        found = current.objects.get(cache_key)
        if found is None:
            with _lock:
                found = find_private_key(current.session, uri)
            current.objects[cache_key] = found
        return found

    def public_key(self, uri: PKCS11URI) -> PublicKey:
        private = self.private_key(uri)
        with _lock:
            return read_public_key(private.session, private)

    def with_login_session(self, action: Callable[[pkcs11.Session], T]) -> T:
        """Run `action` in the read-write login session (key generation, deletion)."""
        with _lock:
            return action(self._login)

    def forget_objects(self) -> None:
        self._generation += 1

    def close(self) -> None:
        with contextlib.suppress(PKCS11Error), _lock:
            self._login.close()


def open_token(module: str, uri: PKCS11URI, pin: str) -> Token:
    """The token `uri` names in `module`, logged in with `pin` (once per process)."""
    with _lock:
        return _open_token(module, uri, pin)


def _open_token(module: str, uri: PKCS11URI, pin: str) -> Token:
    try:
        lib = pkcs11.lib(module)
    except PKCS11Error as exc:
        raise SignerError(f"cannot load the PKCS#11 module {module}: {describe(exc)}") from exc
    try:
        candidates = [
            token
            for token in lib.get_tokens(token_label=uri.token)
            if uri.serial in (None, _text(token.serial))
            and uri.manufacturer in (None, token.manufacturer_id)
            and uri.model in (None, token.model)
        ]
    except PKCS11Error as exc:
        raise SignerError(f"cannot list the tokens of {module}: {describe(exc)}") from exc
    if not candidates:
        raise SignerError(f"no PKCS#11 token labelled {uri.token!r} in {module}")
    if len(candidates) > 1:
        raise SignerError(
            f"{len(candidates)} PKCS#11 tokens are labelled {uri.token!r}: add serial=… to the URI"
        )
    token = candidates[0]
    cache_key = (module, token.slot.slot_id)
    # Once logged in, the token would accept any PIN (the login is per process): compare.
    pin_digest = hashlib.sha256(pin.encode()).digest()
    cached = _tokens.get(cache_key)
    if cached is not None:
        if not hmac.compare_digest(cached.pin_digest, pin_digest):
            raise SignerError(f"wrong PIN for PKCS#11 token {uri.token!r}")
        return cached
    try:
        login = token.open(rw=True, user_pin=pin)
    except (PinIncorrect, PinLenRange):
        raise SignerError(f"wrong PIN for PKCS#11 token {uri.token!r}") from None
    except PinLocked:
        raise SignerError(f"the PIN of PKCS#11 token {uri.token!r} is locked") from None
    except UserAlreadyLoggedIn:
        login = token.open(rw=True)  # this process logged in already
    except PKCS11Error as exc:
        raise SignerError(f"cannot log in to PKCS#11 token {uri.token!r}: {describe(exc)}") from exc
    opened = Token(module, token, login, pin_digest)
    _tokens[cache_key] = opened
    return opened


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def close_all() -> None:
    """Log out of every token and finalize the modules (a module reads its config again, e.g.
    SoftHSM's SOFTHSM2_CONF, when next loaded)."""
    with _lock:
        modules = {module for module, _slot in _tokens}
        for token in _tokens.values():
            token.close()
        _tokens.clear()
        for module in modules:
            with contextlib.suppress(PKCS11Error):
                pkcs11.lib(module).finalize()


def search(session: pkcs11.Session, object_class: ObjectClass, uri: PKCS11URI) -> list[Any]:
    attrs: dict[Attribute, Any] = {Attribute.CLASS: object_class}
    if uri.object is not None:
        attrs[Attribute.LABEL] = uri.object
    if uri.id is not None:
        attrs[Attribute.ID] = uri.id
    try:
        return list(session.get_objects(attrs))
    except PKCS11Error as exc:
        raise SignerError(f"cannot search PKCS#11 token {uri.token!r}: {describe(exc)}") from exc


def find_private_key(session: pkcs11.Session, uri: PKCS11URI) -> pkcs11.PrivateKey:
    found = search(session, ObjectClass.PRIVATE_KEY, uri)
    if not found:
        raise SignerError(f"no private key {_name(uri)} in PKCS#11 token {uri.token!r}")
    if len(found) > 1:
        raise SignerError(
            f"{len(found)} private keys match {_name(uri)} in PKCS#11 token {uri.token!r}:"
            " add id=… to the URI"
        )
    key: pkcs11.PrivateKey = found[0]
    return key


def _name(uri: PKCS11URI) -> str:
    parts = [repr(uri.object)] if uri.object is not None else []
    if uri.id is not None:
        parts.append(f"id {uri.id.hex()}")
    return " ".join(parts)


def _octet_string(data: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING per the spec; some tokens store the raw point."""
    if len(data) >= 2 and data[0] == 0x04:
        if data[1] < 0x80 and data[1] == len(data) - 2:
            return data[2:]
        if data[1] == 0x81 and len(data) > 3 and data[2] == len(data) - 3:
            return data[3:]
    return data


def read_public_key(session: pkcs11.Session, private: pkcs11.PrivateKey) -> PublicKey:
    """The public half of `private`, as a cryptography key, read from the token."""
    kind = private.key_type
    if kind is KeyType.RSA:
        modulus = int.from_bytes(private[Attribute.MODULUS], "big")
        exponent = int.from_bytes(private[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(exponent, modulus).public_key()
    attrs: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.PUBLIC_KEY}
    key_id = private[Attribute.ID]
    if key_id:
        attrs[Attribute.ID] = key_id
    else:
        attrs[Attribute.LABEL] = private.label
    found = list(session.get_objects(attrs))
    if len(found) != 1:
        raise SignerError(
            f"the public key of {private.label!r} is not in the token (found {len(found)}):"
            " it must sit beside the private key with the same id"
        )
    public = found[0]
    params, point = public[Attribute.EC_PARAMS], _octet_string(public[Attribute.EC_POINT])
    if kind is KeyType.EC and params in _CURVES:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVES[params], point)
    if kind is KeyType.EC_EDWARDS and params in (_ED25519_OID, _ED25519_NAME):
        return ed25519.Ed25519PublicKey.from_public_bytes(point)
    raise SignerError(
        f"the key {private.label!r} is a {kind.name} key this CA cannot sign with:"
        " use EC P-256/P-384, Ed25519 or RSA"
    )


class HSMKeyObject:
    """A private key in a token, by URI; signs in the calling thread's session."""

    def __init__(self, token: Token, uri: PKCS11URI) -> None:
        self.token = token
        self.uri = uri

    def sign(self, mechanism: pkcs11.Mechanism, data: bytes, param: Any = None) -> bytes:
        key: Any = self.token.private_key(self.uri)  # a SignMixin, which the stubs do not say
        try:
            with _lock:
                signature: bytes = key.sign(data, mechanism=mechanism, mechanism_param=param)
        except PKCS11Error as exc:
            raise SignerError(
                f"PKCS#11 token {self.uri.token!r} refused to sign with {_name(self.uri)}:"
                f" {describe(exc)}"
            ) from exc
        return signature


def generate_key(token: Token, uri: PKCS11URI, kty: str, *, rsa_bits: int) -> PKCS11URI:
    """A new key pair stored in the token, non-extractable; returns its exact URI (with id)."""
    if uri.object is None:
        raise ConfigError("to create a key in a token, its URI needs object=LABEL")
    key_id = uri.id or secrets.token_bytes(16)
    private_template = {
        Attribute.TOKEN: True,
        Attribute.PRIVATE: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
    }
    common: dict[str, Any] = {
        "store": True,
        "label": uri.object,
        "id": key_id,
        "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
        "private_template": private_template,
    }

    def generate(session: pkcs11.Session) -> None:
        match key_type(kty):
            case "EC":
                session.generate_keypair(
                    KeyType.EC, public_template={Attribute.EC_PARAMS: _P256}, **common
                )
            case "OKP":
                session.generate_keypair(
                    KeyType.EC_EDWARDS,
                    public_template={Attribute.EC_PARAMS: _ED25519_OID},
                    **common,
                )
            case "RSA":
                session.generate_keypair(KeyType.RSA, max(rsa_bits, MIN_RSA_BITS), **common)

    try:
        token.with_login_session(generate)
    except PKCS11Error as exc:
        raise SignerError(
            f"PKCS#11 token {uri.token!r} could not generate a {kty} key: {describe(exc)}"
        ) from exc
    return uri.with_id(key_id)


def delete_key(token: Token, uri: PKCS11URI) -> None:
    """Destroy the key pair `uri` names (a key this CA created for an init that failed)."""

    def destroy(session: pkcs11.Session) -> None:
        for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            for found in search(session, object_class, uri):
                found.destroy()

    with contextlib.suppress(PKCS11Error, NoSuchKey):
        token.with_login_session(destroy)
    token.forget_objects()
