"""Rules compiled once per caller: kept plans never outlive the values they used."""

from __future__ import annotations

import httpx

from tests.api.people import make_auth_collection, register, sign_in


async def _notes(client: httpx.AsyncClient, su: dict[str, str], list_rule: str) -> None:
    body = {
        "name": "notes",
        "type": "base",
        "listRule": list_rule,
        "fields": [{"name": "owner", "type": "text"}, {"name": "team", "type": "text"}],
    }
    response = await client.post("/api/collections", json=body, headers=su)
    assert 200 == response.status_code, response.text


async def _listed(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/api/collections/notes/records?sort=owner", headers=headers)
    assert 200 == response.status_code, response.text
    return [item["owner"] for item in response.json()["items"]]


async def test_each_caller_sees_their_own_rows(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """Under ``owner = @request.auth.id`` two callers, in turn, each see only their rows."""
    await make_auth_collection(client, su)
    ids = [await register(client, f"u{n}@example.com") for n in range(2)]
    tokens = [await sign_in(client, f"u{n}@example.com") for n in range(2)]
    await _notes(client, su, "owner = @request.auth.id")
    for owner in (*ids, ids[0]):
        response = await client.post(
            "/api/collections/notes/records", json={"owner": owner}, headers=su
        )
        assert 200 == response.status_code, response.text
    for _ in range(2):
        assert [ids[0], ids[0]] == await _listed(client, {"Authorization": tokens[0]})
        assert [ids[1]] == await _listed(client, {"Authorization": tokens[1]})
        assert [] == await _listed(client, {})


async def test_a_changed_caller_field_applies_at_once(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """``@request.auth.verified``: verifying the caller shows the rows on the next request."""
    await make_auth_collection(client, su)
    user_id = await register(client, "u@example.com")
    token = {"Authorization": await sign_in(client, "u@example.com")}
    await _notes(client, su, "@request.auth.verified = true")
    response = await client.post("/api/collections/notes/records", json={"owner": "x"}, headers=su)
    assert 200 == response.status_code, response.text
    assert [] == await _listed(client, token)
    response = await client.patch(
        f"/api/collections/users/records/{user_id}", json={"verified": True}, headers=su
    )
    assert 200 == response.status_code, response.text
    assert ["x"] == await _listed(client, token)


async def test_request_values_of_every_kind_key_the_plan(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """Each header value and each query value gets a plan of its own."""
    await _notes(client, su, "team = @request.headers.x_team || team = @request.query.team")
    for team in ("1", "a", "b"):
        response = await client.post(
            "/api/collections/notes/records", json={"owner": team, "team": team}, headers=su
        )
        assert 200 == response.status_code, response.text
    for _ in range(2):
        assert ["a"] == await _listed(client, {"X-Team": "a"})
        assert ["b"] == await _listed(client, {"X-Team": "b"})
        response = await client.get("/api/collections/notes/records?team=1")
        assert ["1"] == [item["team"] for item in response.json()["items"]]
        response = await client.get("/api/collections/notes/records?team=b&sort=owner")
        assert ["b"] == [item["team"] for item in response.json()["items"]]
