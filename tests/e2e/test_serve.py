"""``keel serve`` with two workers, over real HTTP, on SQLite and PostgreSQL.

Every request opens a fresh connection, so consecutive requests land on either
worker: what one worker acknowledged must be what the other one reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import public_collection

pytestmark = pytest.mark.e2e

NOTES = public_collection(
    "notes", {"name": "title", "type": "text"}, {"name": "n", "type": "number"}
)


@pytest.fixture
async def notes(http: httpx.AsyncClient, su: dict[str, str]) -> dict[str, Any]:
    """The public ``notes`` collection, created through the API."""
    response = await http.post("/api/collections", headers=su, json=NOTES)
    assert 200 == response.status_code, response.text
    collection: dict[str, Any] = response.json()
    return collection


async def test_acknowledged_writes_are_visible_to_the_next_read(
    http: httpx.AsyncClient, notes: dict[str, Any]
) -> None:
    """Every acknowledged create is returned by the next view and list, on any worker."""
    url = "/api/collections/notes/records"
    for i in range(100):
        created = await http.post(url, json={"title": f"note {i}", "n": i})
        assert 200 == created.status_code, created.text
        record = created.json()
        viewed = await http.get(f"{url}/{record['id']}")
        assert (200, record) == (viewed.status_code, viewed.json())
        listed = await http.get(url, params={"perPage": 500})
        assert 200 == listed.status_code, listed.text
        page = listed.json()
        found = next((item for item in page["items"] if item["id"] == record["id"]), None)
        assert (i + 1, record) == (page["totalItems"], found)


async def test_schema_change_is_visible_to_the_next_create(
    http: httpx.AsyncClient, su: dict[str, str], notes: dict[str, Any]
) -> None:
    """A field added through one worker is accepted by the very next create on any worker."""
    fields = notes["fields"]
    for i in range(6):
        name = f"extra{i}"
        fields = [*fields, {"name": name, "type": "text"}]
        patched = await http.patch("/api/collections/notes", headers=su, json={"fields": fields})
        assert 200 == patched.status_code, patched.text
        fields = patched.json()["fields"]
        created = await http.post(
            "/api/collections/notes/records", json={"title": "t", name: f"value {i}"}
        )
        assert 200 == created.status_code, created.text
        assert f"value {i}" == created.json().get(name)
        viewed = await http.get(f"/api/collections/notes/records/{created.json()['id']}")
        assert f"value {i}" == viewed.json().get(name)


async def test_concurrent_creates_all_succeed(
    http: httpx.AsyncClient, notes: dict[str, Any]
) -> None:
    """Fifty concurrent creates all succeed with 200 and are all stored."""
    url = "/api/collections/notes/records"
    responses = await asyncio.gather(
        *(http.post(url, json={"title": f"c{i}", "n": i}) for i in range(50))
    )
    assert [200] * 50 == [r.status_code for r in responses], [
        r.text for r in responses if r.status_code != 200
    ]
    listed = await http.get(url, params={"perPage": 500})
    stored = {(item["title"], item["n"]) for item in listed.json()["items"]}
    assert {(f"c{i}", i) for i in range(50)} == stored
