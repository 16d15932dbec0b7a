"""The ASGI application: routes, error mapping and the App lifecycle."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from keel.core.app import App
from keel.core.config import Config, load_config
from keel.core.errors import KeelError
from keel.http.rate_limit import Limits, RateLimitMiddleware
from keel.http.response import JSONResponse, ReusedResponses, error_body, error_response
from keel.http.routes import auth, batch, collections, files, realtime, records, settings
from keel.realtime.broker import Broker
from keel.storage.db.errors import (
    DatabaseBusyError,
    InvalidValueError,
    SchemaMismatchError,
    StatementTimeoutError,
)

log = logging.getLogger("keel.http")


async def _keel_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeelError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (404, 405):
        message = "The requested resource wasn't found."
        return JSONResponse(error_body(404, message), 404)
    return JSONResponse(error_body(exc.status_code, str(exc.detail)), exc.status_code)


async def _storage_error(request: Request, exc: Exception) -> Response:
    """Storage errors a client can cause or retry; never a 500."""
    if isinstance(exc, SchemaMismatchError):
        # The schema changed under this request (another worker altered the
        # collection between our version check and the statement).
        await request.app.state.keel.reload()
        body = error_body(503, "The collection schema changed during the request, try again.")
        return JSONResponse(body, 503, headers={"Retry-After": "1"})
    if isinstance(exc, InvalidValueError):
        message = "The request contains a value that cannot be stored."
        return JSONResponse(error_body(400, message), 400)
    if isinstance(exc, StatementTimeoutError):
        return JSONResponse(error_body(400, "The query took too long and was cancelled."), 400)
    body = error_body(503, "The database is busy, try again.")
    return JSONResponse(body, 503, headers={"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body(500, "Something went wrong while processing your request."), 500)


def create_app(keel: App, *, started: Callable[[], None] | None = None) -> Starlette:
    """The ASGI app serving ``keel``; it starts and stops the App with the server.

    ``started`` runs once the App and the realtime broker are up.
    """

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await keel.start()
        app.state.views.clear()  # data versions restart with the connection
        app.state.lists.clear()
        broker: Broker = app.state.broker
        await broker.start()
        if started is not None:
            started()
        try:
            yield
        finally:
            await broker.stop()
            await keel.stop()

    app = Starlette(
        # Routes are tried in order: the record routes, which carry most of
        # the traffic, come first.
        routes=[
            *records.routes,
            *settings.routes,
            *collections.routes,
            *auth.routes,
            *batch.routes,
            *files.routes,
            *realtime.routes,
        ],
        exception_handlers={
            KeelError: _keel_error,
            HTTPException: _http_error,
            SchemaMismatchError: _storage_error,
            InvalidValueError: _storage_error,
            StatementTimeoutError: _storage_error,
            DatabaseBusyError: _storage_error,
            Exception: _unexpected,
        },
        middleware=[Middleware(RateLimitMiddleware)],
        lifespan=lifespan,
    )
    app.state.keel = keel
    app.state.broker = Broker(keel)
    app.state.limits = Limits(keel.config.trusted_proxies)
    # Reused list and view responses (HTTP bodies, so kept here rather than on the App).
    app.state.lists = ReusedResponses(records.LIST_CACHE_SIZE, records.LIST_CACHE_MAX_BODY)
    app.state.views = ReusedResponses(records.VIEW_CACHE_SIZE, records.VIEW_CACHE_MAX_BODY)
    return app


#: Allocations between young-generation collections (CPython's default is 700).
GC_THRESHOLD = (10_000, 10, 10)


def create_app_from_env() -> Starlette:
    """Factory for ASGI servers: the configuration comes from ``KEEL_*`` variables.

    It also tunes the worker process's garbage collector (see "Garbage
    collection" in docs/performance.md): young-generation collections run
    less often, and what exists once the App has started (modules, routes,
    the schema, the connections) lives as long as the process, so it is
    frozen out of every later collection. With CPython's defaults, full
    collections scanning all of it ran several times a second under write
    load and set the write p99.
    """
    config: Config = load_config()
    gc.set_threshold(*GC_THRESHOLD)
    return create_app(App(config), started=gc.freeze)
