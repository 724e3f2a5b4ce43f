"""One exception tree for the authority, each class with a stable HTTP status.

`status_for` is the single place that maps an exception to an HTTP status; ledger
exceptions (which cannot import this module) are mapped there too.
"""

from __future__ import annotations

from ledger.canonical import NotCanonical
from ledger.database import is_unavailable
from ledger.errors import ConcurrencyConflict, IntegrityViolation, LedgerError, SchemaError
from projections.errors import ProjectionConflict


class CAError(Exception):
    """Base class: `message` is safe to show an operator or a client."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CAError):
    """The home, the config file or a command-line option is wrong."""

    status = 500


class PasswordError(CAError):
    """A password is wrong, missing or unreadable."""

    status = 500


class BadRequest(CAError, ValueError):
    status = 400


class AuthError(CAError):
    status = 401


class PolicyError(CAError):
    status = 403


class NotFound(CAError):
    status = 404


class PayloadTooLarge(CAError):
    status = 413


class UnsupportedMediaType(CAError):
    """A request body in a format the endpoint does not read (it reads JSON)."""

    status = 415


class SignerError(CAError):
    status = 500


class Unavailable(CAError):
    """The ledger's database cannot be reached: nothing was written, retry shortly."""

    status = 503


class Busy(Unavailable):
    """An endpoint is at its concurrency bound: nothing was done, retry shortly."""


def status_for(exc: BaseException) -> int:
    if isinstance(exc, CAError):
        return exc.status
    if isinstance(exc, NotCanonical):
        # Only client data can get this far without a canonical form: everything the CA
        # builds itself is strings and integers, and the test suite records all of it.
        return 400
    if isinstance(exc, (ConcurrencyConflict, ProjectionConflict)):
        # The append was checked against a state another change got to first.
        return 409
    if isinstance(exc, (IntegrityViolation, SchemaError, LedgerError)):
        return 500
    if is_unavailable(exc):
        return 503
    return 500
