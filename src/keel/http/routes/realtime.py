"""``/api/realtime``: PocketBase's server-sent events protocol.

``GET`` opens the stream (first event ``PB_CONNECT`` with the ``clientId``);
``POST`` with ``{clientId, subscriptions}`` binds the request's auth to that
client and sets its topics. Comments (``: ping``) keep idle proxies from
closing the stream; a stream that sent no event for ``IDLE_SECONDS`` ends, and
every stream ends after ``MAX_LIFETIME_SECONDS``; clients reconnect (sending
``Last-Event-ID``) and resume.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from keel.http.body import read_json
from keel.http.context import get_app, request_info
from keel.realtime.broker import Broker, set_subscriptions

HEARTBEAT_SECONDS = 30.0
IDLE_SECONDS = 300.0
MAX_LIFETIME_SECONDS = 24 * 3600.0


def get_broker(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


async def connect(request: Request) -> Response:
    await get_app(request).refresh()
    broker = get_broker(request)
    client = await broker.connect(request.headers.get("last-event-id", ""))

    async def stream() -> AsyncIterator[bytes]:
        started = last_event = time.monotonic()
        try:
            while not client.closed:
                now = time.monotonic()
                if now - last_event > IDLE_SECONDS or now - started > MAX_LIFETIME_SECONDS:
                    break
                try:
                    chunk = await asyncio.wait_for(client.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if chunk is None:
                    break
                last_event = time.monotonic()
                yield chunk
        finally:
            await broker.disconnect(client)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def subscribe(request: Request) -> Response:
    app = get_app(request)
    body = await read_json(request, app.config.max_body_size)
    info = await request_info(request)
    body = body if isinstance(body, dict) else {}
    await set_subscriptions(app, body.get("clientId"), body.get("subscriptions"), info.auth)
    return Response(status_code=204)


routes = [
    Route("/api/realtime", connect, methods=["GET"]),
    Route("/api/realtime", subscribe, methods=["POST"]),
]
