"""List pages, totals and responses are reused only while nothing was committed, anywhere."""

from __future__ import annotations

from typing import Any

import httpx

from keel.core.actions.listing import ListParams
from keel.core.actions.records import list_key, list_query, view_key
from keel.core.app import App
from keel.core.config import Config
from keel.core.request import RequestInfo
from keel.core.result_cache import reusable
from keel.http.app import create_app
from tests.api.people import make_auth_collection, mint_key, register, sign_in


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


# -- view responses ---------------------------------------------------------------


async def _notes(client: httpx.AsyncClient, su: dict[str, str], **rules: Any) -> str:
    """A ``notes`` collection with an owner, a hidden field and ``rules``; its URL."""
    users = await make_auth_collection(client, su)
    body = {
        "name": "notes",
        "fields": [
            {"name": "text", "type": "text"},
            {"name": "secret", "type": "text", "hidden": True},
            {"name": "owner", "type": "relation", "collectionId": users["id"], "maxSelect": 1},
        ],
        "createRule": "",
        **rules,
    }
    assert 200 == (await client.post("/api/collections", json=body, headers=su)).status_code
    return "/api/collections/notes/records"


async def test_views_follow_every_write(
    client: httpx.AsyncClient, su: dict[str, str], config: Config
) -> None:
    """A view shows each acknowledged update, made here or by another worker."""
    url = await _notes(client, su, viewRule="", updateRule="")
    note = (await client.post(url, json={"text": "v0"})).json()
    other = App(config)
    await other.start()
    try:
        transport = httpx.ASGITransport(app=create_app(other))
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as b:
            for n in range(1, 5):
                writer = b if n % 2 else client
                assert (
                    200
                    == (
                        await writer.patch(f"{url}/{note['id']}", json={"text": f"v{n}"})
                    ).status_code
                )
                for _ in range(2):  # the second read may be reused
                    assert f"v{n}" == (await client.get(f"{url}/{note['id']}")).json()["text"]
    finally:
        await other.stop()


async def _ann_and_bob(client: httpx.AsyncClient) -> tuple[str, dict[str, str], dict[str, str]]:
    """Two signed-up users: Ann's id, then Ann's and Bob's auth headers."""
    ann_id = await register(client, "ann@example.com")
    await register(client, "bob@example.com")
    as_ann = {"Authorization": await sign_in(client, "ann@example.com")}
    as_bob = {"Authorization": await sign_in(client, "bob@example.com")}
    return ann_id, as_ann, as_bob


async def test_views_never_cross_callers(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Owners, strangers, guests and superusers each get their own view, in any order."""
    url = await _notes(client, su, viewRule="owner = @request.auth.id")
    ann_id, as_ann, as_bob = await _ann_and_bob(client)
    created = await client.post(url, json={"text": "t", "secret": "s", "owner": ann_id}, headers=su)
    note = f"{url}/{created.json()['id']}"
    for _ in range(2):
        assert 200 == (await client.get(note, headers=as_ann)).status_code
        assert 404 == (await client.get(note, headers=as_bob)).status_code
        assert 404 == (await client.get(note)).status_code
        assert "s" == (await client.get(note, headers=su)).json()["secret"]
        assert "secret" not in (await client.get(note, headers=as_ann)).json()
        assert ["id"] == list(
            (await client.get(note, params={"fields": "id"}, headers=as_ann)).json()
        )


async def test_views_follow_the_headers_a_rule_reads(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A rule on ``@request.headers`` is judged on each request's own headers."""
    url = await _notes(client, su, viewRule="@request.headers.x_team = 'red'")
    note = f"{url}/{(await client.post(url, json={'text': 't'})).json()['id']}"
    for _ in range(2):
        assert 200 == (await client.get(note, headers={"X-Team": "red"})).status_code
        assert 404 == (await client.get(note, headers={"X-Team": "blue"})).status_code


async def test_public_views_show_hidden_fields_to_superusers_only(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """Under a public rule a superuser's view, with hidden fields, is never served to a guest."""
    url = await _notes(client, su, viewRule="")
    note = f"{url}/{(await client.post(url, json={'text': 't', 'secret': 's'})).json()['id']}"
    for _ in range(2):
        assert "s" == (await client.get(note, headers=su)).json()["secret"]
        assert "secret" not in (await client.get(note)).json()


async def test_scoped_superuser_keys_and_guests_share_only_what_both_may_see(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A scoped superuser API key sees no hidden fields; a full superuser token still does."""
    url = await _notes(client, su, viewRule="")
    note = f"{url}/{(await client.post(url, json={'text': 't', 'secret': 's'})).json()['id']}"
    key = await mint_key(client, su, ["notes:view"])
    scoped = {"Authorization": key["key"]}
    for _ in range(2):
        assert "secret" not in (await client.get(note, headers=scoped)).json()
        assert "secret" not in (await client.get(note)).json()
        assert "s" == (await client.get(note, headers=su)).json()["secret"]
        assert "secret" not in (await client.get(note, headers=scoped)).json()


async def test_views_under_a_clock_rule_are_never_kept(
    client: httpx.AsyncClient, su: dict[str, str], app: App
) -> None:
    """A view rule with a date macro binds a new value each millisecond: such views get no key."""
    url = await _notes(client, su, viewRule="created <= @now")
    note = (await client.post(url, json={"text": "t"})).json()
    for _ in range(2):
        assert 200 == (await client.get(f"{url}/{note['id']}")).status_code
    guest = RequestInfo(data_version=await app.refresh())
    assert view_key(app, app.collection("notes"), note["id"], guest) is None
    await client.patch("/api/collections/notes", json={"viewRule": ""}, headers=su)
    guest = RequestInfo(data_version=await app.refresh())
    assert view_key(app, app.collection("notes"), note["id"], guest) is not None


# -- list responses -----------------------------------------------------------------


async def test_lists_never_cross_callers(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Owners, strangers, guests, superusers and scoped keys each get their own list."""
    url = await _notes(client, su, listRule="owner = @request.auth.id || @request.auth.id = ''")
    ann_id, as_ann, as_bob = await _ann_and_bob(client)
    scoped = {"Authorization": (await mint_key(client, su, ["notes:list"]))["key"]}
    await client.post(url, json={"text": "t", "secret": "s", "owner": ann_id}, headers=su)

    async def items(headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
        response = await client.get(url, params=params, headers=headers)
        assert 200 == response.status_code, response.text
        listed: list[dict[str, Any]] = response.json()["items"]
        return listed

    for _ in range(2):
        assert ["t"] == [i["text"] for i in await items(as_ann)]
        assert [] == await items(as_bob)
        assert "secret" not in (await items({}))[0]
        assert "s" == (await items(su))[0]["secret"]
        assert "secret" not in (await items(scoped))[0]
        assert "secret" not in (await items(as_ann))[0]
        assert ["id"] == list((await items(as_ann, fields="id"))[0])


async def test_lists_follow_the_headers_a_rule_reads(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A list rule on ``@request.headers`` is judged on each request's own headers."""
    url = await _notes(client, su, listRule="@request.headers.x_team = 'red'")
    await client.post(url, json={"text": "t"})
    for _ in range(2):
        red = await client.get(url, headers={"X-Team": "red"})
        blue = await client.get(url, headers={"X-Team": "blue"})
        assert (1, 0) == (red.json()["totalItems"], blue.json()["totalItems"])


async def test_lists_reading_the_clock_are_never_kept(
    client: httpx.AsyncClient, su: dict[str, str], app: App
) -> None:
    """A filter or list rule with a date macro gets no key; the same list without one does."""
    url = await _notes(client, su, listRule="created <= @now")
    await client.post(url, json={"text": "t"})
    assert 1 == (await client.get(url)).json()["totalItems"]
    guest = RequestInfo(data_version=await app.refresh())

    def key(filter_text: str) -> object:
        notes = app.collection("notes")
        params = ListParams(filter=filter_text)
        return list_key(app, notes, guest, list_query(app, notes, guest, params))

    assert key("") is None
    await client.patch("/api/collections/notes", json={"listRule": ""}, headers=su)
    await app.refresh()
    assert key("") is not None
    assert key("created >= @todayStart") is None
    assert key("text = 't'") is not None
