"""The TLS peer certificate, bridged from Hypercorn into the ASGI scope (placeholder)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class PeerCertificateMiddleware:
    """Puts the client's certificate (if any) into `scope["extensions"]["tls"]`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
