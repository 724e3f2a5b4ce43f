"""JSON bodies the way step-ca's Go encoder writes them (a trailing newline included)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse


class GoJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return (json.dumps(content, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> GoJSONResponse:
    return GoJSONResponse(content, status_code=status, headers=headers)
