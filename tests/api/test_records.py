"""The records API: CRUD, validation codes, modifiers, pagination and rules."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.scenario import ApiScenario

VALID = {"title": "Hello world", "views": 5}

CREATE_ERRORS = [
    ApiScenario(
        "required",
        "POST",
        "/api/collections/posts/records",
        400,
        body={},
        codes={"title": "validation_required"},
    ),
    ApiScenario(
        "too short",
        "POST",
        "/api/collections/posts/records",
        400,
        body={"title": "ab"},
        codes={"title": "validation_min_text_constraint"},
    ),
    ApiScenario(
        "too long",
        "POST",
        "/api/collections/posts/records",
        400,
        body={"title": "a" * 21},
        codes={"title": "validation_max_text_constraint"},
    ),
    ApiScenario(
        "pattern",
        "POST",
        "/api/collections/posts/records",
        400,
        body={"title": "bad!title"},
        codes={"title": "validation_invalid_format"},
    ),
    ApiScenario(
        "number min",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "views": -1},
        codes={"views": "validation_min_number_constraint"},
    ),
    ApiScenario(
        "number max",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "views": 1001},
        codes={"views": "validation_max_number_constraint"},
    ),
    ApiScenario(
        "onlyInt",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "count": 1.5},
        codes={"count": "validation_only_int_constraint"},
    ),
    ApiScenario(
        "number from text",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "views": "abc"},
        codes={"views": "validation_invalid_type"},
    ),
    ApiScenario(
        "number from bool",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "views": True},
        codes={"views": "validation_invalid_type"},
    ),
    ApiScenario(
        "text from object",
        "POST",
        "/api/collections/posts/records",
        400,
        body={"title": {"a": 1}},
        codes={"title": "validation_invalid_type"},
    ),
    ApiScenario(
        "bool from text",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "published": "maybe"},
        codes={"published": "validation_invalid_type"},
    ),
    ApiScenario(
        "email",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "contact": "nope"},
        codes={"contact": "validation_is_email"},
    ),
    ApiScenario(
        "email domain",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "contact": "a@other.org"},
        codes={"contact": "validation_email_domain_not_allowed"},
    ),
    ApiScenario(
        "url",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "site": "not a url"},
        codes={"site": "validation_invalid_url"},
    ),
    ApiScenario(
        "date",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "when": "yesterday"},
        codes={"when": "validation_invalid_date"},
    ),
    ApiScenario(
        "date min",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "when": "2019-12-31"},
        codes={"when": "validation_min_greater_equal_than_required"},
    ),
    ApiScenario(
        "select value",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "status": "nope"},
        codes={"status": "validation_invalid_value"},
    ),
    ApiScenario(
        "select too many",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "tags": ["a", "b", "c", "d"]},
        codes={"tags": "validation_too_many_values"},
    ),
    ApiScenario(
        "json size",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "meta": {"k": "x" * 300}},
        codes={"meta": "validation_json_size_limit"},
    ),
    ApiScenario(
        "editor size",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "body": "x" * 101},
        codes={"body": "validation_content_size_limit"},
    ),
    ApiScenario(
        "missing relation",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "author": "nope00000000000"},
        codes={"author": "validation_missing_rel_records"},
    ),
    ApiScenario(
        "unknown field",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "bogus": 1},
        codes={"bogus": "validation_unknown_field"},
    ),
    ApiScenario(
        "text modifier",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "title+": "x"},
        codes={"title": "validation_invalid_modifier"},
    ),
    ApiScenario(
        "id too short",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "id": "abc"},
        codes={"id": "validation_min_text_constraint"},
    ),
    ApiScenario(
        "id bad chars",
        "POST",
        "/api/collections/posts/records",
        400,
        body={**VALID, "id": "ABCDEFGHIJKLMN!"},
        codes={"id": "validation_invalid_format"},
    ),
    ApiScenario(
        "malformed json",
        "POST",
        "/api/collections/posts/records",
        400,
        raw=b'{"title": ',
        headers={"content-type": "application/json"},
    ),
    ApiScenario(
        "array body",
        "POST",
        "/api/collections/posts/records",
        400,
        raw=b"[1, 2]",
        headers={"content-type": "application/json"},
    ),
    ApiScenario("unknown collection", "POST", "/api/collections/nope/records", 404, body=VALID),
    ApiScenario(
        "sql-looking collection",
        "POST",
        "/api/collections/posts;DROP TABLE posts/records",
        404,
        body=VALID,
    ),
]


@pytest.mark.parametrize("scenario", CREATE_ERRORS, ids=lambda s: s.name)
async def test_create_rejects_bad_input(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any], scenario: ApiScenario
) -> None:
    """Bad create input gets a 4xx in PocketBase's shape and writes nothing."""
    await scenario.run(client, su)
    listed = await client.get("/api/collections/posts/records")
    assert 0 == listed.json()["totalItems"]


async def test_create_returns_every_field(
    client: httpx.AsyncClient, schema: dict[str, Any], author_ids: list[str]
) -> None:
    """A created record has every visible field, canonical values and PocketBase's keys."""
    body = {
        "title": "Hello world",
        "views": "12",
        "count": 3,
        "published": "true",
        "contact": "me@example.com",
        "site": "https://example.com/x",
        "when": "2024-01-02T03:04:05Z",
        "status": "draft",
        "tags": "a",
        "meta": {"x": [1, 2]},
        "author": author_ids[0],
        "coauthors": [author_ids[1], author_ids[2], author_ids[1]],
        "secret": "s3cret",
    }
    response = await client.post("/api/collections/posts/records", json=body)
    assert 200 == response.status_code, response.text
    record = response.json()
    assert schema["posts"]["id"] == record["collectionId"]
    assert "posts" == record["collectionName"]
    assert 15 == len(record["id"])
    assert 12 == record["views"]
    assert True is record["published"]
    assert "2024-01-02 03:04:05.000Z" == record["when"]
    assert ["a"] == record["tags"]
    assert [author_ids[1], author_ids[2]] == record["coauthors"]
    assert {"x": [1, 2]} == record["meta"]
    assert "secret" not in record
    assert record["created"] == record["updated"]
    viewed = await client.get(f"/api/collections/posts/records/{record['id']}")
    assert record == viewed.json()


async def test_superuser_sees_hidden_fields(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Hidden fields are shown to superusers only."""
    created = await client.post("/api/collections/posts/records", json={**VALID, "secret": "x"})
    url = f"/api/collections/posts/records/{created.json()['id']}"
    assert "x" == (await client.get(url, headers=su)).json()["secret"]
    assert "secret" not in (await client.get(url)).json()


async def test_form_bodies(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    """Multipart, urlencoded and @jsonPayload bodies create the same records."""
    multipart = await client.post(
        "/api/collections/posts/records",
        files={"title": (None, "From form"), "views": (None, "7"), "tags": (None, "a")},
    )
    assert 200 == multipart.status_code, multipart.text
    assert 7 == multipart.json()["views"]
    urlencoded = await client.post(
        "/api/collections/posts/records", data={"title": "Url encoded", "published": "on"}
    )
    assert 200 == urlencoded.status_code, urlencoded.text
    assert True is urlencoded.json()["published"]
    payload = await client.post(
        "/api/collections/posts/records",
        files={"@jsonPayload": (None, '{"title": "Json payload", "meta": {"a": 1}}')},
    )
    assert 200 == payload.status_code, payload.text
    assert {"a": 1} == payload.json()["meta"]


async def test_custom_id_and_duplicates(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    """A client may choose a valid id; reusing an id or a unique value is a 400."""
    first = await client.post(
        "/api/collections/posts/records", json={**VALID, "id": "abcdefghij12345"}
    )
    assert "abcdefghij12345" == first.json()["id"]
    again = await client.post(
        "/api/collections/posts/records", json={"title": "Other", "id": "abcdefghij12345"}
    )
    assert 400 == again.status_code
    assert "validation_not_unique" == again.json()["data"]["id"]["code"]
    dup = await client.post("/api/collections/posts/records", json=VALID)
    assert 400 == dup.status_code
    assert "validation_not_unique" == dup.json()["data"]["title"]["code"]


async def test_update_modifiers(
    client: httpx.AsyncClient, schema: dict[str, Any], author_ids: list[str]
) -> None:
    """`field+`, `+field` and `field-` append, prepend and remove; numbers add."""
    created = await client.post(
        "/api/collections/posts/records",
        json={**VALID, "tags": ["b"], "coauthors": [author_ids[0]]},
    )
    url = f"/api/collections/posts/records/{created.json()['id']}"
    steps: list[tuple[dict[str, Any], str, Any]] = [
        ({"tags+": "c"}, "tags", ["b", "c"]),
        ({"+tags": "a"}, "tags", ["a", "b", "c"]),
        ({"tags-": ["b", "zz"]}, "tags", ["a", "c"]),
        ({"views+": 10}, "views", 15),
        ({"views-": "3"}, "views", 12),
        ({"views": 1, "views+": 5}, "views", 6),
        ({"coauthors+": [author_ids[1]]}, "coauthors", [author_ids[0], author_ids[1]]),
        ({"coauthors-": author_ids[0]}, "coauthors", [author_ids[1]]),
    ]
    for body, key, expected in steps:
        response = await client.patch(url, json=body)
        assert 200 == response.status_code, response.text
        assert expected == response.json()[key], body
    over = await client.patch(url, json={"tags+": ["b", "d"]})
    assert 400 == over.status_code
    assert "validation_too_many_values" == over.json()["data"]["tags"]["code"]
    assert ["a", "c"] == (await client.get(url)).json()["tags"]


async def test_update_keeps_created_and_rejects_id_change(
    client: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    """Updates move `updated` only and never change the primary key."""
    created = (await client.post("/api/collections/posts/records", json=VALID)).json()
    url = f"/api/collections/posts/records/{created['id']}"
    updated = await client.patch(url, json={"title": "New title", "created": "2000-01-01"})
    assert 200 == updated.status_code, updated.text
    assert created["created"] == updated.json()["created"]
    assert updated.json()["updated"] >= created["updated"]
    moved = await client.patch(url, json={"id": "zzzzzzzzzzzzzzz"})
    assert 400 == moved.status_code
    assert "validation_pk_change" == moved.json()["data"]["id"]["code"]
    assert (
        404 == (await client.patch("/api/collections/posts/records/missing", json={})).status_code
    )


async def test_delete_cascades_and_unlinks(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any], author_ids: list[str]
) -> None:
    """Deleting a related record cascades where asked and unlinks elsewhere."""
    keep = await client.post(
        "/api/collections/posts/records",
        json={"title": "Keep me", "author": author_ids[0]},
    )
    cascade = await client.post(
        "/api/collections/posts/records",
        json={"title": "Cascade me", "coauthors": [author_ids[0]]},
    )
    response = await client.delete(f"/api/collections/authors/records/{author_ids[0]}")
    assert 204 == response.status_code, response.text
    kept = await client.get(f"/api/collections/posts/records/{keep.json()['id']}")
    assert "" == kept.json()["author"]
    gone = await client.get(f"/api/collections/posts/records/{cascade.json()['id']}")
    assert 404 == gone.status_code
    again = await client.delete(f"/api/collections/authors/records/{author_ids[0]}")
    assert 404 == again.status_code


async def test_delete_blocked_by_required_relation(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any], author_ids: list[str]
) -> None:
    """A record still required by a relation cannot be deleted, and nothing changes."""
    response = await client.post(
        "/api/collections",
        headers=su,
        json={
            "name": "books",
            "listRule": "",
            "createRule": "",
            "fields": [
                {
                    "name": "writer",
                    "type": "relation",
                    "collectionId": "pbc_1000000001",
                    "required": True,
                }
            ],
        },
    )
    assert 200 == response.status_code, response.text
    book = await client.post("/api/collections/books/records", json={"writer": author_ids[1]})
    assert 200 == book.status_code, book.text
    blocked = await client.delete(f"/api/collections/authors/records/{author_ids[1]}")
    assert 400 == blocked.status_code
    still = await client.get(f"/api/collections/authors/records/{author_ids[1]}")
    assert 200 == still.status_code


async def test_pagination(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    """page, perPage, sort and skipTotal behave as in PocketBase."""
    for i in range(7):
        response = await client.post(
            "/api/collections/posts/records", json={"title": f"Post {i}", "views": i * 10}
        )
        assert 200 == response.status_code
    base = "/api/collections/posts/records"
    page = (await client.get(f"{base}?page=2&perPage=3&sort=-views")).json()
    assert (2, 3, 7, 3) == (page["page"], page["perPage"], page["totalItems"], page["totalPages"])
    assert [30, 20, 10] == [r["views"] for r in page["items"]]
    skip = (await client.get(f"{base}?perPage=2&skipTotal=1")).json()
    assert (-1, -1, 2) == (skip["totalItems"], skip["totalPages"], len(skip["items"]))
    fallback = (await client.get(f"{base}?perPage=0&page=0")).json()
    assert (1, 30) == (fallback["page"], fallback["perPage"])
    capped = (await client.get(f"{base}?perPage=5000")).json()
    assert 1000 == capped["perPage"]
    past = (await client.get(f"{base}?page=9&perPage=5")).json()
    assert ([], 7) == (past["items"], past["totalItems"])
    sorted_titles = (await client.get(f"{base}?sort=title,-created")).json()["items"]
    assert sorted(r["title"] for r in sorted_titles) == [r["title"] for r in sorted_titles]


async def test_kept_sorts_follow_the_caller_and_the_schema(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """A sort built once is kept per audience and dropped with the schema it was built on."""
    base = "/api/collections/posts/records"
    for _ in range(2):
        assert 200 == (await client.get(f"{base}?sort=-secret", headers=su)).status_code
        assert 400 == (await client.get(f"{base}?sort=-secret")).status_code
        assert 200 == (await client.get(f"{base}?sort=-views")).status_code
    posts = schema["posts"]
    fields = [{**f, "hidden": True} if f["name"] == "views" else f for f in posts["fields"]]
    changed = await client.patch(
        f"/api/collections/{posts['id']}", json={"fields": fields}, headers=su
    )
    assert 200 == changed.status_code, changed.text
    assert 400 == (await client.get(f"{base}?sort=-views")).status_code
    assert 200 == (await client.get(f"{base}?sort=-views", headers=su)).status_code


@pytest.mark.parametrize(
    "query",
    [
        "sort=nope",
        "sort=secret",
        "page=abc",
        "perPage=1.5",
        "filter=views>",
        "filter=nope=1",
        "filter=secret='x'",
        "filter=(views>1",
    ],
)
async def test_bad_list_parameters(
    client: httpx.AsyncClient, schema: dict[str, Any], query: str
) -> None:
    """Unknown or hidden fields, malformed filters and malformed numbers are 400s."""
    response = await client.get(f"/api/collections/posts/records?{query}")
    assert 400 == response.status_code, response.text


async def test_null_rules_are_superuser_only(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """A null rule answers 403 to everyone but superusers, who bypass rules."""
    created = await client.post("/api/collections/authors/records", json={"name": "x"})
    record_id = created.json()["id"]
    locked = {r: None for r in ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")}
    assert (
        200 == (await client.patch("/api/collections/authors", json=locked, headers=su)).status_code
    )
    url = "/api/collections/authors/records"
    calls = [
        ("GET", url, None),
        ("GET", f"{url}/{record_id}", None),
        ("POST", url, {"name": "y"}),
        ("PATCH", f"{url}/{record_id}", {"name": "z"}),
        ("DELETE", f"{url}/{record_id}", None),
    ]
    for method, target, body in calls:
        denied = await client.request(method, target, json=body)
        assert 403 == denied.status_code, (method, target)
        assert "Only superusers can perform this action." == denied.json()["message"]
    for method, target, body in calls:
        allowed = await client.request(method, target, json=body, headers=su)
        assert allowed.status_code in (200, 204), (method, target, allowed.text)


async def test_expression_rules_filter_rows(
    client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Rule expressions filter rows: a filtered list, 404 on view/update/delete, 400 on create."""
    hidden = (await client.post("/api/collections/authors/records", json={"name": "x"})).json()[
        "id"
    ]
    shown = (await client.post("/api/collections/authors/records", json={"name": "ok"})).json()[
        "id"
    ]
    rules = {
        r: "name = 'ok'" for r in ("listRule", "viewRule", "createRule", "updateRule", "deleteRule")
    }
    assert (
        200 == (await client.patch("/api/collections/authors", json=rules, headers=su)).status_code
    )
    url = "/api/collections/authors/records"
    assert [shown] == [r["id"] for r in (await client.get(url)).json()["items"]]
    assert 404 == (await client.get(f"{url}/{hidden}")).status_code
    assert 200 == (await client.get(f"{url}/{shown}")).status_code
    assert 400 == (await client.post(url, json={"name": "x"})).status_code
    assert 200 == (await client.post(url, json={"name": "ok"})).status_code
    assert 404 == (await client.patch(f"{url}/{hidden}", json={"name": "ok"})).status_code
    assert 404 == (await client.delete(f"{url}/{hidden}")).status_code
    assert 204 == (await client.delete(f"{url}/{shown}")).status_code
    assert 2 == (await client.get(url, headers=su)).json()["totalItems"]


async def test_body_size_limit(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    """A body over the limit is a 413 and writes nothing."""
    response = await client.post(
        "/api/collections/posts/records",
        content=b'{"title": "' + b"x" * (2 << 20) + b'"}',
        headers={"content-type": "application/json"},
    )
    assert 413 == response.status_code
    assert 0 == (await client.get("/api/collections/posts/records")).json()["totalItems"]


async def test_unknown_routes_and_records(
    client: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    """Unknown routes, collections and records answer 404 in PocketBase's shape."""
    for url in (
        "/api/nope",
        "/api/collections/nope/records",
        "/api/collections/posts/records/nope",
    ):
        response = await client.get(url)
        assert 404 == response.status_code
        assert {"status": 404, "message": response.json()["message"], "data": {}} == response.json()


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/api/collections/posts/records", {"title": "nul\x00byte"}),
        ("POST", "/api/collections/posts/records", {"title": "Fine", "meta": {"k": "\x00"}}),
        ("POST", "/api/collections/posts/records", {"title": "Fine", "meta": {"\x00": 1}}),
        ("GET", "/api/collections/posts/records/%00", None),
        ("PATCH", "/api/collections/posts/records/%00", {}),
        ("DELETE", "/api/collections/posts/records/%00", None),
        ("GET", "/api/collections/posts/records?page=99999999999999999999999", None),
        ("GET", "/api/collections/posts/records?page=9223372036854775807", None),
        (
            "POST",
            "/api/collections/_superusers/auth-with-password",
            {"identity": "\x00", "password": "x"},
        ),
    ],
)
async def test_hostile_values_are_4xx(
    client: httpx.AsyncClient, schema: dict[str, Any], method: str, url: str, body: Any
) -> None:
    """NUL characters and absurd numbers are refused with a 4xx on every engine."""
    response = await client.request(method, url, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert 0 == (await client.get("/api/collections/posts/records")).json()["totalItems"]


async def test_conditional_get(client: httpx.AsyncClient, schema: dict[str, Any]) -> None:
    """View and list answer If-None-Match with 304 until the data changes."""
    created = (await client.post("/api/collections/posts/records", json=VALID)).json()
    for url in (
        f"/api/collections/posts/records/{created['id']}",
        "/api/collections/posts/records",
    ):
        first = await client.get(url)
        etag = first.headers["etag"]
        again = await client.get(url, headers={"If-None-Match": etag})
        assert (304, b"") == (again.status_code, again.content)
        await client.patch(f"/api/collections/posts/records/{created['id']}", json={"views": 6})
        changed = await client.get(url, headers={"If-None-Match": etag})
        assert 200 == changed.status_code
        assert etag != changed.headers["etag"]
        await client.patch(f"/api/collections/posts/records/{created['id']}", json={"views": 5})
