"""The collections API: validation, live schema changes, delete and import."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.scenario import ApiScenario

BAD_COLLECTIONS = [
    ApiScenario("anonymous", "POST", "/api/collections", 401, body={"name": "x"}),
    ApiScenario(
        "missing name",
        "POST",
        "/api/collections",
        400,
        body={},
        as_superuser=True,
        codes={"name": "validation_required"},
    ),
    ApiScenario(
        "bad name",
        "POST",
        "/api/collections",
        400,
        body={"name": "bad name"},
        as_superuser=True,
        codes={"name": "validation_match_invalid"},
    ),
    ApiScenario(
        "sql name",
        "POST",
        "/api/collections",
        400,
        body={"name": "x; DROP TABLE _collections"},
        as_superuser=True,
        codes={"name": "validation_match_invalid"},
    ),
    ApiScenario(
        "quote name",
        "POST",
        "/api/collections",
        400,
        body={"name": 'x"y'},
        as_superuser=True,
        codes={"name": "validation_match_invalid"},
    ),
    ApiScenario(
        "reserved table",
        "POST",
        "/api/collections",
        400,
        body={"name": "_collections"},
        as_superuser=True,
        codes={"name": "validation_not_in_invalid"},
    ),
    ApiScenario(
        "engine table",
        "POST",
        "/api/collections",
        400,
        body={"name": "sqlite_master"},
        as_superuser=True,
        codes={"name": "validation_not_in_invalid"},
    ),
    ApiScenario(
        "existing",
        "POST",
        "/api/collections",
        400,
        body={"name": "_SUPERUSERS"},
        as_superuser=True,
        codes={"name": "validation_collection_name_exists"},
    ),
    ApiScenario(
        "bad type",
        "POST",
        "/api/collections",
        400,
        body={"name": "x", "type": "weird"},
        as_superuser=True,
        codes={"type": "validation_in_invalid"},
    ),
    ApiScenario(
        "view type",
        "POST",
        "/api/collections",
        400,
        body={"name": "x", "type": "view"},
        as_superuser=True,
        codes={"type": "validation_unsupported_type"},
    ),
    ApiScenario(
        "rule type",
        "POST",
        "/api/collections",
        400,
        body={"name": "x", "listRule": 5},
        as_superuser=True,
        codes={"listRule": "validation_invalid_value"},
    ),
    ApiScenario(
        "fields type",
        "POST",
        "/api/collections",
        400,
        body={"name": "x", "fields": {"a": 1}},
        as_superuser=True,
        codes={"fields": "validation_invalid_value"},
    ),
    ApiScenario("array body", "POST", "/api/collections", 400, raw=b"[]", as_superuser=True),
    ApiScenario("malformed", "POST", "/api/collections", 400, raw=b"{", as_superuser=True),
]


@pytest.mark.parametrize("scenario", BAD_COLLECTIONS, ids=lambda s: s.name)
async def test_create_collection_rejects(
    client: httpx.AsyncClient, su: dict[str, str], scenario: ApiScenario
) -> None:
    """Invalid collections are 4xx in PocketBase's shape and create nothing."""
    await scenario.run(client, su)
    listed = (await client.get("/api/collections", headers=su)).json()
    assert [] == [c["name"] for c in listed["items"] if not c["system"]]


def _fields_error(response: httpx.Response) -> dict[str, Any]:
    assert 400 == response.status_code, response.text
    fields: dict[str, Any] = response.json()["data"]["fields"]
    return fields


@pytest.mark.parametrize(
    ("fields", "position", "key", "code"),
    [
        ([{"name": "expand", "type": "text"}], "1", "name", "validation_not_in_invalid"),
        ([{"name": "collectionId", "type": "text"}], "1", "name", "validation_not_in_invalid"),
        ([{"name": "rowid", "type": "text"}], "1", "name", "validation_not_in_invalid"),
        ([{"name": "bad name", "type": "text"}], "1", "name", "validation_match_invalid"),
        (
            [{"name": "a", "type": "text"}, {"name": "A", "type": "number"}],
            "2",
            None,
            "validation_duplicated_field_name",
        ),
        (
            [{"name": "created", "type": "text"}, {"name": "created", "type": "autodate"}],
            "2",
            None,
            "validation_duplicated_field_name",
        ),
        ([{"name": "s", "type": "select"}], "1", "values", "validation_required"),
        ([{"name": "r", "type": "relation"}], "1", "collectionId", "validation_required"),
        (
            [{"name": "r", "type": "relation", "collectionId": "missing"}],
            "1",
            "collectionId",
            "validation_missing_rel_collection",
        ),
        (
            [{"name": "t", "type": "text", "pattern": "("}],
            "1",
            "pattern",
            "validation_invalid_regex",
        ),
        ([{"name": "t", "type": "text", "min": "5"}], "1", "min", "validation_invalid_value"),
        ([{"name": "t", "type": "text", "bogus": 1}], "1", "bogus", "validation_unknown_option"),
        (
            [{"name": "n", "type": "number", "min": 5, "max": 1}],
            "1",
            "max",
            "validation_min_number_constraint",
        ),
    ],
)
async def test_field_validation(
    client: httpx.AsyncClient,
    su: dict[str, str],
    fields: list[dict[str, Any]],
    position: str,
    key: str | None,
    code: str,
) -> None:
    """Field errors are keyed by position (the id field is 0) and option."""
    response = await client.post(
        "/api/collections", json={"name": "things", "fields": fields}, headers=su
    )
    errors = _fields_error(response)
    actual = errors[position] if key is None else errors[position][key]
    assert code == actual["code"]


async def test_unknown_field_type(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """An unknown field type is a bare 400, as PocketBase cannot load the field list."""
    response = await client.post(
        "/api/collections",
        json={"name": "things", "fields": [{"name": "x", "type": "nope"}]},
        headers=su,
    )
    assert 400 == response.status_code
    assert {} == response.json()["data"]


async def test_sql_keyword_field_names_work(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Field and collection names that are SQL keywords are quoted and just work."""
    body = {
        "name": "select",
        "listRule": "",
        "createRule": "",
        "fields": [{"name": "order", "type": "number"}, {"name": "group", "type": "text"}],
        "indexes": ["CREATE INDEX idx_order ON `select` (`order`)"],
    }
    assert 200 == (await client.post("/api/collections", json=body, headers=su)).status_code
    created = await client.post("/api/collections/select/records", json={"order": 2, "group": "g"})
    assert 200 == created.status_code, created.text
    listed = await client.get("/api/collections/select/records?sort=-order")
    assert [2] == [r["order"] for r in listed.json()["items"]]


async def test_collection_json_shape(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """A collection shows PocketBase's keys, the id field first, option defaults filled."""
    posts = schema["posts"]
    assert {
        "id",
        "name",
        "type",
        "system",
        "fields",
        "indexes",
        "created",
        "updated",
        "listRule",
        "viewRule",
        "createRule",
        "updateRule",
        "deleteRule",
    } == set(posts)
    first = posts["fields"][0]
    assert ("id", "text3208210256", True, "[a-z0-9]{15}") == (
        first["name"],
        first["id"],
        first["primaryKey"],
        first["autogeneratePattern"],
    )
    views = next(f for f in posts["fields"] if f["name"] == "views")
    assert {
        "id",
        "name",
        "type",
        "system",
        "hidden",
        "presentable",
        "help",
        "required",
        "min",
        "max",
        "onlyInt",
    } == set(views)
    viewed = await client.get(f"/api/collections/{posts['id']}", headers=su)
    assert posts == viewed.json()
    by_name = await client.get("/api/collections/POSTS", headers=su)
    assert posts == by_name.json()


async def test_live_schema_changes_keep_data(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Rename, add, change and remove fields; rename the collection; data in kept fields stays."""
    created = await client.post(
        "/api/collections/posts/records",
        json={"title": "Keep this", "views": 7, "status": "draft", "body": "text"},
    )
    record_id = created.json()["id"]
    fields = [dict(f) for f in schema["posts"]["fields"]]
    for f in fields:
        if f["name"] == "views":
            f["name"] = "hits"
        if f["name"] == "status":
            f["maxSelect"] = 2
    fields = [f for f in fields if f["name"] != "body"]
    fields.append({"name": "extra", "type": "text"})
    patch = {
        "name": "articles",
        "fields": fields,
        "indexes": ["CREATE INDEX idx_hits ON articles (hits)"],
    }
    response = await client.patch("/api/collections/posts", json=patch, headers=su)
    assert 200 == response.status_code, response.text
    assert ["CREATE INDEX idx_hits ON articles (hits)"] == response.json()["indexes"]
    assert 404 == (await client.get(f"/api/collections/posts/records/{record_id}")).status_code
    record = (await client.get(f"/api/collections/articles/records/{record_id}")).json()
    assert ("Keep this", 7, ["draft"], "") == (
        record["title"],
        record["hits"],
        record["status"],
        record["extra"],
    )
    assert "body" not in record and "views" not in record
    # Back to a single select keeps the last value.
    for f in fields:
        if f["name"] == "status":
            f["maxSelect"] = 1
    response = await client.patch("/api/collections/articles", json={"fields": fields}, headers=su)
    assert 200 == response.status_code, response.text
    record = (await client.get(f"/api/collections/articles/records/{record_id}")).json()
    assert "draft" == record["status"]


async def test_swapping_field_names(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Two fields may exchange names in one change; each value follows its field id."""
    body = {
        "name": "pairs",
        "viewRule": "",
        "createRule": "",
        "fields": [{"name": "a", "type": "text"}, {"name": "b", "type": "text"}],
    }
    coll = (await client.post("/api/collections", json=body, headers=su)).json()
    record = (await client.post("/api/collections/pairs/records", json={"a": "1", "b": "2"})).json()
    fields = coll["fields"]
    fields[1]["name"], fields[2]["name"] = "b", "a"
    response = await client.patch("/api/collections/pairs", json={"fields": fields}, headers=su)
    assert 200 == response.status_code, response.text
    swapped = (await client.get(f"/api/collections/pairs/records/{record['id']}")).json()
    assert ("2", "1") == (swapped["a"], swapped["b"])


async def test_field_type_change_is_rejected(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Changing a field's type is a 400 and changes nothing."""
    fields = [dict(f) for f in schema["posts"]["fields"]]
    fields[1]["type"] = "number"
    response = await client.patch("/api/collections/posts", json={"fields": fields}, headers=su)
    assert "validation_field_type_change" == _fields_error(response)["1"]["code"]
    assert schema["posts"] == (await client.get("/api/collections/posts", headers=su)).json()


async def test_failed_change_leaves_schema_and_data(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """A unique index the data violates is refused as a whole: fields and data unchanged."""
    for _ in range(2):
        await client.post("/api/collections/authors/records", json={"name": "same"})
    fields = schema["authors"]["fields"] + [{"name": "extra", "type": "text"}]
    response = await client.patch(
        "/api/collections/authors",
        json={"fields": fields, "indexes": ["CREATE UNIQUE INDEX idx_same ON authors (name)"]},
        headers=su,
    )
    assert 400 == response.status_code, response.text
    assert schema["authors"] == (await client.get("/api/collections/authors", headers=su)).json()
    records = (await client.get("/api/collections/authors/records")).json()["items"]
    assert ["same", "same"] == [r["name"] for r in records]
    assert all("extra" not in r for r in records)


async def test_delete_collection(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Referenced and system collections cannot be deleted; others go with their records."""
    referenced = await client.delete("/api/collections/authors", headers=su)
    assert 400 == referenced.status_code
    assert "posts" in referenced.json()["message"]
    assert 400 == (await client.delete("/api/collections/_superusers", headers=su)).status_code
    assert 204 == (await client.delete("/api/collections/posts", headers=su)).status_code
    assert 404 == (await client.get("/api/collections/posts", headers=su)).status_code
    assert 204 == (await client.delete("/api/collections/authors", headers=su)).status_code
    recreated = await client.post("/api/collections", json={"name": "posts"}, headers=su)
    assert 200 == recreated.status_code, recreated.text


async def test_import(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Import creates and updates collections atomically; a bad item changes nothing."""
    items = [
        {"name": "tags", "fields": [{"name": "label", "type": "text"}]},
        {
            "name": "authors",
            "fields": [*schema["authors"]["fields"], {"name": "bio", "type": "editor"}],
        },
    ]
    ok = await client.put("/api/collections/import", json={"collections": items}, headers=su)
    assert 204 == ok.status_code, ok.text
    listed = (await client.get("/api/collections", headers=su)).json()["items"]
    assert {"authors", "posts", "tags"} == {c["name"] for c in listed if not c["system"]}
    authors = (await client.get("/api/collections/authors", headers=su)).json()
    assert "bio" in [f["name"] for f in authors["fields"]]
    bad = [{"name": "more", "fields": []}, {"name": "bad name"}]
    failed = await client.put("/api/collections/import", json={"collections": bad}, headers=su)
    assert 400 == failed.status_code
    assert "validation_collections_import_failure" == failed.json()["data"]["collections"]["code"]
    assert 404 == (await client.get("/api/collections/more", headers=su)).status_code
    empty = await client.put("/api/collections/import", json={"collections": []}, headers=su)
    assert 400 == empty.status_code


async def test_list_collections_pages(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """The collections list pages and sorts like the records list (system ones included)."""
    page = (await client.get("/api/collections?perPage=2&sort=-name", headers=su)).json()
    # authors, posts, _superusers, _otps, _mfas, _externalAuths, _apiKeys
    assert (7, 4) == (page["totalItems"], page["totalPages"])
    assert ["posts", "authors"] == [c["name"] for c in page["items"]]
