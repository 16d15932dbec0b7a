"""Reading request bodies: JSON, multipart/form-data or urlencoded, size-limited.

The body is read as a stream and refused with 413 as soon as it passes the
limit, so an oversized upload is never held whole in memory.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request

from keel.core.errors import BadRequestError, PayloadTooLargeError

INVALID = "Failed to load the submitted data due to invalid formatting."


async def read_bytes(request: Request, limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes.

    Raises:
        PayloadTooLargeError: the declared or actual length is over the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLargeError()
        except ValueError:
            raise BadRequestError("Invalid Content-Length header.") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError()
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # let Starlette's form parser reuse what was read
    return body


async def read_data(request: Request, limit: int) -> dict[str, Any]:
    """The body as a mapping of field names to values.

    Form values arrive as strings; repeated keys become lists; a
    ``@jsonPayload`` form field holds a JSON object merged into the result.

    Raises:
        BadRequestError: malformed JSON, or a JSON body that is not an object.
        PayloadTooLargeError: over ``limit`` bytes.
    """
    raw = await read_bytes(request, limit)
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return await _read_form(request)
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequestError(INVALID) from None
    if not isinstance(data, dict):
        raise BadRequestError(INVALID)
    return data


async def read_json(request: Request, limit: int) -> Any:
    """Any JSON value (for endpoints whose body is not record data)."""
    raw = await read_bytes(request, limit)
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequestError(INVALID) from None


async def _read_form(request: Request) -> dict[str, Any]:
    try:
        form = await request.form(max_files=0, max_fields=10_000)
    except Exception as exc:  # the multipart parser raises several unrelated types
        raise BadRequestError(INVALID) from exc
    out: dict[str, Any] = {}
    try:
        for key in form:
            values = form.getlist(key)
            if any(isinstance(v, UploadFile) for v in values):
                raise BadRequestError("File uploads are not supported by this Keel version yet.")
            texts = [v for v in values if isinstance(v, str)]
            if key == "@jsonPayload":
                for text in texts:
                    payload = orjson.loads(str(text))
                    if not isinstance(payload, dict):
                        raise BadRequestError(INVALID)
                    out.update(payload)
                continue
            out[key] = texts[0] if len(texts) == 1 else texts
    except orjson.JSONDecodeError:
        raise BadRequestError(INVALID) from None
    finally:
        await form.close()
    return out
