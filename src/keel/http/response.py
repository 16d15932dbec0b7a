"""JSON responses encoded with orjson, and the PocketBase error body."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from keel.core.errors import KeelError


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_body(status: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status": status, "message": message, "data": data or {}}


def error_response(exc: KeelError) -> JSONResponse:
    """The one place a domain error becomes an HTTP response."""
    headers = {"Retry-After": str(exc.data.get("retryAfter", 1))} if exc.status == 429 else None
    return JSONResponse(error_body(exc.status, exc.message, exc.data), exc.status, headers=headers)
