"""The bare-HTTP ceiling: the smallest Starlette JSON endpoint.

Served by the ASGI server Keel uses (uvicorn, with uvloop and httptools when
installed, as ``keel serve`` gets them) and the same worker count, so the
``view by id`` figure can be read as a share of what the stack could do with
no database and no application code at all.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


app = Starlette(routes=[Route("/", hello)])
