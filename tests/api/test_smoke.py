"""A first end-to-end pass over the records API on both engines."""

from __future__ import annotations

import httpx


async def test_create_and_list_records(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """A record created through the API is returned by the list endpoint."""
    created = await client.post(
        "/api/collections",
        headers=su,
        json={
            "name": "posts",
            "listRule": "",
            "createRule": "",
            "fields": [{"name": "title", "type": "text"}],
        },
    )
    assert 200 == created.status_code, created.text
    record = await client.post("/api/collections/posts/records", json={"title": "hello"})
    assert 200 == record.status_code, record.text
    listed = await client.get("/api/collections/posts/records")
    assert [record.json()] == listed.json()["items"]
