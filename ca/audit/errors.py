"""What the audit commands refuse: bad files, unknown serials, times before the CA."""

from __future__ import annotations

from ca.errors import BadRequest, NotFound


class AuditError(BadRequest):
    """An input to an audit command is wrong: a malformed file, a key that does not match."""


class NotInLedger(NotFound):
    """The serial, position or checkpoint asked about is not in the ledger."""
