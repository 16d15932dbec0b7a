"""JSON responses encoded with orjson, and the PocketBase error body."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from keel.core.errors import KeelError, MFARequiredError, TooManyRequestsError
from keel.core.result_cache import BoundedCache, Key, ResponseKey
from keel.storage.db.database import DataVersion


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def tagged_json(content: Any) -> tuple[bytes, str]:
    """``content`` as JSON with its ``ETag``: a hash of exactly these bytes."""
    body = orjson.dumps(content)
    return body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def tagged_response(request: Request, body: bytes, etag: str) -> Response:
    """A JSON response with its ``ETag``; ``304 Not Modified`` when the client has it.

    The tag is a hash of the exact body this caller gets, so it changes with
    the data, the caller's rights and the query parameters alike.
    """
    match = request.headers.get("if-none-match", "")
    if match and (
        match.strip() == "*" or etag in {t.strip().removeprefix("W/") for t in match.split(",")}
    ):
        response = Response(status_code=304)
    else:
        response = Response(body, media_type="application/json")
    response.raw_headers += [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
    return response


class ReusedResponses:
    """JSON response bodies kept by one worker process, each valid for one data version.

    Keys come from the core actions (``view_key``, ``list_key``) as a data
    version and a key; an entry answers only a request that read the same
    version, and a newer version overwrites it.

    Args:
        size: entries kept (least recently used go first).
        max_body: the largest body kept, in bytes.
    """

    def __init__(self, size: int, max_body: int) -> None:
        self._cache: BoundedCache[Key, tuple[DataVersion, bytes, str]] = BoundedCache(size)
        self._max_body = max_body

    def clear(self) -> None:
        """Forget every entry (SQLite's data version restarts with its connection)."""
        self._cache.clear()

    def get(self, request: Request, reuse: ResponseKey | None) -> Response | None:
        """The kept response for ``reuse``, or ``None``."""
        if reuse is None:
            return None
        hit = self._cache.get(reuse[1])
        if hit is None or hit[0] != reuse[0]:
            return None
        return tagged_response(request, hit[1], hit[2])

    def respond(self, request: Request, reuse: ResponseKey | None, content: Any) -> Response:
        """``content`` as a tagged JSON response, kept under ``reuse`` when given."""
        body, etag = tagged_json(content)
        if reuse is not None and len(body) <= self._max_body:
            self._cache.put(reuse[1], (reuse[0], body, etag))
        return tagged_response(request, body, etag)


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
