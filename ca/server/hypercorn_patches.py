"""Small, tested adjustments to Hypercorn 0.18 internals (the version is pinned).

- `TCPServer._close`: an `ssl.SSLError` raised while closing a connection whose TLS session
  already failed (a refused renegotiation, say) escapes Hypercorn's handler and later breaks
  the worker's clean shutdown. Such a connection is closed already: swallow it.
"""

from __future__ import annotations

import contextlib
import ssl
from importlib.metadata import version
from typing import Any

from hypercorn.asyncio.tcp_server import TCPServer

PINNED = "0.18.0"
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    if version("hypercorn") != PINNED:
        raise RuntimeError(
            f"ledgerca patches Hypercorn {PINNED} internals but {version('hypercorn')} is installed"
        )
    original = TCPServer._close

    async def _close(self: Any) -> None:
        # The TLS session failed earlier; the transport is gone.
        with contextlib.suppress(ssl.SSLError):
            await original(self)

    TCPServer._close = _close  # type: ignore[method-assign]
    _installed = True
