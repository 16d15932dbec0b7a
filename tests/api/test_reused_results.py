"""List pages and totals are reused only while nothing was committed, in any worker."""

from __future__ import annotations

from typing import Any

import httpx

from keel.core.app import App
from keel.core.config import Config
from keel.core.result_cache import reusable
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
                for _ in range(2):
                    page = (await a.get(url, params={"sort": "-created,-id"})).json()
                    assert expected == page["totalItems"] == len(page["items"])
    finally:
        await first.stop()
        await second.stop()


async def test_pages_follow_every_write(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    """Each acknowledged create, update or delete shows in the very next page."""
    url = "/api/collections/authors/records"
    query = {"sort": "name", "skipTotal": "1"}
    names: list[str] = []
    for n in range(4):
        created = await client.post(url, json={"name": f"n{n}"})
        names.append(created.json()["name"])
        for _ in range(2):  # the second read may come from the cache
            assert names == [
                i["name"] for i in (await client.get(url, params=query)).json()["items"]
            ]
    first = (await client.get(url, params=query)).json()["items"][0]
    await client.patch(f"{url}/{first['id']}", json={"name": "z0"})
    assert ["n1", "n2", "n3", "z0"] == [
        i["name"] for i in (await client.get(url, params=query)).json()["items"]
    ]
    await client.delete(f"{url}/{first['id']}")
    assert ["n1", "n2", "n3"] == [
        i["name"] for i in (await client.get(url, params=query)).json()["items"]
    ]


async def test_random_order_is_never_reused(
    client: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    """``sort=@random`` draws a new order for every request, with no write in between."""
    url = "/api/collections/authors/records"
    for n in range(30):
        await client.post(url, json={"name": f"n{n}"})
    query = {"sort": "@random", "perPage": "30", "skipTotal": "1"}
    orders = set()
    for _ in range(3):
        page = (await client.get(url, params=query)).json()["items"]
        orders.add(tuple(i["id"] for i in page))
    # Three equal orders out of 30! would mean the first was served again.
    assert len(orders) > 1


def test_clock_and_random_reads_are_not_reusable() -> None:
    """SQL that reads the clock or draws at random is never reused; plain SQL is."""
    assert reusable('SELECT * FROM "posts" WHERE ("views" > ?) ORDER BY "views" DESC')
    assert not reusable('SELECT * FROM "posts" ORDER BY RANDOM() LIMIT ?')
    assert not reusable('SELECT COUNT(*) FROM "posts" WHERE (strftime(?, ?) = ?)')


async def test_equal_values_of_other_types_are_other_queries(
    client: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    """``name=true`` and ``name=1`` bind 1 and 1.0 (equal in Python): neither reuses the other."""
    url = "/api/collections/authors/records"
    for name in ("1", "1.0"):
        await client.post(url, json={"name": name})

    async def names(flt: str) -> list[str]:
        page = (await client.get(url, params={"filter": flt, "skipTotal": "1"})).json()
        return [i["name"] for i in page["items"]]

    first = {flt: await names(flt) for flt in ("name=true", "name=1")}
    await client.post(url, json={"name": "other"})  # a commit: nothing is reused any more
    second = {flt: await names(flt) for flt in ("name=1", "name=true")}
    assert first == second
