"""Auth collections and their people, for the token, API key and rate limit tests."""

from __future__ import annotations

from typing import Any

import httpx

PASSWORD = "correct-horse-1"


async def make_auth_collection(
    client: httpx.AsyncClient, su: dict[str, str], name: str = "users", **extra: Any
) -> dict[str, Any]:
    """An auth collection anyone may register with (``createRule: ""``)."""
    body = {"name": name, "type": "auth", "createRule": "", **extra}
    response = await client.post("/api/collections", json=body, headers=su)
    assert 200 == response.status_code, response.text
    collection: dict[str, Any] = response.json()
    return collection


async def register(client: httpx.AsyncClient, email: str, collection: str = "users") -> str:
    """The id of a new record of ``collection``, with :data:`PASSWORD`."""
    body = {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}
    response = await client.post(f"/api/collections/{collection}/records", json=body)
    assert 200 == response.status_code, response.text
    record_id: str = response.json()["id"]
    return record_id


async def sign_in(
    client: httpx.AsyncClient, email: str, collection: str = "users", password: str = PASSWORD
) -> str:
    """An auth token from a password sign-in that must succeed."""
    response = await client.post(
        f"/api/collections/{collection}/auth-with-password",
        json={"identity": email, "password": password},
    )
    assert 200 == response.status_code, response.text
    token: str = response.json()["token"]
    return token


async def mint_key(
    client: httpx.AsyncClient, headers: dict[str, str], scopes: Any, **extra: Any
) -> dict[str, Any]:
    """A new API key (``POST /api/keys``) that must be minted."""
    response = await client.post(
        "/api/keys", json={"name": "test key", "scopes": scopes, **extra}, headers=headers
    )
    assert 200 == response.status_code, response.text
    minted: dict[str, Any] = response.json()
    return minted
