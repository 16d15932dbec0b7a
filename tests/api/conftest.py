"""Fixtures for the API tests: a collection with a field of every type."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

AUTHORS: dict[str, Any] = {
    "name": "authors",
    "id": "pbc_1000000001",
    "listRule": "",
    "viewRule": "",
    "createRule": "",
    "updateRule": "",
    "deleteRule": "",
    "fields": [{"name": "name", "type": "text"}],
}

POSTS: dict[str, Any] = {
    "name": "posts",
    "listRule": "",
    "viewRule": "",
    "createRule": "",
    "updateRule": "",
    "deleteRule": "",
    "fields": [
        {
            "name": "title",
            "type": "text",
            "required": True,
            "min": 3,
            "max": 20,
            "pattern": "^[A-Za-z0-9 ]+$",
        },
        {"name": "body", "type": "editor", "maxSize": 100},
        {"name": "views", "type": "number", "min": 0, "max": 1000},
        {"name": "count", "type": "number", "onlyInt": True},
        {"name": "published", "type": "bool"},
        {"name": "contact", "type": "email", "onlyDomains": ["example.com"]},
        {"name": "site", "type": "url"},
        {"name": "when", "type": "date", "min": "2020-01-01", "max": "2030-01-01"},
        {"name": "status", "type": "select", "values": ["draft", "published"], "maxSelect": 1},
        {"name": "tags", "type": "select", "values": ["a", "b", "c", "d"], "maxSelect": 3},
        {"name": "meta", "type": "json", "maxSize": 200},
        {"name": "author", "type": "relation", "collectionId": "pbc_1000000001", "maxSelect": 1},
        {
            "name": "coauthors",
            "type": "relation",
            "collectionId": "pbc_1000000001",
            "maxSelect": 5,
            "cascadeDelete": True,
        },
        {"name": "secret", "type": "text", "hidden": True},
        {"name": "created", "type": "autodate", "onCreate": True, "onUpdate": False},
        {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
    ],
    "indexes": ["CREATE UNIQUE INDEX idx_posts_title ON posts (title)"],
}


@pytest.fixture
async def schema(client: httpx.AsyncClient, su: dict[str, str]) -> dict[str, Any]:
    """The authors and posts collections, created through the API."""
    authors = await client.post("/api/collections", json=AUTHORS, headers=su)
    assert 200 == authors.status_code, authors.text
    posts = await client.post("/api/collections", json=POSTS, headers=su)
    assert 200 == posts.status_code, posts.text
    return {"authors": authors.json(), "posts": posts.json()}


@pytest.fixture
async def author_ids(client: httpx.AsyncClient, schema: dict[str, Any]) -> list[str]:
    ids = []
    for name in ("ann", "bob", "cyd"):
        response = await client.post("/api/collections/authors/records", json={"name": name})
        assert 200 == response.status_code, response.text
        ids.append(response.json()["id"])
    return ids
