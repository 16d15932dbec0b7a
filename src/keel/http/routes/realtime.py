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
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from keel.core.outbox import client_message
from keel.core.transaction import write_transaction
from keel.http.body import read_data, read_json
from keel.http.context import fresh_app, get_app, request_info
from keel.realtime.broker import OAUTH2_TOPIC, Broker, set_subscriptions

HEARTBEAT_SECONDS = 30.0
IDLE_SECONDS = 300.0
MAX_LIFETIME_SECONDS = 24 * 3600.0


def get_broker(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


async def connect(request: Request) -> Response:
    await fresh_app(request)
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
                    # Not ``asyncio.wait_for``: on Python 3.11 it swallows a
                    # cancellation (the client went away) that arrives in the
                    # turn the get ends (see Broker._run).
                    async with asyncio.timeout(HEARTBEAT_SECONDS):
                        chunk = await client.queue.get()
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


_REDIRECT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><p>{title}</p><p>You can close this window.</p>
<script>window.close();</script></body></html>
"""


async def oauth2_redirect(request: Request) -> Response:
    """The provider's redirect of the all-in-one OAuth2 flow (popup).

    The SDK used its realtime ``clientId`` as the OAuth2 ``state``; the code
    (or error) goes to that client as an ``@oauth2`` event, and the SDK then
    calls ``auth-with-oauth2`` with it and its code verifier.
    """
    app = get_app(request)
    params: dict[str, str] = dict(request.query_params)
    if request.method == "POST":  # response_mode=form_post
        body = await read_data(request, app.config.max_body_size)
        params.update({k: v for k, v in body.items() if isinstance(v, str)})
    state = params.get("state", "")
    data = {"state": state, "code": params.get("code", ""), "error": params.get("error", "")}
    known = bool(state) and await app.db.fetch_one(
        "SELECT 1 FROM _keel_realtime WHERE id = ?", (state,)
    )
    if known:
        async with write_transaction(app) as tx:
            await client_message(tx, OAUTH2_TOPIC, state, data)
    ok = bool(known) and bool(data["code"]) and not data["error"]
    title = "Authentication completed." if ok else "Authentication failed."
    headers = {"Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'"}
    return HTMLResponse(_REDIRECT_PAGE.format(title=title), 200 if ok else 400, headers=headers)


routes += [Route("/api/oauth2-redirect", oauth2_redirect, methods=["GET", "POST"])]
