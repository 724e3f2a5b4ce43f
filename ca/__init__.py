"""ledgerca: a private CA on an append-only, verifiable event ledger."""

__version__ = "0.1.0"
