"""A small server-sent events client for tests, on httpx streaming.

A background task reads the stream and puts each event on a queue, so tests
wait for events with a timeout instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import httpx
import orjson


@dataclass(frozen=True)
class Event:
    """One server-sent event."""

    name: str
    data: Any
    id: str


class SSEClient:
    """One ``/api/realtime`` connection.

    Args:
        base_url: the server, e.g. ``http://127.0.0.1:8090``.
        headers: sent with the GET (e.g. ``Last-Event-ID``).
    """

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url
        self.headers = headers or {}
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.client_id = ""
        self._http = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30.0, read=None))
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SSEClient:
        self._task = asyncio.get_running_loop().create_task(self._read())
        first = await self.next(10.0)
        assert "PB_CONNECT" == first.name, first
        self.client_id = first.data["clientId"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._http.aclose()

    async def _read(self) -> None:
        try:
            async with self._http.stream("GET", "/api/realtime", headers=self.headers) as resp:
                assert 200 == resp.status_code
                name, data, event_id = "", "", ""
                async for line in resp.aiter_lines():
                    if line == "":
                        if name:
                            await self.queue.put(Event(name, orjson.loads(data), event_id))
                        name, data, event_id = "", "", ""
                    elif line.startswith(":"):
                        continue
                    else:
                        key, _, value = line.partition(":")
                        if key == "event":
                            name = value
                        elif key == "data":
                            data += value
                        elif key == "id":
                            event_id = value
        finally:
            self.queue.put_nowait(None)  # the stream ended

    async def next(self, seconds: float = 10.0) -> Event:
        """The next event; fails when none arrives within ``seconds``."""
        async with asyncio.timeout(seconds):
            event = await self.queue.get()
        assert event is not None, "the stream ended"
        return event

    async def none_within(self, seconds: float) -> list[Event]:
        """Events that arrive within ``seconds`` (for checking that nothing leaks)."""
        got: list[Event] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    event = await self.queue.get()
                    if event is None:
                        break
                    got.append(event)
        return got

    async def subscribe(self, topics: list[str], headers: dict[str, str] | None = None) -> None:
        """Set this client's subscriptions (204 expected)."""
        response = await self._http.post(
            "/api/realtime",
            json={"clientId": self.client_id, "subscriptions": topics},
            headers=headers or {},
        )
        assert 204 == response.status_code, response.text
