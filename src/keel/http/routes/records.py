"""``/api/collections/{collection}/records``: list, view, create, update, delete.

Every response that carries records honours ``expand`` and ``fields``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.core.actions import records as actions
from keel.core.actions.listing import parse_list_params
from keel.core.expand import expand_records
from keel.core.files import file_fields
from keel.core.presentation import present, projection_of
from keel.core.projection import project_page
from keel.core.rule import rule_filter
from keel.http.body import close_body, read_data
from keel.http.context import get_app, request_info
from keel.http.response import JSONResponse, ReusedResponses

_projection = projection_of


#: Responses kept per worker (see ReusedResponses), and the largest body kept.
LIST_CACHE_SIZE = 256
LIST_CACHE_MAX_BODY = 64 * 1024
VIEW_CACHE_SIZE = 2048
VIEW_CACHE_MAX_BODY = 16 * 1024


async def list_records(request: Request) -> Response:
    info = await request_info(request)
    projection = _projection(info)
    app = get_app(request)
    coll = app.collection(request.path_params["collection"])
    params = parse_list_params(info.query)
    query = actions.list_query(app, coll, info, params)  # once, for the key and the read
    lists: ReusedResponses = request.app.state.lists
    reuse = actions.list_key(app, coll, info, query)
    hit = lists.get(request, reuse)
    if hit is not None:
        return hit
    page, records = await actions.list_records(app, coll, info, params, query)
    expand = info.query.get("expand", "")
    if expand:
        await expand_records(app, coll, records, page["items"], expand, info)
    return lists.respond(
        request, reuse, project_page(page, projection) if projection is not None else page
    )


async def view_record(request: Request) -> Response:
    info = await request_info(request)
    projection = _projection(info)
    app = get_app(request)
    coll = app.collection(request.path_params["collection"])
    record_id = request.path_params["id"]
    views: ReusedResponses = request.app.state.views
    rule = rule_filter(app, coll, "viewRule", info)  # once, for the key and the read
    reuse = actions.view_key(app, coll, record_id, info, rule)
    hit = views.get(request, reuse)
    if hit is not None:
        return hit
    record = await actions.view_record(app, coll, record_id, info, rule)
    return views.respond(request, reuse, await present(app, coll, record, info, projection))


async def _upload_limit(request: Request) -> int:
    """The largest multipart body this collection can need: its files plus the rest.

    A collection without file fields takes no uploads at all, so nobody can
    make the server spool gigabytes to disk before any check.
    """
    # A plain refresh: the request refreshes again once the (maybe long)
    # upload is in, so its rules see the schema of that moment.
    app = get_app(request)
    await app.refresh()
    coll = app.find_collection(request.path_params["collection"])
    room = (
        sum(f.max_size * max(int(f.options["maxSelect"] or 1), 1) for f in file_fields(coll))
        if coll is not None
        else 0
    )
    return min(
        app.config.max_body_size + room, max(app.config.max_upload_size, app.config.max_body_size)
    )


async def create_record(request: Request) -> Response:
    app = get_app(request)
    try:
        body = await read_data(request, app.config.max_body_size, lambda: _upload_limit(request))
        info = await request_info(request, body)
        projection = _projection(info)
        coll = app.collection(
            request.path_params["collection"], "Missing or invalid collection context."
        )
        record = await actions.create_record(app, coll, body, info)
        return JSONResponse(await present(app, coll, record, info, projection))
    finally:
        await close_body(request)


async def update_record(request: Request) -> Response:
    app = get_app(request)
    try:
        body = await read_data(request, app.config.max_body_size, lambda: _upload_limit(request))
        info = await request_info(request, body)
        projection = _projection(info)
        coll = app.collection(
            request.path_params["collection"], "Missing or invalid collection context."
        )
        record = await actions.update_record(app, coll, request.path_params["id"], body, info)
        return JSONResponse(await present(app, coll, record, info, projection))
    finally:
        await close_body(request)


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
