"""Auth endpoints of auth collections (password login and token refresh)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.core.actions.auth import auth_with_password, issue_auth_token
from keel.core.errors import UnauthorizedError
from keel.http.body import read_data
from keel.http.context import get_app, request_info
from keel.http.response import JSONResponse


async def password_login(request: Request) -> Response:
    app = get_app(request)
    body = await read_data(request, app.config.max_body_size)
    await app.refresh()
    coll = app.collection(request.path_params["collection"])
    token, record = await auth_with_password(app, coll, body)
    return JSONResponse({"token": token, "record": record.to_json()})


async def refresh(request: Request) -> Response:
    info = await request_info(request)
    app = get_app(request)
    coll = app.collection(request.path_params["collection"])
    record = info.auth.record
    if record is None or info.auth.collection is None or info.auth.collection.id != coll.id:
        raise UnauthorizedError()
    return JSONResponse({"token": issue_auth_token(coll, record), "record": record.to_json()})


routes = [
    Route("/api/collections/{collection}/auth-with-password", password_login, methods=["POST"]),
    Route("/api/collections/{collection}/auth-refresh", refresh, methods=["POST"]),
]
