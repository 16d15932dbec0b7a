"""Record hooks: handlers run around the default action, inside its transaction."""

from __future__ import annotations

from typing import Any

import httpx

from keel.core.app import App
from keel.core.errors import BadRequestError
from keel.core.events import RecordEvent


async def test_hooks_wrap_the_default_action(
    app: App, client: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    """A handler can change the record before the write and see it after; order is kept."""
    seen: list[str] = []

    async def shout(e: RecordEvent) -> None:
        seen.append("before")
        e.record.data["name"] = str(e.record.data["name"]).upper()
        await e.next()
        seen.append("after")

    app.on_record_create.bind(shout)
    created = await client.post("/api/collections/authors/records", json={"name": "ann"})
    assert 200 == created.status_code, created.text
    assert "ANN" == created.json()["name"]
    stored = await client.get(f"/api/collections/authors/records/{created.json()['id']}")
    assert "ANN" == stored.json()["name"]
    assert ["before", "after"] == seen


async def test_a_hook_error_rolls_the_write_back(
    app: App, client: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    """A handler that raises after the write leaves nothing behind."""

    async def refuse(e: RecordEvent) -> None:
        await e.next()
        raise BadRequestError("Refused by a hook.")

    app.on_record_create.bind(refuse)
    response = await client.post("/api/collections/authors/records", json={"name": "ann"})
    assert (400, "Refused by a hook.") == (response.status_code, response.json()["message"])
    app.on_record_create.unbind(refuse)
    assert 0 == (await client.get("/api/collections/authors/records")).json()["totalItems"]


async def test_a_hook_may_stop_the_chain(
    app: App, client: httpx.AsyncClient, schema: dict[str, Any], author_ids: list[str]
) -> None:
    """A delete handler that does not call next() keeps the record."""

    async def keep(e: RecordEvent) -> None:
        return None

    app.on_record_delete.bind(keep)
    response = await client.delete(f"/api/collections/authors/records/{author_ids[0]}")
    assert 204 == response.status_code
    assert (
        200 == (await client.get(f"/api/collections/authors/records/{author_ids[0]}")).status_code
    )
