"""The ledger's exceptions. `ca.errors` maps them to HTTP statuses."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class for everything the ledger raises."""


class ConcurrencyConflict(LedgerError):
    """A stream was not at the version the caller expected (or two appends raced for it)."""

    def __init__(self, message: str, *, stream: str | None = None) -> None:
        super().__init__(message)
        self.stream = stream


class ChangedSince(LedgerError):
    """An append's precondition failed: an event of the watched types was recorded after the
    position the caller read (`position` is the newest such event now)."""

    def __init__(self, message: str, *, position: int) -> None:
        super().__init__(message)
        self.position = position


class IntegrityViolation(LedgerError):
    """The stored ledger does not verify: a hash, a link or a position is wrong."""

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class SchemaError(LedgerError):
    """The database schema is missing or older than this code needs."""


class UnsupportedDatabase(LedgerError, ValueError):
    """The database URL names a backend the ledger does not support."""


class AppendRefused(LedgerError):
    """The database refused an append for a reason other than a version conflict."""
