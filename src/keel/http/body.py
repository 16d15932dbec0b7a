"""Reading request bodies: JSON, multipart/form-data or urlencoded, size-limited.

The body is read as a stream and refused with 413 as soon as it passes the
limit (at once when ``Content-Length`` says so), so an oversized body is never
held whole in memory. Multipart bodies are parsed as they stream in; their
file parts are spooled to temporary files and handed on as
:class:`~keel.core.fields.file.Upload` values.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import Request

from keel.core.errors import BadRequestError, PayloadTooLargeError
from keel.core.fields.file import Upload

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


def _check_declared(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        size = int(declared)
    except ValueError:
        raise BadRequestError("Invalid Content-Length header.") from None
    if size > limit:
        raise PayloadTooLargeError()


async def read_data(
    request: Request, limit: int, upload_limit: Callable[[], Awaitable[int]] | None = None
) -> dict[str, Any]:
    """The body as a mapping of field names to values.

    Form values arrive as strings; repeated keys become lists; a
    ``@jsonPayload`` form field holds a JSON object merged into the result;
    file parts become :class:`Upload` values. Call :func:`close_body` when done
    with them.

    Args:
        limit: the largest body without files.
        upload_limit: the largest multipart body, asked for only when the
            body is multipart; ``limit`` when omitted.

    Raises:
        BadRequestError: malformed JSON, or a JSON body that is not an object.
        PayloadTooLargeError: over the limit.
    """
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "multipart/form-data":
        most = await upload_limit() if upload_limit is not None else limit
        return await _read_multipart(request, most, limit)
    raw = await read_bytes(request, limit)
    if ctype == "application/x-www-form-urlencoded":
        return await _read_form(request, limit)
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


async def _read_multipart(request: Request, limit: int, field_limit: int) -> dict[str, Any]:
    _check_declared(request, limit)
    received = 0
    receive = request._receive

    async def counted() -> Any:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLargeError()
        return message

    request._receive = counted
    return await _read_form(request, field_limit, max_files=1000)


async def _parse_multipart(request: Request, field_limit: int, max_files: int) -> FormData:
    """Starlette's multipart parsing, closing the spooled files of unfinished parts.

    A body that ends inside a file part parses without error, but that part's
    temporary file is in no form field, so nothing would ever close it.
    """
    parser = MultiPartParser(
        request.headers,
        request.stream(),
        max_files=max_files,
        max_fields=10_000,
        max_part_size=field_limit,
    )
    form = await parser.parse()
    kept = {id(v.file) for _, v in form.multi_items() if isinstance(v, UploadFile)}
    for file in parser._files_to_close_on_error:  # no public way to reach them
        if id(file) not in kept:
            file.close()
    request._form = form  # so that Request.close() closes the rest
    return form


async def _read_form(request: Request, field_limit: int, max_files: int = 0) -> dict[str, Any]:
    try:
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype == "multipart/form-data":
            form = await _parse_multipart(request, field_limit, max_files)
        else:
            form = await request.form(max_fields=10_000, max_part_size=field_limit)
    except PayloadTooLargeError:
        raise
    except Exception as exc:  # the multipart parser raises several unrelated types
        raise BadRequestError(INVALID) from exc
    out: dict[str, Any] = {}
    try:
        for key in form:
            values = [_value(v) for v in form.getlist(key)]
            if key == "@jsonPayload":
                for text in values:
                    if not isinstance(text, str):
                        raise BadRequestError(INVALID)
                    payload = orjson.loads(text)
                    if not isinstance(payload, dict):
                        raise BadRequestError(INVALID)
                    out.update(payload)
                continue
            out[key] = values[0] if len(values) == 1 else values
    except orjson.JSONDecodeError:
        raise BadRequestError(INVALID) from None
    except BaseException:
        await form.close()
        raise
    return out


def _value(item: str | UploadFile) -> str | Upload:
    if isinstance(item, str):
        return item
    return Upload(
        filename=item.filename or "file",
        file=item.file,
        size=item.size or 0,
        content_type=item.content_type or "",
    )


async def close_body(request: Request) -> None:
    """Close the temporary files of a multipart body, if one was read."""
    await request.close()
