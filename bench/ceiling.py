"""The bare-HTTP ceiling: the smallest Starlette JSON endpoint.

Served as ``keel serve`` serves Keel: uvicorn with uvloop and httptools and
Keel's HTTP protocol (one socket write per response), the same worker
count, no access log. So the ``view by id`` figure can be read as a share of
what the stack could do with no database and no application code at all.

    python bench/ceiling.py --port 8000 --workers 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keel.http.protocol import HttpProtocol


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


app = Starlette(routes=[Route("/", hello)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    uvicorn.run(
        "ceiling:app",
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        http=HttpProtocol,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
