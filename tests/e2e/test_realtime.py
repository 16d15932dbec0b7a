"""Realtime through a real ``keel serve --workers 2``: the SSE protocol, rules, resume.

Writes go through connections that are never reused, so they land on either
worker while the stream is held by one of them: delivery crosses workers.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.sse import SSEClient

pytestmark = pytest.mark.e2e

POSTS: dict[str, Any] = {
    "name": "posts",
    "listRule": "public = true || owner = @request.auth.id",
    "viewRule": "public = true || owner = @request.auth.id",
    "createRule": "",
    "updateRule": "",
    "deleteRule": "",
    "fields": [
        {"name": "title", "type": "text"},
        {"name": "public", "type": "bool"},
        {"name": "owner", "type": "text"},
        {"name": "secret", "type": "text", "hidden": True},
    ],
}


@pytest.fixture
async def posts(http: httpx.AsyncClient, su: dict[str, str]) -> str:
    response = await http.post("/api/collections", json=POSTS, headers=su)
    assert 200 == response.status_code, response.text
    collection_id: str = response.json()["id"]
    return collection_id


async def test_create_update_delete_events(
    server: Server, http: httpx.AsyncClient, posts: str
) -> None:
    """A subscriber gets create, update and delete of records it may see, named by topic."""
    async with SSEClient(server.base_url) as sse:
        await sse.subscribe(["posts/*"])
        created = (
            await http.post(
                "/api/collections/posts/records", json={"title": "a", "public": True, "secret": "s"}
            )
        ).json()
        event = await sse.next()
        assert ("posts/*", "create", created["id"]) == (
            event.name,
            event.data["action"],
            event.data["record"]["id"],
        )
        assert "secret" not in event.data["record"]  # hidden from a guest, as over REST
        assert event.id.isdigit()
        url = f"/api/collections/posts/records/{created['id']}"
        await http.patch(url, json={"title": "b"})
        event = await sse.next()
        assert ("update", "b") == (event.data["action"], event.data["record"]["title"])
        await http.delete(url)
        event = await sse.next()
        assert ("delete", created["id"]) == (event.data["action"], event.data["record"]["id"])


async def test_rules_per_subscriber_and_enter_leave(
    server: Server, http: httpx.AsyncClient, posts: str
) -> None:
    """Private records reach nobody else; records entering/leaving visibility send create/delete."""
    async with SSEClient(server.base_url) as guest:
        await guest.subscribe(["posts/*"])
        hidden = (
            await http.post(
                "/api/collections/posts/records",
                json={"title": "private", "public": False, "owner": "u1"},
            )
        ).json()
        shown = (
            await http.post(
                "/api/collections/posts/records",
                json={"title": "public", "public": True, "owner": "u1"},
            )
        ).json()
        event = await guest.next()
        assert shown["id"] == event.data["record"]["id"]  # the private one never came
        await http.patch(f"/api/collections/posts/records/{hidden['id']}", json={"public": True})
        entered = await guest.next()
        assert ("create", "enter", hidden["id"]) == (
            entered.data["action"],
            entered.data["change"],
            entered.data["record"]["id"],
        )
        await http.patch(f"/api/collections/posts/records/{shown['id']}", json={"public": False})
        left = await guest.next()
        assert ("delete", "leave", shown["id"]) == (
            left.data["action"],
            left.data["change"],
            left.data["record"]["id"],
        )
        await http.patch(f"/api/collections/posts/records/{shown['id']}", json={"title": "x"})
        assert [] == await guest.none_within(1.0)


async def test_record_topic_filter_and_fields(
    server: Server, http: httpx.AsyncClient, posts: str
) -> None:
    """A record topic gets only that record; options apply filter and fields."""
    a = await http.post("/api/collections/posts/records", json={"title": "a", "public": True})
    b = await http.post("/api/collections/posts/records", json={"title": "b", "public": True})
    a_id, b_id = a.json()["id"], b.json()["id"]
    options = '{"query":{"filter":"title != \'skip\'","fields":"id,title"}}'
    async with SSEClient(server.base_url) as sse:
        await sse.subscribe([f"posts/{a_id}", f"posts/*?options={options}"])
        await http.patch(f"/api/collections/posts/records/{b_id}", json={"title": "skip"})
        left = await sse.next()  # b stopped matching the filter: it leaves
        assert ("delete", "leave", b_id) == (
            left.data["action"],
            left.data["change"],
            left.data["record"]["id"],
        )
        await http.patch(f"/api/collections/posts/records/{a_id}", json={"title": "a2"})
        got = [await sse.next(), await sse.next()]
        assert {f"posts/{a_id}", f"posts/*?options={options}"} == {e.name for e in got}
        projected = next(e for e in got if e.name.startswith("posts/*"))
        assert {"id", "title"} == set(projected.data["record"])
        await http.patch(f"/api/collections/posts/records/{b_id}", json={"title": "skip"})
        assert [] == await sse.none_within(0.5)  # b matched before neither after: nothing


async def test_subscription_errors(
    server: Server, http: httpx.AsyncClient, su: dict[str, str], posts: str
) -> None:
    """Unknown clients 404, bad topics 400, and a client's auth cannot change (403)."""
    unknown = await http.post(
        "/api/realtime", json={"clientId": "nope", "subscriptions": ["posts/*"]}
    )
    assert 404 == unknown.status_code
    async with SSEClient(server.base_url) as sse:
        for bad in (["posts"], ["/x"], [""], "posts/*", [1]):
            response = await http.post(
                "/api/realtime", json={"clientId": sse.client_id, "subscriptions": bad}
            )
            assert 400 == response.status_code, (bad, response.text)
        await sse.subscribe(["posts/*"], headers=su)
        other = await http.post(
            "/api/realtime", json={"clientId": sse.client_id, "subscriptions": ["posts/*"]}
        )
        assert 403 == other.status_code


async def test_resume_after_reconnect(server: Server, http: httpx.AsyncClient, posts: str) -> None:
    """A client reconnecting with Last-Event-ID gets the events it missed, once."""
    async with SSEClient(server.base_url) as sse:
        await sse.subscribe(["posts/*"])
        first = (
            await http.post("/api/collections/posts/records", json={"title": "1", "public": True})
        ).json()
        last_seen = (await sse.next()).id
        assert first["id"]
    missed = [
        (
            await http.post(
                "/api/collections/posts/records", json={"title": str(i), "public": True}
            )
        ).json()["id"]
        for i in range(3)
    ]
    async with SSEClient(server.base_url, {"Last-Event-ID": last_seen}) as again:
        await again.subscribe(["posts/*"])
        got = [(await again.next()).data["record"]["id"] for _ in missed]
        assert missed == got
        live = (
            await http.post(
                "/api/collections/posts/records", json={"title": "live", "public": True}
            )
        ).json()
        assert live["id"] == (await again.next()).data["record"]["id"]
        assert [] == await again.none_within(0.5)


async def test_oauth2_redirect_reaches_the_client(server: Server, http: httpx.AsyncClient) -> None:
    """The all-in-one OAuth2 flow: the provider's redirect is handed to the client in state."""
    async with SSEClient(server.base_url) as sse:
        await sse.subscribe(["@oauth2"])
        done = await http.get(
            "/api/oauth2-redirect", params={"state": sse.client_id, "code": "the-code"}
        )
        assert 200 == done.status_code
        assert "window.close" in done.text
        event = await sse.next()
        assert ("@oauth2", {"state": sse.client_id, "code": "the-code", "error": ""}) == (
            event.name,
            event.data,
        )
        posted = await http.post(
            "/api/oauth2-redirect", data={"state": sse.client_id, "error": "access_denied"}
        )
        assert 400 == posted.status_code
        assert "access_denied" == (await sse.next()).data["error"]
    unknown = await http.get("/api/oauth2-redirect", params={"state": "nobody", "code": "c"})
    assert 400 == unknown.status_code
