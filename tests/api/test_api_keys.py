"""API keys: minted once, stored hashed, narrowed by scopes, never more than their creator."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from keel.core.app import App
from tests.api.people import make_auth_collection, mint_key, register, sign_in

POSTS: dict[str, Any] = {
    "name": "posts",
    "listRule": "",
    "viewRule": "",
    "createRule": "",
    "updateRule": "",
    "deleteRule": "",
    "fields": [{"name": "title", "type": "text"}],
}
OWNER = "owner = @request.auth.id"
NOTES: dict[str, Any] = {
    "name": "notes",
    "listRule": OWNER,
    "viewRule": OWNER,
    "createRule": OWNER,
    "updateRule": OWNER,
    "deleteRule": OWNER,
    "fields": [{"name": "title", "type": "text"}, {"name": "owner", "type": "text"}],
}
PAST = "2001-01-01 00:00:00.000Z"
FUTURE = "2999-01-01 00:00:00.000Z"


@dataclass(frozen=True)
class World:
    """``users`` (anyone may mint keys), Alice and Bob signed in, a post and their notes."""

    client: httpx.AsyncClient
    app: App
    su: dict[str, str]
    alice: str
    bob: str
    alice_auth: dict[str, str]
    bob_auth: dict[str, str]
    post: str

    async def statuses(self, headers: dict[str, str]) -> dict[str, int]:
        """The status of each record and admin operation for ``headers`` (it deletes a new post)."""
        c, h, posts = self.client, headers, "/api/collections/posts/records"
        return {
            "list": (await c.get(posts, headers=h)).status_code,
            "view": (await c.get(f"{posts}/{self.post}", headers=h)).status_code,
            "create": (await c.post(posts, json={"title": "new"}, headers=h)).status_code,
            "update": (
                await c.patch(f"{posts}/{self.post}", json={"title": "edited"}, headers=h)
            ).status_code,
            "list notes": (await c.get("/api/collections/notes/records", headers=h)).status_code,
            "collections": (await c.get("/api/collections", headers=h)).status_code,
            "settings": (await c.get("/api/settings", headers=h)).status_code,
            "delete": (await c.delete(f"{posts}/{await self.new_post()}", headers=h)).status_code,
        }

    async def new_post(self) -> str:
        """The id of a post a guest just created."""
        created = await self.client.post("/api/collections/posts/records", json={"title": "x"})
        assert 200 == created.status_code, created.text
        post_id: str = created.json()["id"]
        return post_id

    async def note_titles(self, headers: dict[str, str]) -> list[str]:
        """The titles of the notes ``headers`` may list."""
        response = await self.client.get(
            "/api/collections/notes/records?sort=title", headers=headers
        )
        assert 200 == response.status_code, response.text
        return [item["title"] for item in response.json()["items"]]

    async def is_guest(self, key: str) -> bool:
        """Whether ``key`` authenticates nobody (``GET /api/keys`` needs someone)."""
        response = await self.client.get("/api/keys", headers={"Authorization": key})
        return response.status_code == 401


@pytest.fixture
async def world(client: httpx.AsyncClient, app: App, su: dict[str, str]) -> World:
    """Users with ``apiKeyRule: ""``, a post, and one note each for Alice and Bob."""
    await make_auth_collection(client, su, apiKeyRule="", listRule="", viewRule="")
    for body in (POSTS, NOTES):
        created = await client.post("/api/collections", json=body, headers=su)
        assert 200 == created.status_code, created.text
    alice = await register(client, "alice@example.com")
    bob = await register(client, "bob@example.com")
    alice_auth = {"Authorization": await sign_in(client, "alice@example.com")}
    bob_auth = {"Authorization": await sign_in(client, "bob@example.com")}
    for owner, auth in ((alice, alice_auth), (bob, bob_auth)):
        note = await client.post(
            "/api/collections/notes/records",
            json={"title": f"note of {owner}", "owner": owner},
            headers=auth,
        )
        assert 200 == note.status_code, note.text
    post = await client.post("/api/collections/posts/records", json={"title": "first"})
    return World(
        client=client,
        app=app,
        su=su,
        alice=alice,
        bob=bob,
        alice_auth=alice_auth,
        bob_auth=bob_auth,
        post=post.json()["id"],
    )


def _secret(key: str) -> str:
    """The secret part of ``keel_<id>_<secret>``."""
    return key.split("_", 2)[2]


async def test_key_is_shown_once(world: World) -> None:
    """Minting answers the key once; listing never shows the key, secret or hash."""
    minted = await mint_key(world.client, world.su, ["posts:list"], name="ci")
    listed = await world.client.get("/api/keys", headers=world.su)
    expected_fields = {
        "id",
        "name",
        "scopes",
        "expires",
        "collectionRef",
        "recordRef",
        "created",
        "key",
    }
    assert expected_fields == set(minted)
    assert f"keel_{minted['id']}_" == minted["key"][: len(minted["id"]) + 6]
    assert ("ci", ["posts:list"]) == (minted["name"], minted["scopes"])
    assert [{k: v for k, v in minted.items() if k != "key"}] == listed.json()["items"]
    assert _secret(minted["key"]) not in listed.text
    assert "hash" not in listed.text


async def test_stored_row_holds_only_a_hash(world: World) -> None:
    """The ``_apiKeys`` row, through the API and in SQL, holds a SHA-256 of the secret only."""
    minted = await mint_key(world.client, world.su, ["*"])
    secret = _secret(minted["key"])
    viewed = await world.client.get(
        f"/api/collections/_apiKeys/records/{minted['id']}", headers=world.su
    )
    assert 200 == viewed.status_code, viewed.text
    assert secret not in viewed.text
    app = world.app
    row = await app.db.fetch_one(
        f"SELECT * FROM {app.dialect.quote('_apiKeys')} WHERE id = ?", (minted["id"],)
    )
    assert row is not None
    assert [] == [value for value in row if secret in str(value)]
    assert hashlib.sha256(secret.encode()).hexdigest() in row


async def test_scoped_key_does_only_its_scope(world: World) -> None:
    """A superuser's key scoped ``posts:list`` lists posts and gets 403 for anything else."""
    minted = await mint_key(world.client, world.su, ["posts:list"])
    expected = {
        "list": 200,
        "view": 403,
        "create": 403,
        "update": 403,
        "list notes": 403,
        "collections": 403,
        "settings": 403,
        "delete": 403,
    }
    assert expected == await world.statuses({"Authorization": minted["key"]})


async def test_action_wildcard_scope(world: World) -> None:
    """A ``*:list`` key lists every collection and does nothing else."""
    minted = await mint_key(world.client, world.su, ["*:list"])
    expected = {
        "list": 200,
        "view": 403,
        "create": 403,
        "update": 403,
        "list notes": 200,
        "collections": 403,
        "settings": 403,
        "delete": 403,
    }
    assert expected == await world.statuses({"Authorization": minted["key"]})


async def test_collection_id_scope(world: World) -> None:
    """A scope may name the collection by id."""
    posts_id = world.app.collection("posts").id
    minted = await mint_key(world.client, world.su, [f"{posts_id}:view"])
    statuses = await world.statuses({"Authorization": minted["key"]})
    assert (403, 200) == (statuses["list"], statuses["view"])


async def test_scope_names_are_case_insensitive(world: World) -> None:
    """A scope naming a collection in another letter case is stored as spelled, and works."""
    minted = await mint_key(world.client, world.su, ["POSTS:list"])
    statuses = await world.statuses({"Authorization": minted["key"]})
    assert (["posts:list"], 200) == (minted["scopes"], statuses["list"])


async def test_full_scope_acts_as_superuser(world: World) -> None:
    """A superuser's ``*`` key does everything the superuser does."""
    minted = await mint_key(world.client, world.su, ["*"])
    as_key = await world.statuses({"Authorization": minted["key"]})
    expected = dict.fromkeys(as_key, 200)
    expected["delete"] = 204
    assert expected == as_key
    assert await world.note_titles(world.su) == await world.note_titles(
        {"Authorization": minted["key"]}
    )


@pytest.mark.parametrize("scopes", [["*"], ["notes:list"], ["*:list"]])
async def test_user_key_sees_only_what_the_user_sees(world: World, scopes: list[str]) -> None:
    """A user's key lists only the user's own notes, whatever its scope."""
    minted = await mint_key(world.client, world.alice_auth, scopes)
    as_key = await world.note_titles({"Authorization": minted["key"]})
    assert [f"note of {world.alice}"] == as_key
    assert await world.note_titles(world.alice_auth) == as_key


async def test_user_full_key_is_no_superuser(world: World) -> None:
    """A user's ``*`` key gets what the user's token gets: no admin API, no other's rows."""
    minted = await mint_key(world.client, world.alice_auth, ["*"])
    key = {"Authorization": minted["key"]}
    as_user = await world.statuses(world.alice_auth)
    as_key = await world.statuses(key)
    assert as_user == as_key
    assert (403, 403) == (as_key["collections"], as_key["settings"])
    bob_note = await world.client.get("/api/collections/notes/records", headers=world.bob_auth)
    bob_note_id = bob_note.json()["items"][0]["id"]
    viewed = await world.client.get(f"/api/collections/notes/records/{bob_note_id}", headers=key)
    assert 404 == viewed.status_code


async def test_user_scoped_key_cannot_create(world: World) -> None:
    """A user's ``notes:list`` key cannot create notes though the user may."""
    minted = await mint_key(world.client, world.alice_auth, ["notes:list"])
    note = {"title": "by key", "owner": world.alice}
    as_key = await world.client.post(
        "/api/collections/notes/records", json=note, headers={"Authorization": minted["key"]}
    )
    as_user = await world.client.post(
        "/api/collections/notes/records", json=note, headers=world.alice_auth
    )
    assert (403, 200) == (as_key.status_code, as_user.status_code)


@pytest.mark.parametrize(
    ("rule", "alice", "bob"),
    [(None, 403, 403), ("", 200, 200), ("verified = true", 403, 200)],
)
async def test_api_key_rule_decides_who_mints(
    world: World, rule: str | None, alice: int, bob: int
) -> None:
    """``apiKeyRule``: null lets no user mint, "" every user, an expression the matching ones."""
    patched = await world.client.patch(
        "/api/collections/users", json={"apiKeyRule": rule}, headers=world.su
    )
    assert 200 == patched.status_code, patched.text
    verified = await world.client.patch(
        f"/api/collections/users/records/{world.bob}", json={"verified": True}, headers=world.su
    )
    assert 200 == verified.status_code, verified.text
    body = {"name": "mine", "scopes": ["*"]}
    statuses = [
        (await world.client.post("/api/keys", json=body, headers=auth)).status_code
        for auth in (world.alice_auth, world.bob_auth)
    ]
    superuser = await world.client.post("/api/keys", json=body, headers=world.su)
    assert [alice, bob] == statuses
    assert 200 == superuser.status_code


async def test_guest_cannot_mint_or_list(world: World) -> None:
    """Minting and listing keys need a signed-in caller (401)."""
    minted = await world.client.post("/api/keys", json={"name": "x", "scopes": ["*"]})
    listed = await world.client.get("/api/keys")
    assert (401, 401) == (minted.status_code, listed.status_code)


@pytest.mark.parametrize("scopes", [["*"], ["posts:list"]])
async def test_keys_cannot_mint_keys(world: World, scopes: list[str]) -> None:
    """A key, even scoped ``*``, cannot mint another key (403)."""
    minted = await mint_key(world.client, world.su, scopes)
    response = await world.client.post(
        "/api/keys",
        json={"name": "child", "scopes": ["*"]},
        headers={"Authorization": minted["key"]},
    )
    assert 403 == response.status_code


async def test_users_list_only_their_keys(world: World) -> None:
    """Users list their own keys; superusers list every key."""
    alices = await mint_key(world.client, world.alice_auth, ["*"])
    bobs = await mint_key(world.client, world.bob_auth, ["*"])

    async def ids(headers: dict[str, str]) -> set[str]:
        response = await world.client.get("/api/keys", headers=headers)
        assert 200 == response.status_code, response.text
        return {item["id"] for item in response.json()["items"]}

    assert {alices["id"]} == await ids(world.alice_auth)
    assert {alices["id"]} == await ids({"Authorization": alices["key"]})
    assert {bobs["id"]} == await ids(world.bob_auth)
    assert {alices["id"], bobs["id"]} == await ids(world.su)


async def test_expiry_in_the_past_is_refused(world: World) -> None:
    """Minting with an expiry in the past, or not a date, answers 400."""
    past = await world.client.post(
        "/api/keys", json={"name": "x", "scopes": ["*"], "expires": PAST}, headers=world.su
    )
    invalid = await world.client.post(
        "/api/keys", json={"name": "x", "scopes": ["*"], "expires": "soon"}, headers=world.su
    )
    assert (400, 400) == (past.status_code, invalid.status_code)
    assert "validation_date_in_past" == past.json()["data"]["expires"]["code"]
    assert "expires" in invalid.json()["data"]


@pytest.mark.parametrize("how", ["records API", "SQL"])
async def test_expired_key_is_a_guest(world: World, how: str) -> None:
    """A key works until its ``expires`` passes; then it authenticates nobody."""
    minted = await mint_key(world.client, world.alice_auth, ["*"], expires=FUTURE)
    assert not await world.is_guest(minted["key"])
    if how == "SQL":
        app = world.app
        await app.db.execute(
            f"UPDATE {app.dialect.quote('_apiKeys')} SET expires = ? WHERE id = ?",
            (PAST, minted["id"]),
        )
    else:
        patched = await world.client.patch(
            f"/api/collections/_apiKeys/records/{minted['id']}",
            json={"expires": PAST},
            headers=world.su,
        )
        assert 200 == patched.status_code, patched.text
    assert await world.is_guest(minted["key"])
    assert [] == await world.note_titles({"Authorization": minted["key"]})


async def test_revoked_key_is_a_guest(world: World) -> None:
    """After ``DELETE /api/keys/{id}`` the key authenticates nobody."""
    minted = await mint_key(world.client, world.alice_auth, ["*"])
    key = {"Authorization": minted["key"]}
    before = await world.note_titles(key)
    revoked = await world.client.delete(f"/api/keys/{minted['id']}", headers=world.alice_auth)
    assert 204 == revoked.status_code, revoked.text
    assert ([f"note of {world.alice}"], []) == (before, await world.note_titles(key))
    assert await world.is_guest(minted["key"])


async def test_users_cannot_revoke_each_others_keys(world: World) -> None:
    """Bob gets 404 revoking Alice's key, which keeps working; a superuser may revoke it."""
    minted = await mint_key(world.client, world.alice_auth, ["*"])
    url = f"/api/keys/{minted['id']}"
    by_bob = await world.client.delete(url, headers=world.bob_auth)
    by_guest = await world.client.delete(url)
    assert (404, 401) == (by_bob.status_code, by_guest.status_code)
    assert not await world.is_guest(minted["key"])
    by_superuser = await world.client.delete(url, headers=world.su)
    assert 204 == by_superuser.status_code
    assert await world.is_guest(minted["key"])


async def test_scoped_key_revokes_only_itself(world: World) -> None:
    """A scoped key may revoke itself but not another key of its creator (403)."""
    other = await mint_key(world.client, world.alice_auth, ["*"])
    scoped = await mint_key(world.client, world.alice_auth, ["posts:list"])
    key = {"Authorization": scoped["key"]}
    revoke_other = await world.client.delete(f"/api/keys/{other['id']}", headers=key)
    revoke_self = await world.client.delete(f"/api/keys/{scoped['id']}", headers=key)
    assert (403, 204) == (revoke_other.status_code, revoke_self.status_code)
    assert (False, True) == (
        await world.is_guest(other["key"]),
        await world.is_guest(scoped["key"]),
    )


INVALID_SCOPES: list[tuple[str, Any]] = [
    ("unknown collection", ["nope:list"]),
    ("unknown action", ["posts:fly"]),
    ("no action", ["posts"]),
    ("empty action", ["posts:"]),
    ("not a list", "posts:list"),
    ("empty list", []),
    ("not strings", [1]),
    ("null", None),
    ("too many", ["posts:list"] * 201),
]


@pytest.mark.parametrize(
    ("name", "scopes"), INVALID_SCOPES, ids=[name for name, _ in INVALID_SCOPES]
)
async def test_invalid_scopes_are_refused(world: World, name: str, scopes: Any) -> None:
    """Scopes must be a non-empty list of ``*`` or ``<collection or *>:<action>`` (else 400)."""
    response = await world.client.post(
        "/api/keys", json={"name": "bad", "scopes": scopes}, headers=world.su
    )
    assert (400, True) == (response.status_code, "scopes" in response.json()["data"])


async def test_name_is_required(world: World) -> None:
    """A key needs a non-blank name (400)."""
    response = await world.client.post(
        "/api/keys", json={"name": "  ", "scopes": ["*"]}, headers=world.su
    )
    assert "validation_required" == response.json()["data"]["name"]["code"]


async def test_key_of_deleted_creator_is_a_guest(world: World) -> None:
    """Once its creator is deleted, a key authenticates nobody."""
    minted = await mint_key(world.client, world.alice_auth, ["*"])
    deleted = await world.client.delete(
        f"/api/collections/users/records/{world.alice}", headers=world.su
    )
    assert 204 == deleted.status_code, deleted.text
    assert await world.is_guest(minted["key"])


async def test_key_of_deleted_creator_stays_dead_when_the_id_is_reused(world: World) -> None:
    """A record re-created with a deleted creator's id is not reachable with the old key."""
    minted = await mint_key(world.client, world.alice_auth, ["*"])
    await world.client.delete(f"/api/collections/users/records/{world.alice}", headers=world.su)
    recreated = await world.client.post(
        "/api/collections/users/records",
        json={
            "id": world.alice,
            "email": "newcomer@example.com",
            "password": "another-pass-1",
            "passwordConfirm": "another-pass-1",
        },
    )
    assert 200 == recreated.status_code, recreated.text
    assert await world.is_guest(minted["key"])


async def test_tampered_secret_is_a_guest(world: World) -> None:
    """A key with a changed secret, or another key's id, authenticates nobody."""
    first = await mint_key(world.client, world.alice_auth, ["*"])
    second = await mint_key(world.client, world.alice_auth, ["*"])
    changed = first["key"][:-4] + ("AAAA" if not first["key"].endswith("AAAA") else "BBBB")
    swapped = f"keel_{second['id']}_{_secret(first['key'])}"
    assert (True, True) == (await world.is_guest(changed), await world.is_guest(swapped))


async def test_scoped_key_cannot_filter_other_collections(world: World) -> None:
    """A superuser's ``posts:list`` key cannot probe other collections with ``@collection``."""
    minted = await mint_key(world.client, world.su, ["posts:list"])
    response = await world.client.get(
        "/api/collections/posts/records",
        params={"filter": f'@collection.notes.owner = "{world.alice}"'},
        headers={"Authorization": minted["key"]},
    )
    assert 403 == response.status_code
