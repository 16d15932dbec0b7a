"""JSON responses encoded with orjson, and the PocketBase error body."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keel.core.errors import KeelError, MFARequiredError, TooManyRequestsError


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def tagged_json(content: Any) -> tuple[bytes, str]:
    """``content`` as JSON with its ``ETag``: a hash of exactly these bytes."""
    body = orjson.dumps(content)
    return body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def tagged_response(request: Request, body: bytes, etag: str) -> Response:
    """A JSON response with its ``ETag``; ``304 Not Modified`` when the client has it."""
    match = request.headers.get("if-none-match", "")
    if match and (
        match.strip() == "*" or etag in {t.strip().removeprefix("W/") for t in match.split(",")}
    ):
        response = Response(status_code=304)
    else:
        response = Response(body, media_type="application/json")
    response.raw_headers += [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
    return response


def cacheable_json(request: Request, content: Any) -> Response:
    """A JSON response with an ``ETag``; ``304 Not Modified`` when the client has it.

    The tag is a hash of the exact body this caller would get, so it changes
    with the data, the caller's rights and the query parameters alike.
    """
    return tagged_response(request, *tagged_json(content))


def error_body(status: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status": status, "message": message, "data": data or {}}


def error_response(exc: KeelError) -> JSONResponse:
    """The one place a domain error becomes an HTTP response."""
    if isinstance(exc, MFARequiredError):
        return JSONResponse({"mfaId": exc.mfa_id}, exc.status)
    headers = (
        {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequestsError) else None
    )
    return JSONResponse(error_body(exc.status, exc.message, exc.data), exc.status, headers=headers)
