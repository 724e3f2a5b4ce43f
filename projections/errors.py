"""Exceptions projections raise to refuse an append."""

from __future__ import annotations

from ledger import LedgerError


class ProjectionConflict(LedgerError):
    """An inline projection refuses an event: a uniqueness the CA relies on would break."""
