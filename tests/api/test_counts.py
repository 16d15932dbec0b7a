"""List totals are reused only while nothing was committed, in any worker."""

from __future__ import annotations

from typing import Any

import httpx

from keel.core.app import App
from keel.core.config import Config
from keel.http.app import create_app


async def test_totals_follow_every_write(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    """Each acknowledged create or delete shows in the very next total."""
    url = "/api/collections/authors/records"
    ids = []
    for expected in range(1, 6):
        created = await client.post(url, json={"name": f"n{expected}"})
        ids.append(created.json()["id"])
        for _ in range(2):  # the second read may come from the cache
            assert expected == (await client.get(url, params={"perPage": 1})).json()["totalItems"]
    await client.delete(f"{url}/{ids[0]}")
    assert 4 == (await client.get(url, params={"perPage": 1})).json()["totalItems"]


async def test_totals_see_writes_of_another_worker(config: Config) -> None:
    """A write committed by another App (another worker process) shows in this one's totals."""
    first, second = App(config), App(config)
    await first.start()
    await second.start()
    try:
        transports = [httpx.ASGITransport(app=create_app(a)) for a in (first, second)]
        async with (
            httpx.AsyncClient(transport=transports[0], base_url="http://a") as a,
            httpx.AsyncClient(transport=transports[1], base_url="http://b") as b,
        ):
            from keel.core.actions.collections import create_collection

            await create_collection(first, {"name": "notes", "listRule": "", "createRule": ""})
            url = "/api/collections/notes/records"
            for expected in range(1, 4):
                assert 200 == (await b.post(url, json={})).status_code
                assert expected == (await a.get(url, params={"perPage": 1})).json()["totalItems"]
                assert expected == (await a.get(url, params={"perPage": 1})).json()["totalItems"]
    finally:
        await first.stop()
        await second.stop()
