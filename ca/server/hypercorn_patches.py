"""Small, tested adjustments to Hypercorn 0.18 internals (the version is pinned).

- `TCPServer._close`: an `ssl.SSLError` raised while closing a connection whose TLS session
  already failed (a refused renegotiation, say) escapes Hypercorn's handler and later breaks
  the worker's clean shutdown. Such a connection is closed already: swallow it.
- `TCPServer.run`: the peer-certificate bridge (hypercorn issue #62). Before serving a
  connection, record its TLS peer in a `ContextVar` (`ca.api.peer.remember`); the
  connection's request tasks inherit it and `PeerCertificateMiddleware` puts it into the
  ASGI scope. `run` is awaited in the connection's own task, so the value never leaks to
  another connection.
"""

from __future__ import annotations

import contextlib
import ssl
from importlib.metadata import version
from typing import Any

from hypercorn.asyncio.tcp_server import TCPServer

from ca.api import peer

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
    original = TCPServer._close  # noqa: SLF001 - the pinned version's internals, checked above

    async def _close(self: Any) -> None:
        # The TLS session failed earlier; the transport is gone.
        with contextlib.suppress(ssl.SSLError):
            await original(self)

    TCPServer._close = _close  # type: ignore[method-assign]  # noqa: SLF001

    original_run = TCPServer.run

    async def run(self: Any) -> None:
        # A refused or broken handshake never gets here: asyncio calls the connection
        # callback only after the handshake succeeded.
        try:
            peer.remember(self.writer.get_extra_info("ssl_object"))
        except (ssl.SSLError, ValueError):
            peer.remember(None)
        await original_run(self)

    TCPServer.run = run  # type: ignore[method-assign]
    _installed = True
