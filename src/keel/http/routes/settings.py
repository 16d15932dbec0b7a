"""``/api/settings`` (superusers) and ``/api/health``."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.core.fields.date import now_text
from keel.core.settings import merge_settings, public_settings
from keel.http.body import read_json
from keel.http.context import get_app, request_info
from keel.http.rate_limit import request_ip
from keel.http.response import JSONResponse
from keel.http.routes.collections import require_superuser


async def view_settings(request: Request) -> Response:
    await require_superuser(request)
    return JSONResponse(public_settings(get_app(request).settings))


async def update_settings(request: Request) -> Response:
    await require_superuser(request)
    app = get_app(request)
    patch = await read_json(request, app.config.max_body_size)
    merged = merge_settings(app.settings, patch)
    async with app.db.transaction() as tx:
        await tx.execute(
            "UPDATE _params SET value = ?, updated = ? WHERE id = 'settings'",
            (orjson.dumps(merged).decode(), now_text()),
        )
        await app.bump_version(tx)
    await app.reload()
    return JSONResponse(public_settings(app.settings))


async def health(request: Request) -> Response:
    info = await request_info(request)
    data = {}
    if info.auth.is_superuser:
        data = {
            "canBackup": False,
            "realIP": request_ip(request),
            "possibleProxyHeader": "",
        }
    return JSONResponse({"message": "API is healthy.", "code": 200, "data": data})


routes = [
    Route("/api/settings", view_settings, methods=["GET"]),
    Route("/api/settings", update_settings, methods=["PATCH"]),
    Route("/api/health", health, methods=["GET", "HEAD"]),
]
