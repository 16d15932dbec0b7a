"""Relation expansion (``expand``), called at the app level on both engines.

Data is created through the HTTP API; records are read with ``view_record``
and expanded with :func:`keel.core.expand.expand_records`, the function the
list and view routes call. An expanded record must equal what viewing it
directly returns to the same caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from keel.core import expand as expand_module
from keel.core.actions.records import create_record, view_record
from keel.core.app import App
from keel.core.errors import BadRequestError
from keel.core.expand import MAX_RECORDS_PER_LEVEL, expand_records, parse_expand
from keel.core.fields.relation import RelationField
from keel.core.request import Auth, RequestInfo
from keel.query.dialect import dialect_of
from keel.storage.db.database import Params, Row

ANONYMOUS = RequestInfo()

COUNTRIES: dict[str, Any] = {
    "name": "countries",
    "listRule": "",
    "viewRule": "",
    "fields": [{"name": "name", "type": "text"}],
}
SECRETS: dict[str, Any] = {
    "name": "secrets",
    "listRule": None,
    "viewRule": None,
    "fields": [{"name": "name", "type": "text"}],
}


@dataclass(frozen=True)
class World:
    """Ids of the records the tests expand."""

    ann: str
    bob: str
    cyd: str
    france: str
    secret: str
    first: str  # author ann, coauthors cyd, ann, bob
    second: str  # no relations
    third: str  # author bob, coauthors bob


async def _create(
    client: httpx.AsyncClient, su: dict[str, str], coll: str, body: dict[str, Any]
) -> str:
    response = await client.post(f"/api/collections/{coll}/records", json=body, headers=su)
    assert 200 == response.status_code, response.text
    record_id: str = response.json()["id"]
    return record_id


@pytest.fixture
async def world(
    app: App, client: httpx.AsyncClient, su: dict[str, str], author_ids: list[str]
) -> World:
    """Posts → authors → countries, plus a superusers-only ``secrets`` relation."""
    countries = await client.post("/api/collections", json=COUNTRIES, headers=su)
    assert 200 == countries.status_code, countries.text
    secrets = await client.post("/api/collections", json=SECRETS, headers=su)
    assert 200 == secrets.status_code, secrets.text
    authors = (await client.get("/api/collections/authors", headers=su)).json()
    fields = [
        *authors["fields"],
        {"name": "country", "type": "relation", "collectionId": countries.json()["id"]},
        {"name": "secret", "type": "relation", "collectionId": secrets.json()["id"]},
        {"name": "note", "type": "text", "hidden": True},
    ]
    patched = await client.patch("/api/collections/authors", json={"fields": fields}, headers=su)
    assert 200 == patched.status_code, patched.text
    france = await _create(client, su, "countries", {"name": "France"})
    secret = await _create(client, su, "secrets", {"name": "s1"})
    ann, bob, cyd = author_ids
    for author in author_ids:
        body = {"country": france, "secret": secret, "note": f"note of {author}"}
        response = await client.patch(
            f"/api/collections/authors/records/{author}", json=body, headers=su
        )
        assert 200 == response.status_code, response.text
    first = await _create(
        client, su, "posts", {"title": "First", "author": ann, "coauthors": [cyd, ann, bob]}
    )
    second = await _create(client, su, "posts", {"title": "Second"})
    third = await _create(client, su, "posts", {"title": "Third", "author": bob, "coauthors": bob})
    await app.refresh()
    return World(ann, bob, cyd, france, secret, first, second, third)


def superuser(app: App) -> RequestInfo:
    return RequestInfo(auth=Auth(collection=app.collection("_superusers")))


async def expanded(
    app: App, ids: list[str], expand: str, info: RequestInfo, coll: str = "posts"
) -> list[dict[str, Any]]:
    """The JSON of records ``ids`` as ``info`` sees them, expanded with ``expand``."""
    collection = app.collection(coll)
    records = [await view_record(app, collection, i, superuser(app)) for i in ids]
    items = [r.to_json(show_hidden=info.auth.is_superuser) for r in records]
    await expand_records(app, collection, records, items, expand, info)
    return items


async def seen(
    client: httpx.AsyncClient, coll: str, record_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """The record as viewing it through the API returns it."""
    response = await client.get(f"/api/collections/{coll}/records/{record_id}", headers=headers)
    assert 200 == response.status_code, response.text
    body: dict[str, Any] = response.json()
    return body


# -- parsing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        (" , ,", []),
        ("author", [("author",)]),
        (" author , coauthors ", [("author",), ("coauthors",)]),
        (".author.", [("author",)]),
        ("author,author", [("author",)]),
        ("author,author.country", [("author", "country")]),
        ("author.country,author", [("author", "country")]),
        ("author.country,author.secret", [("author", "country"), ("author", "secret")]),
        ("author..country", [("author", "", "country")]),
        ("a.b.c.d.e.f", [("a", "b", "c", "d", "e", "f")]),
    ],
)
def test_parse_expand(text: str, expected: list[tuple[str, ...]]) -> None:
    """Paths are trimmed, deduplicated, and folded into the longer paths they prefix."""
    assert expected == parse_expand(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a.b.c.d.e.f.g", "too deep"),
        (",".join(f"f{i}" for i in range(11)), "Too many expand paths"),
    ],
)
def test_parse_expand_limits(text: str, message: str) -> None:
    """Deeper than 6 levels or more than 10 paths is a 400, not a silent cut."""
    with pytest.raises(BadRequestError) as info:
        parse_expand(text)
    assert message in info.value.message


# -- expansion ------------------------------------------------------------------


async def test_single_relation(app: App, client: httpx.AsyncClient, world: World) -> None:
    """A single relation expands to the related record, as viewing it shows it."""
    [item] = await expanded(app, [world.first], "author", ANONYMOUS)
    assert {"author": await seen(client, "authors", world.ann)} == item["expand"]


async def test_multi_relation_keeps_stored_order(
    app: App, client: httpx.AsyncClient, world: World
) -> None:
    """A multiple relation expands to a list in the order of the stored ids."""
    [item] = await expanded(app, [world.first], "coauthors", ANONYMOUS)
    expected = [await seen(client, "authors", i) for i in (world.cyd, world.ann, world.bob)]
    assert {"coauthors": expected} == item["expand"]


async def test_several_records(app: App, client: httpx.AsyncClient, world: World) -> None:
    """Each record of a page gets its own relations; the original record JSON is kept."""
    items = await expanded(app, [world.first, world.third], "author,coauthors", ANONYMOUS)
    bob = await seen(client, "authors", world.bob)
    assert bob == items[1]["expand"]["author"]
    assert [bob] == items[1]["expand"]["coauthors"]
    assert world.ann == items[0]["expand"]["author"]["id"]
    assert world.third == items[1]["id"]


async def test_nested_relation(app: App, client: httpx.AsyncClient, world: World) -> None:
    """Dotted paths expand the related records' own relations."""
    [item] = await expanded(app, [world.first], "author.country,coauthors.country", ANONYMOUS)
    france = await seen(client, "countries", world.france)
    ann = await seen(client, "authors", world.ann)
    assert {**ann, "expand": {"country": france}} == item["expand"]["author"]
    assert [{"country": france}] * 3 == [c["expand"] for c in item["expand"]["coauthors"]]


async def test_nested_through_the_same_collection(
    app: App, client: httpx.AsyncClient, world: World, su: dict[str, str]
) -> None:
    """A collection may appear at several levels of one path."""
    posts = (await client.get("/api/collections/posts", headers=su)).json()
    parent = {"name": "parent", "type": "relation", "collectionId": posts["id"]}
    fields = {"fields": [*posts["fields"], parent]}
    response = await client.patch("/api/collections/posts", json=fields, headers=su)
    assert 200 == response.status_code, response.text
    url = f"/api/collections/posts/records/{world.third}"
    response = await client.patch(url, json={"parent": world.first}, headers=su)
    assert 200 == response.status_code, response.text
    await app.refresh()
    [item] = await expanded(app, [world.third], "parent.author.country", ANONYMOUS)
    parent_item = item["expand"]["parent"]
    assert world.first == parent_item["id"]
    assert world.ann == parent_item["expand"]["author"]["id"]
    assert world.france == parent_item["expand"]["author"]["expand"]["country"]["id"]


async def test_missing_ids_are_omitted(app: App, world: World) -> None:
    """Ids that no longer resolve are left out; a single one leaves no key."""
    posts = app.collection("posts")
    coauthors = posts.field("coauthors")
    assert isinstance(coauthors, RelationField)
    q = dialect_of(app.db).quote
    async with app.db.transaction() as tx:
        await tx.execute(
            f"UPDATE {q('posts')} SET {q('author')} = ?, {q('coauthors')} = ? WHERE {q('id')} = ?",
            (
                "gone00000000000",
                coauthors.to_db([world.cyd, "gone00000000001", world.bob]),
                world.first,
            ),
        )
    [item] = await expanded(app, [world.first], "author,coauthors", ANONYMOUS)
    assert {"coauthors": [world.cyd, world.bob]} == {
        k: [r["id"] for r in v] for k, v in item["expand"].items()
    }


async def test_empty_relations_give_empty_expand(app: App, world: World) -> None:
    """As in PocketBase, a valid path that resolves nothing still adds ``"expand": {}``."""
    [item] = await expanded(app, [world.second], "author,coauthors.country", ANONYMOUS)
    assert {} == item["expand"]


@pytest.mark.parametrize(
    "expand",
    [
        "nope",
        "title",
        "Author",
        "author.nope",
        "author.name",
        "author..country",
        "comments_via_post",
        "coauthors.country.nope",
    ],
)
async def test_unknown_paths_are_ignored(app: App, world: World, expand: str) -> None:
    """A path naming no relation at a level with records expands nothing, parents included."""
    [item] = await expanded(app, [world.first], expand, ANONYMOUS)
    assert "expand" not in item


async def test_unknown_segment_below_empty_relation_is_not_checked(app: App, world: World) -> None:
    """Like PocketBase, segments that no record reaches are not checked."""
    [item] = await expanded(app, [world.second], "author.nope", ANONYMOUS)
    assert {} == item["expand"]


async def test_superusers_only_target(
    app: App, client: httpx.AsyncClient, world: World, su: dict[str, str]
) -> None:
    """A null view rule hides the relation (and its path) from anyone but superusers."""
    [anonymous] = await expanded(app, [world.first], "author.secret", ANONYMOUS)
    [superuser_item] = await expanded(app, [world.first], "author.secret", superuser(app))
    assert "expand" not in anonymous
    secret = await seen(client, "secrets", world.secret, su)
    assert {"secret": secret} == superuser_item["expand"]["author"]["expand"]


async def test_failed_path_leaves_other_paths(app: App, world: World) -> None:
    """Only the failing path is dropped; a sibling through the same relation stays."""
    [item] = await expanded(app, [world.first], "author.country,author.secret", ANONYMOUS)
    assert ["country"] == list(item["expand"]["author"]["expand"])


async def test_view_rule_filters_targets(
    app: App, client: httpx.AsyncClient, world: World, su: dict[str, str]
) -> None:
    """Related records the target's view rule hides from the caller are left out."""
    response = await client.patch(
        "/api/collections/authors", json={"viewRule": "name != 'ann'"}, headers=su
    )
    assert 200 == response.status_code, response.text
    await app.refresh()
    [anonymous] = await expanded(app, [world.first], "author,coauthors", ANONYMOUS)
    [superuser_item] = await expanded(app, [world.first], "author,coauthors", superuser(app))
    assert {"coauthors": [world.cyd, world.bob]} == {
        k: [r["id"] for r in v] for k, v in anonymous["expand"].items()
    }
    assert [world.cyd, world.ann, world.bob] == [
        r["id"] for r in superuser_item["expand"]["coauthors"]
    ]


async def test_hidden_fields_only_for_superusers(
    app: App, client: httpx.AsyncClient, world: World, su: dict[str, str]
) -> None:
    """Expanded records show hidden fields to superusers only, like viewing them."""
    [anonymous] = await expanded(app, [world.first], "author", ANONYMOUS)
    [superuser_item] = await expanded(app, [world.first], "author", superuser(app))
    assert "note" not in anonymous["expand"]["author"]
    assert await seen(client, "authors", world.ann, su) == superuser_item["expand"]["author"]
    assert f"note of {world.ann}" == superuser_item["expand"]["author"]["note"]


async def test_depth_limit(app: App, world: World) -> None:
    """A path of 7 segments is refused before any query runs."""
    with pytest.raises(BadRequestError):
        await expanded(app, [world.first], "author.a.b.c.d.e.f", ANONYMOUS)


class CountingDatabase:
    """The real database, counting the reads that go through it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        self.reads += 1
        rows: list[Row] = await self.inner.fetch_all(sql, params)
        return rows


async def test_one_query_per_collection_and_level(app: App, world: World) -> None:
    """Records of a level are fetched in one batch per target collection (no N+1)."""
    posts = app.collection("posts")
    su = superuser(app)
    records = [
        await view_record(app, posts, i, su) for i in (world.first, world.second, world.third)
    ]
    items = [r.to_json() for r in records]
    counting = CountingDatabase(app.db)
    app.db = counting
    try:
        await expand_records(
            app, posts, records, items, "author.country,coauthors.country", ANONYMOUS
        )
    finally:
        app.db = counting.inner
    assert 2 == counting.reads
    assert world.france == items[2]["expand"]["coauthors"][0]["expand"]["country"]["id"]


async def test_related_records_per_level_are_capped(
    app: App, client: httpx.AsyncClient, su: dict[str, str], schema: dict[str, Any]
) -> None:
    """Past the per-level cap, the first ids in stored order are kept and the rest left out."""
    groups = {
        "name": "groups",
        "listRule": "",
        "viewRule": "",
        "fields": [
            {
                "name": "members",
                "type": "relation",
                "collectionId": "pbc_1000000001",
                "maxSelect": 2000,
            }
        ],
    }
    response = await client.post("/api/collections", json=groups, headers=su)
    assert 200 == response.status_code, response.text
    await app.refresh()
    authors = app.collection("authors")
    info = superuser(app)
    ids = []
    async with app.db.transaction() as tx:
        for i in range(MAX_RECORDS_PER_LEVEL + 5):
            record = await create_record(app, authors, {"name": f"a{i}"}, info, tx)
            ids.append(record.id)
        group = await create_record(app, app.collection("groups"), {"members": ids[::-1]}, info, tx)
    [item] = await expanded(app, [group.id], "members", ANONYMOUS, coll="groups")
    assert ids[::-1][:MAX_RECORDS_PER_LEVEL] == [m["id"] for m in item["expand"]["members"]]


# -- back-relations ---------------------------------------------------------------


def ids_of(item: dict[str, Any], key: str) -> list[str]:
    """The ids of the records expanded under ``key``."""
    return [r["id"] for r in item["expand"][key]]


async def _patch_collection(
    app: App, client: httpx.AsyncClient, su: dict[str, str], name: str, body: dict[str, Any]
) -> None:
    response = await client.patch(f"/api/collections/{name}", json=body, headers=su)
    assert 200 == response.status_code, response.text
    await app.refresh()


async def test_back_relation_through_single_field_is_a_list(
    app: App, client: httpx.AsyncClient, world: World
) -> None:
    """``posts_via_author`` lists the posts pointing to each author, even for a single field."""
    items = await expanded(
        app, [world.ann, world.bob, world.cyd], "posts_via_author", ANONYMOUS, coll="authors"
    )
    assert [await seen(client, "posts", world.first)] == items[0]["expand"]["posts_via_author"]
    assert [await seen(client, "posts", world.third)] == items[1]["expand"]["posts_via_author"]
    assert {} == items[2]["expand"]


async def test_back_relation_through_multiple_field(app: App, world: World) -> None:
    """Through a multiple field, a record is listed when the id is one of its values."""
    items = await expanded(
        app, [world.ann, world.bob, world.cyd], "posts_via_coauthors", ANONYMOUS, coll="authors"
    )
    assert [[world.first], [world.first, world.third], [world.first]] == [
        ids_of(i, "posts_via_coauthors") for i in items
    ]


async def test_back_relation_keeps_insertion_order(
    app: App, client: httpx.AsyncClient, su: dict[str, str], world: World
) -> None:
    """Back-related records come in insertion order, not id order, and updates do not move them."""
    ids = ["zzzzzzzzzzzzzzz", "aaaaaaaaaaaaaaa", "mmmmmmmmmmmmmmm"]
    for i, record_id in enumerate(ids):
        body = {"id": record_id, "title": f"Late {i}", "author": world.cyd, "coauthors": world.cyd}
        await _create(client, su, "posts", body)
    url = f"/api/collections/posts/records/{ids[0]}"
    response = await client.patch(url, json={"title": "Edited"}, headers=su)
    assert 200 == response.status_code, response.text
    [item] = await expanded(
        app, [world.cyd], "posts_via_author,posts_via_coauthors", ANONYMOUS, coll="authors"
    )
    assert ids == ids_of(item, "posts_via_author")
    assert [world.first, *ids] == ids_of(item, "posts_via_coauthors")


async def test_back_relation_through_unique_field_is_single(
    app: App, client: httpx.AsyncClient, su: dict[str, str], world: World
) -> None:
    """A single-column unique index on the field makes the back-relation one record."""
    profiles = {
        "name": "profiles",
        "listRule": "",
        "viewRule": "",
        "fields": [{"name": "owner", "type": "relation", "collectionId": "pbc_1000000001"}],
        "indexes": ["CREATE UNIQUE INDEX idx_profiles_owner ON profiles (owner)"],
    }
    response = await client.post("/api/collections", json=profiles, headers=su)
    assert 200 == response.status_code, response.text
    profile = await _create(client, su, "profiles", {"owner": world.ann})
    await app.refresh()
    items = await expanded(app, [world.ann, world.bob], "profiles_via_owner", ANONYMOUS, "authors")
    assert await seen(client, "profiles", profile) == items[0]["expand"]["profiles_via_owner"]
    assert {} == items[1]["expand"]


async def test_back_relation_view_rule(
    app: App, client: httpx.AsyncClient, su: dict[str, str], world: World
) -> None:
    """The source collection's view rule filters the back-related records for the caller."""
    await _patch_collection(app, client, su, "posts", {"viewRule": "title != 'First'"})
    authors = [world.ann, world.bob]
    anonymous = await expanded(app, authors, "posts_via_coauthors", ANONYMOUS, coll="authors")
    everything = await expanded(app, authors, "posts_via_coauthors", superuser(app), "authors")
    assert [{}, {"posts_via_coauthors": [world.third]}] == [
        {k: [r["id"] for r in v] for k, v in i["expand"].items()} for i in anonymous
    ]
    assert [world.first, world.third] == ids_of(everything[1], "posts_via_coauthors")


async def test_back_relation_superusers_only(
    app: App, client: httpx.AsyncClient, su: dict[str, str], world: World
) -> None:
    """A null view rule on the source fails the path for anyone but superusers."""
    await _patch_collection(app, client, su, "posts", {"viewRule": None})
    [anonymous] = await expanded(app, [world.cyd], "posts_via_author", ANONYMOUS, coll="authors")
    [superuser_item] = await expanded(
        app, [world.ann], "posts_via_author", superuser(app), "authors"
    )
    assert "expand" not in anonymous
    assert [world.first] == ids_of(superuser_item, "posts_via_author")


async def test_back_relation_field_may_be_hidden(
    app: App, client: httpx.AsyncClient, su: dict[str, str], world: World
) -> None:
    """As in PocketBase, only the view rule applies, not the field's hidden flag."""
    posts = (await client.get("/api/collections/posts", headers=su)).json()
    fields = [{**f, "hidden": f["name"] == "author" or f["hidden"]} for f in posts["fields"]]
    await _patch_collection(app, client, su, "posts", {"fields": fields})
    [item] = await expanded(app, [world.bob], "posts_via_author", ANONYMOUS, coll="authors")
    assert [world.third] == ids_of(item, "posts_via_author")
    assert "author" not in item["expand"]["posts_via_author"][0]


@pytest.mark.parametrize("name", ["POSTS_via_author", "pbc_id_via_author", "posts(author)"])
async def test_back_relation_spellings(app: App, world: World, name: str) -> None:
    """The collection is matched by id or case-insensitive name; the key is kept as written."""
    name = name.replace("pbc_id", app.collection("posts").id)
    [item] = await expanded(app, [world.bob], name, ANONYMOUS, coll="authors")
    assert [world.third] == ids_of(item, name)


@pytest.mark.parametrize(
    "expand",
    [
        "posts_via_Author",
        "posts_via_nope",
        "posts_via_title",
        "nope_via_author",
        "authors_via_country",
        "posts_via_author.nope_via_author",
    ],
)
async def test_unknown_back_relations_are_ignored(app: App, world: World, expand: str) -> None:
    """A back-relation naming no relation field pointing to the level's collection fails."""
    [item] = await expanded(app, [world.bob], expand, ANONYMOUS, coll="authors")
    assert "expand" not in item


async def test_unknown_back_relation_leaves_other_paths(app: App, world: World) -> None:
    """Only the failing back-relation path is dropped."""
    expand = "posts_via_author,posts_via_nope.author"
    [item] = await expanded(app, [world.bob], expand, ANONYMOUS, coll="authors")
    assert ["posts_via_author"] == list(item["expand"])


async def test_segment_below_empty_back_relation_is_not_checked(app: App, world: World) -> None:
    """As for forward relations, segments that no back-related record reaches are not checked."""
    [item] = await expanded(app, [world.cyd], "posts_via_author.nope", ANONYMOUS, coll="authors")
    assert {} == item["expand"]


async def test_paths_through_and_after_back_relations(app: App, world: World) -> None:
    """Paths continue past a back-relation, and may reach one through a forward relation."""
    [author] = await expanded(
        app, [world.bob], "posts_via_author.coauthors.country", ANONYMOUS, coll="authors"
    )
    [post] = await expanded(app, [world.third], "author.posts_via_coauthors", ANONYMOUS)
    [third] = author["expand"]["posts_via_author"]
    assert [world.bob] == [c["id"] for c in third["expand"]["coauthors"]]
    assert world.france == third["expand"]["coauthors"][0]["expand"]["country"]["id"]
    assert [world.first, world.third] == ids_of(post["expand"]["author"], "posts_via_coauthors")


async def test_back_relations_count_towards_the_depth(app: App, world: World) -> None:
    """Six segments alternating back and forward relations expand to the sixth level."""
    path = ".".join(["posts_via_author", "author"] * 3)
    [item] = await expanded(app, [world.bob], path, ANONYMOUS, coll="authors")
    node = item
    for name in path.split("."):
        value = node["expand"][name]
        node = value[0] if isinstance(value, list) else value
    assert world.bob == node["id"]


async def test_back_relations_are_batched(app: App, world: World) -> None:
    """Back-relations of a level are one query per source collection, whatever the records."""
    authors = app.collection("authors")
    su = superuser(app)
    records = [await view_record(app, authors, i, su) for i in (world.ann, world.bob, world.cyd)]
    items = [r.to_json() for r in records]
    counting = CountingDatabase(app.db)
    app.db = counting
    try:
        expand = "posts_via_author.coauthors,posts_via_coauthors.author.country"
        await expand_records(app, authors, records, items, expand, ANONYMOUS)
    finally:
        app.db = counting.inner
    assert 3 == counting.reads  # one per level: posts, authors, countries
    assert [world.first, world.third] == ids_of(items[1], "posts_via_coauthors")


@pytest.fixture
async def threads(app: App, client: httpx.AsyncClient, su: dict[str, str], world: World) -> World:
    """The world with ``posts.parent``: second and third reply to first."""
    posts = (await client.get("/api/collections/posts", headers=su)).json()
    parent = {"name": "parent", "type": "relation", "collectionId": posts["id"]}
    await _patch_collection(app, client, su, "posts", {"fields": [*posts["fields"], parent]})
    for reply in (world.second, world.third):
        url = f"/api/collections/posts/records/{reply}"
        response = await client.patch(url, json={"parent": world.first}, headers=su)
        assert 200 == response.status_code, response.text
    return world


async def test_forward_and_back_into_one_collection(app: App, threads: World) -> None:
    """A level reading one collection forward and back runs one query for both."""
    posts = app.collection("posts")
    su = superuser(app)
    records = [await view_record(app, posts, i, su) for i in (threads.third, threads.first)]
    items = [r.to_json() for r in records]
    counting = CountingDatabase(app.db)
    app.db = counting
    try:
        await expand_records(app, posts, records, items, "parent,posts_via_parent", ANONYMOUS)
    finally:
        app.db = counting.inner
    assert 1 == counting.reads
    assert {"parent": threads.first} == {k: v["id"] for k, v in items[0]["expand"].items()}
    assert {"posts_via_parent": [threads.second, threads.third]} == {
        k: [r["id"] for r in v] for k, v in items[1]["expand"].items()
    }


async def test_back_relations_share_what_forward_ids_leave(
    app: App, threads: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forward ids reserve the level's budget first; back-relations get the rest by insertion."""
    monkeypatch.setattr(expand_module, "MAX_RECORDS_PER_LEVEL", 2)
    third, first = await expanded(
        app, [threads.third, threads.first], "parent,posts_via_parent", ANONYMOUS
    )
    assert threads.first == third["expand"]["parent"]["id"]
    assert [threads.second] == ids_of(first, "posts_via_parent")
    monkeypatch.setattr(expand_module, "MAX_RECORDS_PER_LEVEL", 1)
    authors = await expanded(
        app, [threads.ann, threads.bob], "posts_via_coauthors", ANONYMOUS, coll="authors"
    )
    assert [[threads.first], [threads.first]] == [ids_of(i, "posts_via_coauthors") for i in authors]


async def test_back_relation_over_http(client: httpx.AsyncClient, world: World) -> None:
    """The view and list routes expand back-relations too."""
    url = f"/api/collections/authors/records/{world.bob}?expand=posts_via_coauthors"
    viewed = (await client.get(url)).json()
    listed = await client.get("/api/collections/authors/records?expand=posts_via_author&sort=name")
    assert [world.first, world.third] == ids_of(viewed, "posts_via_coauthors")
    assert [[world.first], [world.third], None] == [
        [r["id"] for r in i["expand"].get("posts_via_author", [])] or None
        for i in listed.json()["items"]
    ]
