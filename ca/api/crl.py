"""Placeholder: routes are added by the lifecycle work (issue 5)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
