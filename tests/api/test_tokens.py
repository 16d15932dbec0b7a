"""Auth tokens: every forged, stale or misused token is a guest's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from keel.core.app import App
from keel.core.auth_options import token_settings
from keel.core.collection import Collection
from keel.core.record import Record
from keel.core.tokens import issue_token, verify_token
from keel.security import token as jwt_tokens
from tests.api.people import PASSWORD, make_auth_collection, mint_key, register, sign_in

REFRESH = "/api/collections/users/auth-refresh"
OWN_RULE = "id = @request.auth.id"


@dataclass(frozen=True)
class People:
    """Alice (signed in) and Bob in ``users``; Carol (signed in) in ``members``."""

    client: httpx.AsyncClient
    app: App
    su: dict[str, str]
    alice: str
    alice_token: str
    bob: str
    carol_token: str
    members_id: str

    async def alice_record(self) -> tuple[Collection, Record]:
        """Alice's collection and stored record (with its ``tokenKey``)."""
        coll, record, _ = await verify_token(
            self.app.db, self.app.find_collection, self.alice_token, "auth"
        )
        return coll, record


@pytest.fixture
async def people(client: httpx.AsyncClient, app: App, su: dict[str, str]) -> People:
    """Two auth collections: ``users`` whose records see only themselves, and ``members``."""
    await make_auth_collection(client, su, viewRule=OWN_RULE, updateRule=OWN_RULE, apiKeyRule="")
    members = await make_auth_collection(client, su, "members")
    alice = await register(client, "alice@example.com")
    bob = await register(client, "bob@example.com")
    await register(client, "carol@example.com", "members")
    return People(
        client=client,
        app=app,
        su=su,
        alice=alice,
        alice_token=await sign_in(client, "alice@example.com"),
        bob=bob,
        carol_token=await sign_in(client, "carol@example.com", "members"),
        members_id=members["id"],
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _with_claims(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and its header and signature kept."""
    head, _, signature = token.split(".")
    return f"{head}.{_segment({**_claims(token), **changes})}.{signature}"


async def _real_key(people: People) -> tuple[Collection, Record, str]:
    """Alice's auth signing key, built the way :mod:`keel.core.tokens` builds it."""
    coll, record = await people.alice_record()
    secret, _ = token_settings(coll.options, "auth")
    return coll, record, str(record.data["tokenKey"]) + secret


async def _alg_none(people: People) -> str:
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(_claims(people.alice_token))}."


async def _alg_none_signed(people: People) -> str:
    signature = people.alice_token.split(".")[2]
    head = _segment({"alg": "none", "typ": "JWT"})
    return f"{head}.{_segment(_claims(people.alice_token))}.{signature}"


async def _other_algorithm(people: People) -> str:
    _, _, key = await _real_key(people)
    head = _segment({"alg": "HS512", "typ": "JWT"})
    body = _segment(_claims(people.alice_token))
    mac = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha512).digest()
    return f"{head}.{body}.{_b64(mac)}"


async def _wrong_key(people: People) -> str:
    return jwt_tokens.issue(_claims(people.alice_token), "not-the-key-" * 8, 3600)


async def _expired(people: People) -> str:
    coll, record, key = await _real_key(people)
    claims = {"id": record.id, "type": "auth", "collectionId": coll.id, "refreshable": True}
    return jwt_tokens.issue(claims, key, -60)


async def _other_users_id(people: People) -> str:
    return _with_claims(people.alice_token, id=people.bob)


async def _longer_expiry(people: People) -> str:
    return _with_claims(people.alice_token, exp=_claims(people.alice_token)["exp"] + 3600)


def _kind(kind: str, **claims: Any) -> Callable[[People], Awaitable[str]]:
    async def build(people: People) -> str:
        coll, record = await people.alice_record()
        return issue_token(coll, record, kind, claims)

    return build


async def _other_collection(people: People) -> str:
    return people.carol_token


async def _collection_id_switched(people: People) -> str:
    return _with_claims(people.alice_token, collectionId=people.members_id)


async def _resigned_for_members(people: People) -> str:
    """Alice's claims naming ``members``, signed with the ``members`` auth secret."""
    _, record = await people.alice_record()
    members = people.app.collection("members")
    secret, _ = token_settings(members.options, "auth")
    claims = {**_claims(people.alice_token), "collectionId": members.id}
    return jwt_tokens.issue(claims, str(record.data["tokenKey"]) + secret, 3600)


async def _before_password_change(people: People) -> str:
    changed = await people.client.patch(
        f"/api/collections/users/records/{people.alice}",
        json={
            "oldPassword": PASSWORD,
            "password": "new-pass-word",
            "passwordConfirm": "new-pass-word",
        },
        headers={"Authorization": people.alice_token},
    )
    assert 200 == changed.status_code, changed.text
    return people.alice_token


async def _revoked_key(people: People) -> str:
    minted = await mint_key(people.client, {"Authorization": people.alice_token}, ["*"])
    revoked = await people.client.delete(
        f"/api/keys/{minted['id']}", headers={"Authorization": people.alice_token}
    )
    assert 204 == revoked.status_code, revoked.text
    key: str = minted["key"]
    return key


def _literal(text: str) -> Callable[[People], Awaitable[str]]:
    async def build(people: People) -> str:
        return text

    return build


BAD_TOKENS: list[tuple[str, Callable[[People], Awaitable[str]]]] = [
    ("alg none", _alg_none),
    ("alg none, signature kept", _alg_none_signed),
    ("HS512 with the real key", _other_algorithm),
    ("wrong key", _wrong_key),
    ("expired", _expired),
    ("id changed to another user", _other_users_id),
    ("expiry extended", _longer_expiry),
    ("verification token", _kind("verification", email="alice@example.com")),
    ("password reset token", _kind("passwordReset", email="alice@example.com")),
    ("email change token", _kind("emailChange", newEmail="new@example.com")),
    ("file token", _kind("file")),
    ("verification key, type auth", _kind("verification", type="auth")),
    ("token of another auth collection", _other_collection),
    ("collectionId switched", _collection_id_switched),
    ("re-signed for another collection", _resigned_for_members),
    ("issued before a password change", _before_password_change),
    ("revoked API key", _revoked_key),
    ("garbage", _literal("garbage")),
    ("three dots", _literal("a.b.c")),
    ("payload not JSON", _literal("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2lnbmF0dXJl")),
    ("unknown API key", _literal("keel_aaaaaaaaaaaaaaa_" + "x" * 43)),
    ("malformed API key", _literal("keel_short")),
    ("empty Bearer", _literal("Bearer ")),
    ("bare Bearer", _literal("Bearer")),
    ("Bearer garbage", _literal("Bearer garbage")),
    ("null", _literal("null")),
]


@pytest.mark.parametrize(("name", "build"), BAD_TOKENS, ids=[name for name, _ in BAD_TOKENS])
async def test_bad_token_is_a_guest(
    people: People, name: str, build: Callable[[People], Awaitable[str]]
) -> None:
    """A bad token cannot refresh (401) nor see a record only its owner may view (404)."""
    headers = {"Authorization": await build(people)}
    refreshed = await people.client.post(REFRESH, headers=headers)
    viewed = await people.client.get(
        f"/api/collections/users/records/{people.alice}", headers=headers
    )
    assert (401, 404) == (refreshed.status_code, viewed.status_code)
    assert {"status", "message", "data"} == set(refreshed.json())


@pytest.mark.parametrize("prefix", ["", "Bearer ", "bearer "])
async def test_valid_token_works(people: People, prefix: str) -> None:
    """A valid token, raw or after Bearer, refreshes and sees its own record."""
    headers = {"Authorization": prefix + people.alice_token}
    refreshed = await people.client.post(REFRESH, headers=headers)
    viewed = await people.client.get(
        f"/api/collections/users/records/{people.alice}", headers=headers
    )
    assert (200, 200) == (refreshed.status_code, viewed.status_code)
    assert people.alice == refreshed.json()["record"]["id"]
    assert "alice@example.com" == viewed.json()["email"]


async def test_refreshed_token_works(people: People) -> None:
    """The token auth-refresh returns is itself a valid, refreshable token."""
    refreshed = await people.client.post(REFRESH, headers={"Authorization": people.alice_token})
    again = await people.client.post(REFRESH, headers={"Authorization": refreshed.json()["token"]})
    assert 200 == again.status_code


async def test_hand_issued_token_with_real_key_works(people: People) -> None:
    """The key the forged cases start from is the real one: with a future expiry it is valid."""
    coll, record, key = await _real_key(people)
    claims = {"id": record.id, "type": "auth", "collectionId": coll.id, "refreshable": True}
    token = jwt_tokens.issue(claims, key, 3600)
    refreshed = await people.client.post(REFRESH, headers={"Authorization": token})
    assert 200 == refreshed.status_code


async def test_new_password_signs_in_after_change(people: People) -> None:
    """After a password change the old token is dead but a new sign-in works."""
    old = await _before_password_change(people)
    token = await sign_in(people.client, "alice@example.com", password="new-pass-word")
    statuses = [
        (await people.client.post(REFRESH, headers={"Authorization": t})).status_code
        for t in (old, token)
    ]
    assert [401, 200] == statuses


async def test_other_collection_token_refreshes_there(people: People) -> None:
    """Carol's token refreshes in her own collection, only there."""
    headers = {"Authorization": people.carol_token}
    own = await people.client.post("/api/collections/members/auth-refresh", headers=headers)
    other = await people.client.post(REFRESH, headers=headers)
    assert (200, 401) == (own.status_code, other.status_code)


@pytest.mark.parametrize(
    "duration",
    [3600, 0],
)
async def test_impersonation_token_is_not_refreshable(people: People, duration: int) -> None:
    """An impersonation token acts as the record but cannot be refreshed (403)."""
    response = await people.client.post(
        f"/api/collections/users/impersonate/{people.alice}",
        json={"duration": duration},
        headers=people.su,
    )
    assert 200 == response.status_code, response.text
    headers = {"Authorization": response.json()["token"]}
    viewed = await people.client.get(
        f"/api/collections/users/records/{people.alice}", headers=headers
    )
    refreshed = await people.client.post(REFRESH, headers=headers)
    assert (200, 403) == (viewed.status_code, refreshed.status_code)


async def test_revoked_api_key_is_refused(people: People) -> None:
    """A live API key lists keys; once revoked it gets 401."""
    alice = {"Authorization": people.alice_token}
    minted = await mint_key(people.client, alice, ["*"])
    key = {"Authorization": minted["key"]}
    before = await people.client.get("/api/keys", headers=key)
    await people.client.delete(f"/api/keys/{minted['id']}", headers=alice)
    after = await people.client.get("/api/keys", headers=key)
    assert (200, 401) == (before.status_code, after.status_code)


async def test_api_key_is_not_refreshable(people: People) -> None:
    """A valid API key is not turned into a token by auth-refresh (403)."""
    minted = await mint_key(people.client, {"Authorization": people.alice_token}, ["*"])
    refreshed = await people.client.post(REFRESH, headers={"Authorization": minted["key"]})
    assert 403 == refreshed.status_code
