"""``/api/files``: record files with thumbnails, ranges and ETags; file tokens."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from keel.core.actions.files import file_token, thumb_key_for, visible_file
from keel.core.errors import NotFoundError
from keel.http.context import fresh_app, request_info
from keel.http.response import JSONResponse
from keel.storage.files.names import serve_headers
from keel.storage.files.storage import FileStorageError

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def serve(request: Request) -> Response:
    app = await fresh_app(request)
    params = request.path_params
    query = request.query_params
    found = await visible_file(
        app,
        params["collection"],
        params["record"],
        params["filename"],
        query.get("token", ""),
        dict(request.headers),
    )
    coll, record, fld, filename = found
    key = await thumb_key_for(app, coll, record, fld, filename, query.get("thumb", ""))
    try:
        stat = await app.files.stat(key)
    except FileStorageError:
        raise NotFoundError() from None
    headers = serve_headers(stat.content_type, filename, query.get("download") in ("1", "true"))
    headers.update(
        {
            "ETag": stat.etag,
            "Accept-Ranges": "bytes",
            "Cache-Control": "max-age=2592000, stale-while-revalidate=86400"
            if not fld.options["protected"]
            else "private, no-store",
        }
    )
    match = request.headers.get("if-none-match", "")
    if match and stat.etag in {t.strip().removeprefix("W/") for t in match.split(",")}:
        return Response(status_code=304, headers=headers)
    start, end = 0, stat.size - 1
    status = 200
    wanted = request.headers.get("range", "")
    if_range = request.headers.get("if-range", "")
    if wanted and (not if_range or if_range == stat.etag):
        parsed = _parse_range(wanted, stat.size)
        if parsed is None:
            headers["Content-Range"] = f"bytes */{stat.size}"
            return Response(status_code=416, headers=headers)
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{stat.size}"
    headers["Content-Length"] = str(max(end - start + 1, 0))
    if request.method == "HEAD" or stat.size == 0:
        return Response(status_code=status, headers=headers, media_type=stat.content_type)
    return StreamingResponse(
        app.files.read(key, start, end),
        status_code=status,
        headers=headers,
        media_type=stat.content_type,
    )


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range, clamped to the file; ``None`` when unsatisfiable.

    Several ranges in one header are not supported; the first decides.
    """
    match = _RANGE.match(header.split(",", 1)[0].strip())
    if match is None or size == 0:
        return None
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0:
            return None
        return max(size - length, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


async def token(request: Request) -> Response:
    info = await request_info(request)
    return JSONResponse({"token": file_token(info)})


routes = [
    Route("/api/files/token", token, methods=["POST"]),
    Route("/api/files/{collection}/{record}/{filename}", serve, methods=["GET", "HEAD"]),
]
