"""The filter parameter and rule expressions over HTTP, on both engines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
async def posts(
    client: httpx.AsyncClient, schema: dict[str, Any], author_ids: list[str]
) -> dict[str, str]:
    """Four posts with known values; returns title → id."""
    rows = [
        {
            "title": "Alpha",
            "views": 10,
            "published": True,
            "tags": ["a", "b"],
            "author": author_ids[0],
            "coauthors": [author_ids[1]],
            "status": "draft",
            "when": "2024-01-01",
        },
        {
            "title": "Beta",
            "views": 600,
            "published": True,
            "tags": ["a"],
            "author": author_ids[1],
            "coauthors": [author_ids[1], author_ids[2]],
            "status": "published",
        },
        {"title": "Gamma 100", "views": 900, "published": False, "tags": [], "coauthors": []},
        {
            "title": "Delta",
            "views": 0,
            "published": True,
            "tags": ["c"],
            "author": author_ids[2],
            "meta": {"k": 1},
            "secret": "s",
        },
    ]
    ids = {}
    for row in rows:
        response = await client.post("/api/collections/posts/records", json=row)
        assert 200 == response.status_code, response.text
        ids[row["title"]] = response.json()["id"]
    return ids


CASES = [
    ("views > 500 && published = true", ["Beta"]),
    ("views > 500 || published = true && views = 0", ["Beta", "Delta", "Gamma 100"]),
    ("(views > 500 || published = true) && views < 700", ["Alpha", "Beta", "Delta"]),
    ("views >= '600'", ["Beta", "Gamma 100"]),
    ("title ~ 'a'", ["Alpha", "Beta", "Delta", "Gamma 100"]),
    ("title ~ 'ALP'", ["Alpha"]),
    ("title ~ 'a_'", []),
    ("title !~ 'mm'", ["Alpha", "Beta", "Delta"]),
    ("title ~ 'Gam%'", ["Gamma 100"]),
    ('title = "Beta" // a comment', ["Beta"]),
    ("status = null", ["Delta", "Gamma 100"]),
    ("status != ''", ["Alpha", "Beta"]),
    ("author = ''", ["Gamma 100"]),
    ("tags:each ?= 'a'", ["Alpha", "Beta"]),
    ("tags:each = 'a'", ["Beta"]),
    ("tags:each != 'a'", ["Delta", "Gamma 100"]),
    ("tags:each ?!= 'a'", ["Alpha", "Delta", "Gamma 100"]),
    ("tags ?= 'a'", []),
    ("tags = '[\"a\"]'", ["Beta"]),
    ("tags ~ 'a'", ["Alpha", "Beta"]),
    ("tags:length > 1", ["Alpha"]),
    ("coauthors:length = 2", ["Beta"]),
    ("meta.k = 1", ["Delta"]),
    ("meta = null", ["Alpha", "Beta", "Gamma 100"]),
    ("title:lower = 'alpha'", ["Alpha"]),
    ("author.name:lower ~ 'AN'", ["Alpha"]),
    ("author.name = 'ann'", ["Alpha"]),
    ("author.name != 'ann'", ["Beta", "Delta", "Gamma 100"]),
    ("author.name ~ 'y'", ["Delta"]),
    ("coauthors.name ?= 'cyd'", ["Beta"]),
    ("coauthors.name = 'bob'", ["Alpha"]),
    ("coauthors.name != 'bob'", ["Delta", "Gamma 100"]),
    ("when >= '2024-01-01' && when < @now", ["Alpha"]),
    ("created <= @now && created > '2000-01-01'", ["Alpha", "Beta", "Delta", "Gamma 100"]),
    ("1 = 1", ["Alpha", "Beta", "Delta", "Gamma 100"]),
    ("'a' = 'b'", []),
]


@pytest.mark.parametrize(("text", "titles"), CASES, ids=[c[0] for c in CASES])
async def test_filter(
    client: httpx.AsyncClient, posts: dict[str, str], text: str, titles: list[str]
) -> None:
    """Each filter selects exactly the expected records."""
    response = await client.get(
        "/api/collections/posts/records", params={"filter": text, "sort": "title", "x": "y"}
    )
    assert 200 == response.status_code, response.text
    assert titles == [r["title"] for r in response.json()["items"]]
    assert len(titles) == response.json()["totalItems"]


async def test_request_fields_in_filters(
    client: httpx.AsyncClient, su: dict[str, str], posts: dict[str, str]
) -> None:
    """Only superusers may filter by @request.*, as in PocketBase."""
    url = "/api/collections/posts/records"
    params = {"filter": "@request.query.x = 'y' && views = 0", "x": "y"}
    denied = await client.get(url, params=params)
    assert 403 == denied.status_code
    assert "Only superusers can filter by @request." == denied.json()["message"]
    allowed = await client.get(url, params=params, headers=su)
    assert ["Delta"] == [r["title"] for r in allowed.json()["items"]]


async def test_hidden_fields_are_no_oracle(
    client: httpx.AsyncClient, su: dict[str, str], posts: dict[str, str]
) -> None:
    """Filtering on a hidden field is a 400 for everyone but superusers, true or false."""
    for text in ("secret = 's'", "secret != 's'", "author.name = 'x' || secret ~ ''"):
        response = await client.get("/api/collections/posts/records", params={"filter": text})
        assert 400 == response.status_code, text
    as_su = await client.get(
        "/api/collections/posts/records", params={"filter": "secret = 's'"}, headers=su
    )
    assert ["Delta"] == [r["title"] for r in as_su.json()["items"]]


async def test_syntax_error_names_position(
    client: httpx.AsyncClient, posts: dict[str, str]
) -> None:
    """A filter syntax error is a 400 that says where and what was expected."""
    response = await client.get("/api/collections/posts/records", params={"filter": "views > "})
    assert 400 == response.status_code
    assert "position 8" in response.json()["message"]


async def test_rules_with_request_auth(
    client: httpx.AsyncClient, su: dict[str, str], posts: dict[str, str]
) -> None:
    """Rules see @request.auth; invalid rules are refused when saved."""
    bad = await client.patch("/api/collections/posts", json={"listRule": "nope = 1"}, headers=su)
    assert 400 == bad.status_code
    assert "validation_invalid_rule" == bad.json()["data"]["listRule"]["code"]
    rule = {"listRule": "@request.auth.id != '' || views > 800"}
    assert 200 == (await client.patch("/api/collections/posts", json=rule, headers=su)).status_code
    anonymous = await client.get("/api/collections/posts/records")
    assert ["Gamma 100"] == [r["title"] for r in anonymous.json()["items"]]
    hidden_rule = {"listRule": "secret = 's'"}
    assert (
        200
        == (await client.patch("/api/collections/posts", json=hidden_rule, headers=su)).status_code
    )
    by_hidden = await client.get("/api/collections/posts/records")
    assert ["Delta"] == [r["title"] for r in by_hidden.json()["items"]]


async def test_expand_and_fields_over_http(
    client: httpx.AsyncClient, posts: dict[str, str], author_ids: list[str]
) -> None:
    """List and view responses expand relations and apply the fields projection."""
    listed = await client.get(
        "/api/collections/posts/records",
        params={
            "filter": "title = 'Alpha'",
            "expand": "author,coauthors",
            "fields": "title,expand.author.name,expand.coauthors.name",
        },
    )
    assert 200 == listed.status_code, listed.text
    assert [
        {"title": "Alpha", "expand": {"author": {"name": "ann"}, "coauthors": [{"name": "bob"}]}}
    ] == listed.json()["items"]
    assert 1 == listed.json()["totalItems"]
    viewed = await client.get(
        f"/api/collections/posts/records/{posts['Beta']}",
        params={"fields": "title:excerpt(2,true)"},
    )
    assert {"title": "Be..."} == viewed.json()
    bad = await client.get("/api/collections/posts/records", params={"fields": "title:excerpt(0)"})
    assert 400 == bad.status_code


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("posts_via_author.title ?= 'Alpha'", ["ann"]),
        ("posts_via_author.views ?> 500", ["bob"]),
        ("posts_via_coauthors.title ?= 'Beta'", ["bob", "cyd"]),
        ("posts_via_author.id = ''", []),
        ("@collection.posts.title ?= 'Gamma 100' && name = 'ann'", ["ann"]),
        ("@collection.posts:p.views ?> 800 && @collection.posts:p.published ?= true", []),
        (
            "@collection.posts:p.views ?> 500 && @collection.posts:p.published ?= true",
            ["ann", "bob", "cyd"],
        ),
        ("strftime('%Y', created) = strftime('%Y', @now)", ["ann", "bob", "cyd"]),
        ("geoDistance(0, 0, 0, 1) > 111 && geoDistance(0, 0, 0, 1) < 112", ["ann", "bob", "cyd"]),
    ],
)
async def test_back_relations_collections_and_functions(
    client: httpx.AsyncClient,
    su: dict[str, str],
    posts: dict[str, str],
    text: str,
    names: list[str],
) -> None:
    """Back-relations, @collection (one joined row per alias) and functions filter as expected."""
    response = await client.get(
        "/api/collections/authors/records", params={"filter": text, "sort": "name"}, headers=su
    )
    assert 200 == response.status_code, response.text
    assert names == [r["name"] for r in response.json()["items"]]


async def test_related_list_rules_hide_related_records(
    client: httpx.AsyncClient, su: dict[str, str], posts: dict[str, str]
) -> None:
    """A filter through a relation only sees related records its caller may list."""
    await client.patch("/api/collections/authors", json={"listRule": "name != 'ann'"}, headers=su)
    url = "/api/collections/posts/records"
    anonymous = await client.get(url, params={"filter": "author.name = 'ann'"})
    assert [] == anonymous.json()["items"]
    superuser = await client.get(url, params={"filter": "author.name = 'ann'"}, headers=su)
    assert ["Alpha"] == [r["title"] for r in superuser.json()["items"]]
    await client.patch("/api/collections/authors", json={"listRule": None}, headers=su)
    locked = await client.get(url, params={"filter": "author.name != ''"})
    assert [] == locked.json()["items"]


async def test_rules_with_auth_paths(
    client: httpx.AsyncClient, su: dict[str, str], posts: dict[str, str]
) -> None:
    """Rules can follow relations from @request.auth and use @collection."""
    rule = {"listRule": "@request.auth.email ~ 'example.com' && @collection.authors.name ?= 'cyd'"}
    assert 200 == (await client.patch("/api/collections/posts", json=rule, headers=su)).status_code
    assert (
        4 == (await client.get("/api/collections/posts/records", headers=su)).json()["totalItems"]
    )
    assert 0 == (await client.get("/api/collections/posts/records")).json()["totalItems"]


async def test_body_modifiers_in_rules(
    client: httpx.AsyncClient, su: dict[str, str], posts: dict[str, str]
) -> None:
    """Rules can test the submitted body: :isset, :changed, :each and :length."""
    rules = {
        "updateRule": "@request.body.views:isset = false && @request.body.title:changed = false",
        "createRule": "@request.body.tags:each ?= 'c' && @request.body.tags:length < 3",
    }
    assert 200 == (await client.patch("/api/collections/posts", json=rules, headers=su)).status_code
    url = f"/api/collections/posts/records/{posts['Alpha']}"
    assert 404 == (await client.patch(url, json={"views": 1})).status_code
    assert 404 == (await client.patch(url, json={"title": "Alpha two"})).status_code
    assert 200 == (await client.patch(url, json={"title": "Alpha", "published": False})).status_code
    create = "/api/collections/posts/records"
    assert 400 == (await client.post(create, json={"title": "No c", "tags": ["a"]})).status_code
    assert (
        400
        == (
            await client.post(create, json={"title": "Too many", "tags": ["a", "b", "c"]})
        ).status_code
    )
    assert (
        200 == (await client.post(create, json={"title": "Has c", "tags": ["a", "c"]})).status_code
    )


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("code = true", ["1"]),
        ("code = false", ["0"]),
        ("code != true", ["0", "1.0", "true"]),
        ("code = 1", ["1.0"]),
        ("code = 'true'", ["true"]),
    ],
)
async def test_literals_against_text_bind_as_sqlite_does(
    client: httpx.AsyncClient, su: dict[str, str], text: str, codes: list[str]
) -> None:
    """Against a text field a boolean binds as the integer 1/0 and a number as REAL text."""
    body = {
        "name": "codes",
        "listRule": "",
        "createRule": "",
        "fields": [{"name": "code", "type": "text"}],
    }
    assert 200 == (await client.post("/api/collections", json=body, headers=su)).status_code
    for code in ("1", "1.0", "0", "true"):
        response = await client.post("/api/collections/codes/records", json={"code": code})
        assert 200 == response.status_code, response.text
    response = await client.get(
        "/api/collections/codes/records", params={"filter": text, "sort": "code"}
    )
    assert 200 == response.status_code, response.text
    assert codes == [r["code"] for r in response.json()["items"]]
