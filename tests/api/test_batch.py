"""POST /api/batch: transactional record writes with PocketBase's limits."""

from __future__ import annotations

from typing import Any

import httpx

RECORDS = "/api/collections/authors/records"


async def _enable(client: httpx.AsyncClient, su: dict[str, str], **batch: Any) -> None:
    response = await client.patch(
        "/api/settings", json={"batch": {"enabled": True, **batch}}, headers=su
    )
    assert 200 == response.status_code, response.text


async def test_batch_disabled_by_default(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    """Batch requests are refused until enabled in the settings."""
    response = await client.post(
        "/api/batch", json={"requests": [{"method": "POST", "url": RECORDS, "body": {}}]}
    )
    assert 403 == response.status_code
    assert "Batch requests are not allowed." == response.json()["message"]


async def test_batch_success(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Create, update, upsert and delete run together and answer one response each."""
    await _enable(client, su)
    existing = (await client.post(RECORDS, json={"name": "old"})).json()
    requests = [
        {"method": "POST", "url": RECORDS, "body": {"name": "new", "id": "batchcreated001"}},
        {"method": "PATCH", "url": f"{RECORDS}/{existing['id']}", "body": {"name": "renamed"}},
        {"method": "PUT", "url": RECORDS, "body": {"id": "batchcreated001", "name": "upserted"}},
        {"method": "PUT", "url": RECORDS, "body": {"id": "batchcreated002", "name": "inserted"}},
        {"method": "DELETE", "url": f"{RECORDS}/{existing['id']}"},
    ]
    response = await client.post("/api/batch", json={"requests": requests})
    assert 200 == response.status_code, response.text
    results = response.json()
    assert [200, 200, 200, 200, 204] == [r["status"] for r in results]
    assert "body" not in results[4]
    assert "upserted" == results[2]["body"]["name"]
    names = sorted(r["name"] for r in (await client.get(RECORDS)).json()["items"])
    assert ["inserted", "upserted"] == names


async def test_batch_failure_rolls_back(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """One failing request undoes the whole batch and is reported by index."""
    await _enable(client, su)
    requests = [
        {"method": "POST", "url": RECORDS, "body": {"name": "first"}},
        {"method": "POST", "url": RECORDS, "body": {"name": "second", "nope": 1}},
    ]
    response = await client.post("/api/batch", json={"requests": requests})
    assert 400 == response.status_code
    body = response.json()
    assert "Batch transaction failed." == body["message"]
    failure = body["data"]["requests"]["1"]
    assert "batch_request_failed" == failure["code"]
    assert 400 == failure["response"]["status"]
    assert "validation_unknown_field" == failure["response"]["data"]["nope"]["code"]
    assert 0 == (await client.get(RECORDS)).json()["totalItems"]


async def test_batch_limits(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Too many, empty, malformed and unsupported batch requests are 4xx."""
    await _enable(client, su, maxRequests=2)
    three = [{"method": "POST", "url": RECORDS, "body": {}}] * 3
    too_many = await client.post("/api/batch", json={"requests": three})
    assert 400 == too_many.status_code
    assert "validation_length_too_long" == too_many.json()["data"]["requests"]["code"]
    empty = await client.post("/api/batch", json={"requests": []})
    assert "validation_required" == empty.json()["data"]["requests"]["code"]
    malformed = await client.post(
        "/api/batch", content=b"{", headers={"content-type": "application/json"}
    )
    assert 400 == malformed.status_code
    other = await client.post(
        "/api/batch", json={"requests": [{"method": "GET", "url": "/api/settings"}]}
    )
    assert 400 == other.status_code
    assert 404 == other.json()["data"]["requests"]["0"]["response"]["status"]


async def test_batch_respects_rules(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Each batched request is checked against its collection's rules."""
    await _enable(client, su)
    await client.patch("/api/collections/authors", json={"createRule": None}, headers=su)
    response = await client.post(
        "/api/batch", json={"requests": [{"method": "POST", "url": RECORDS, "body": {"name": "x"}}]}
    )
    assert 403 == response.json()["data"]["requests"]["0"]["response"]["status"]
    as_su = await client.post(
        "/api/batch",
        json={"requests": [{"method": "POST", "url": RECORDS, "body": {"name": "x"}}]},
        headers=su,
    )
    assert 200 == as_su.status_code, as_su.text
