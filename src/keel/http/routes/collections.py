"""``/api/collections``: the schema API, for superusers only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.core.actions import collections as actions
from keel.core.actions.listing import parse_list_params
from keel.core.errors import ForbiddenError, UnauthorizedError
from keel.http.body import read_json
from keel.http.context import get_app, request_info
from keel.http.response import JSONResponse


async def require_superuser(request: Request) -> None:
    """Raises 401 for anonymous callers and 403 for other authenticated ones."""
    info = await request_info(request)
    if info.auth.record is None:
        raise UnauthorizedError()
    if not info.auth.is_superuser or not info.auth.unrestricted:
        raise ForbiddenError("The authorized record is not allowed to perform this action.")


async def list_collections(request: Request) -> Response:
    await require_superuser(request)
    params = parse_list_params(dict(request.query_params))
    return JSONResponse(actions.list_collections(get_app(request), params))


async def view_collection(request: Request) -> Response:
    await require_superuser(request)
    coll = get_app(request).collection(
        request.path_params["collection"], "The requested resource wasn't found."
    )
    return JSONResponse(coll.to_json())


async def create_collection(request: Request) -> Response:
    await require_superuser(request)
    app = get_app(request)
    coll = await actions.create_collection(app, await read_json(request, app.config.max_body_size))
    return JSONResponse(coll.to_json())


async def update_collection(request: Request) -> Response:
    await require_superuser(request)
    app = get_app(request)
    data = await read_json(request, app.config.max_body_size)
    coll = await actions.update_collection(app, request.path_params["collection"], data)
    return JSONResponse(coll.to_json())


async def delete_collection(request: Request) -> Response:
    await require_superuser(request)
    await actions.delete_collection(get_app(request), request.path_params["collection"])
    return Response(status_code=204)


async def import_collections(request: Request) -> Response:
    await require_superuser(request)
    app = get_app(request)
    await actions.import_collections(app, await read_json(request, app.config.max_body_size))
    return Response(status_code=204)


routes = [
    Route("/api/collections", list_collections, methods=["GET"]),
    Route("/api/collections", create_collection, methods=["POST"]),
    Route("/api/collections/import", import_collections, methods=["PUT"]),
    Route("/api/collections/{collection}", view_collection, methods=["GET"]),
    Route("/api/collections/{collection}", update_collection, methods=["PATCH"]),
    Route("/api/collections/{collection}", delete_collection, methods=["DELETE"]),
]
