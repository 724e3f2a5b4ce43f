"""ledgerca: a private CA on an append-only, verifiable event ledger."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ledgerca")
    """The installed distribution's version: what `/version` and the client's User-Agent say."""
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
