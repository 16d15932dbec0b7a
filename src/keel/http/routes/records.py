"""``/api/collections/{collection}/records``: list, view, create, update, delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.core.actions import records as actions
from keel.core.actions.listing import parse_list_params
from keel.http.body import read_data
from keel.http.context import get_app, request_info
from keel.http.response import JSONResponse


async def list_records(request: Request) -> Response:
    info = await request_info(request)
    app = get_app(request)
    coll = app.collection(request.path_params["collection"])
    page = await actions.list_records(app, coll, info, parse_list_params(info.query))
    return JSONResponse(page)


async def view_record(request: Request) -> Response:
    info = await request_info(request)
    app = get_app(request)
    coll = app.collection(request.path_params["collection"])
    record = await actions.view_record(app, coll, request.path_params["id"], info)
    return JSONResponse(record.to_json(show_hidden=info.auth.is_superuser))


async def create_record(request: Request) -> Response:
    app = get_app(request)
    body = await read_data(request, app.config.max_body_size)
    info = await request_info(request, body)
    coll = app.collection(
        request.path_params["collection"], "Missing or invalid collection context."
    )
    record = await actions.create_record(app, coll, body, info)
    return JSONResponse(record.to_json(show_hidden=info.auth.is_superuser))


async def update_record(request: Request) -> Response:
    app = get_app(request)
    body = await read_data(request, app.config.max_body_size)
    info = await request_info(request, body)
    coll = app.collection(
        request.path_params["collection"], "Missing or invalid collection context."
    )
    record = await actions.update_record(app, coll, request.path_params["id"], body, info)
    return JSONResponse(record.to_json(show_hidden=info.auth.is_superuser))


async def delete_record(request: Request) -> Response:
    info = await request_info(request)
    app = get_app(request)
    coll = app.collection(request.path_params["collection"])
    await actions.delete_record(app, coll, request.path_params["id"], info)
    return Response(status_code=204)


routes = [
    Route("/api/collections/{collection}/records", list_records, methods=["GET"]),
    Route("/api/collections/{collection}/records", create_record, methods=["POST"]),
    Route("/api/collections/{collection}/records/{id}", view_record, methods=["GET"]),
    Route("/api/collections/{collection}/records/{id}", update_record, methods=["PATCH"]),
    Route("/api/collections/{collection}/records/{id}", delete_record, methods=["DELETE"]),
]
