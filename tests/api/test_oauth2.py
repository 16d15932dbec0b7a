"""OAuth2 sign-in against a real OpenID Connect provider (``tests/oidc.py``).

Every test drives the whole flow a client would: ``auth-methods`` for the
provider's authorization URL and PKCE pair, the provider's login and consent
pages (:func:`tests.oidc.authorize`), then ``auth-with-oauth2`` with the code.
The linking policy under test is the one in :mod:`keel.core.actions.oauth2`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from keel.security.oauth2 import s256_challenge
from tests.oidc import OidcProvider, authorize

PASSWORD = "a long password"
USERS = "/api/collections/users"


@dataclass(frozen=True)
class Grant:
    """An authorization code, with the verifier and redirect URL it was issued for."""

    code: str
    code_verifier: str
    redirect_url: str

    def body(self, **extra: Any) -> dict[str, Any]:
        """The ``auth-with-oauth2`` body for this code; ``extra`` adds or overrides keys."""
        return {
            "provider": "oidc",
            "code": self.code,
            "codeVerifier": self.code_verifier,
            "redirectURL": self.redirect_url,
            **extra,
        }


def users_collection(provider: OidcProvider) -> dict[str, Any]:
    """The ``users`` auth collection, with the test provider as ``oidc``."""
    return {
        "name": "users",
        "type": "auth",
        "createRule": "",
        "viewRule": "",
        "fields": [{"name": "name", "type": "text"}],
        "oauth2": {
            "enabled": True,
            "mappedFields": {"name": "name"},
            "providers": [
                {
                    "name": "oidc",
                    "clientId": provider.client_id,
                    "clientSecret": provider.client_secret,
                    "authURL": provider.authorization_endpoint,
                    "tokenURL": provider.token_endpoint,
                    "userInfoURL": provider.userinfo_endpoint,
                }
            ],
        },
    }


@pytest.fixture
async def users(
    client: httpx.AsyncClient, su: dict[str, str], oidc_provider: OidcProvider
) -> dict[str, Any]:
    """The ``users`` collection, created through the collections API."""
    response = await client.post(
        "/api/collections", json=users_collection(oidc_provider), headers=su
    )
    assert 200 == response.status_code, response.text
    created: dict[str, Any] = response.json()
    return created


async def provider_info(client: httpx.AsyncClient) -> dict[str, Any]:
    """The ``oidc`` entry of the collection's auth methods."""
    response = await client.get(f"{USERS}/auth-methods")
    assert 200 == response.status_code, response.text
    providers = response.json()["oauth2"]["providers"]
    assert ["oidc"] == [p["name"] for p in providers]
    info: dict[str, Any] = providers[0]
    return info


async def grant(client: httpx.AsyncClient, provider: OidcProvider, login: str) -> Grant:
    """Sign in at the provider as ``login`` through the URL Keel gave; the code it returns."""
    info = await provider_info(client)
    redirect_url = provider.redirect_uris[0]
    auth_url = info["authURL"] + quote(redirect_url, safe="")
    # ``authorize`` is a blocking browser stand-in; keep it off the event loop.
    redirect = await asyncio.to_thread(authorize, auth_url, login)
    assert info["state"] == redirect.get("state"), redirect
    return Grant(redirect["code"], info["codeVerifier"], redirect_url)


async def sign_in(
    client: httpx.AsyncClient,
    provider: OidcProvider,
    login: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    """The whole flow for ``login``: auth-methods, the provider, auth-with-oauth2."""
    code = await grant(client, provider, login)
    return await client.post(
        f"{USERS}/auth-with-oauth2", json=code.body(**extra), headers=headers or {}
    )


async def list_items(client: httpx.AsyncClient, su: dict[str, str], name: str) -> list[Any]:
    """Every record of collection ``name``, read as the superuser."""
    response = await client.get(
        f"/api/collections/{name}/records", params={"perPage": 500}, headers=su
    )
    assert 200 == response.status_code, response.text
    items: list[Any] = response.json()["items"]
    return items


async def links(client: httpx.AsyncClient, su: dict[str, str]) -> set[tuple[str, str, str]]:
    """The ``_externalAuths`` rows as ``(recordRef, provider, providerId)``."""
    return {
        (row["recordRef"], row["provider"], row["providerId"])
        for row in await list_items(client, su, "_externalAuths")
    }


async def register(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    """A user registered anonymously through the records API (so unverified)."""
    response = await client.post(
        f"{USERS}/records",
        json={"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD},
    )
    assert 200 == response.status_code, response.text
    record: dict[str, Any] = response.json()
    return record


async def password_login(client: httpx.AsyncClient, email: str, **extra: Any) -> httpx.Response:
    return await client.post(
        f"{USERS}/auth-with-password", json={"identity": email, "password": PASSWORD, **extra}
    )


async def update_users(client: httpx.AsyncClient, su: dict[str, str], **body: Any) -> None:
    response = await client.patch("/api/collections/users", json=body, headers=su)
    assert 200 == response.status_code, response.text


async def test_auth_methods_list_the_provider_with_a_pkce_pair(
    client: httpx.AsyncClient, users: dict[str, Any], oidc_provider: OidcProvider
) -> None:
    """auth-methods lists the provider with a state, an S256 PKCE pair and an open redirect_uri."""
    info = await provider_info(client)

    assert ("oidc", "OpenID Connect", "S256") == (
        info["name"],
        info["displayName"],
        info["codeChallengeMethod"],
    )
    assert s256_challenge(info["codeVerifier"]) == info["codeChallenge"]
    assert info["authURL"].startswith(oidc_provider.authorization_endpoint + "?")
    assert info["authURL"].endswith("&redirect_uri=")
    assert f"code_challenge={info['codeChallenge']}" in info["authURL"]
    assert f"state={info['state']}" in info["authURL"]
    assert f"client_id={oidc_provider.client_id}" in info["authURL"]


async def test_auth_methods_give_a_fresh_pkce_pair_each_time(
    client: httpx.AsyncClient, users: dict[str, Any]
) -> None:
    """Two auth-methods calls give different states and verifiers."""
    first, second = await provider_info(client), await provider_info(client)

    assert (True, True) == (
        first["state"] != second["state"],
        first["codeVerifier"] != second["codeVerifier"],
    )


async def test_collections_api_never_shows_the_client_secret(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """The client secret is kept but never shown by the collections API."""
    view = await client.get("/api/collections/users", headers=su)
    listing = await client.get("/api/collections", params={"perPage": 500}, headers=su)

    for response in (view, listing):
        assert 200 == response.status_code, response.text
        assert oidc_provider.client_secret not in response.text
        assert "clientSecret" not in response.text
    assert oidc_provider.client_secret not in str(users)
    assert [oidc_provider.client_id] == [p["clientId"] for p in view.json()["oauth2"]["providers"]]


async def test_first_sign_in_creates_a_verified_linked_user(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """A first sign-in creates a verified user with the mapped name, and links it."""
    response = await sign_in(client, oidc_provider, "alice")

    assert 200 == response.status_code, response.text
    body = response.json()
    record, meta = body["record"], body["meta"]
    assert ("alice@oidc.test", True, "alice") == (
        record["email"],
        record["verified"],
        record["name"],
    )
    assert ("alice", "alice@oidc.test", "alice", True) == (
        meta["id"],
        meta["email"],
        meta["name"],
        meta["isNew"],
    )
    assert meta["accessToken"]
    assert "alice" == meta["rawUser"]["sub"]
    assert [record["id"]] == [u["id"] for u in await list_items(client, su, "users")]
    assert {(record["id"], "oidc", "alice")} == await links(client, su)


async def test_second_sign_in_returns_the_same_record(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """Signing in again finds the linked record: same id, isNew false, no new rows."""
    first = await sign_in(client, oidc_provider, "alice")
    second = await sign_in(client, oidc_provider, "alice")

    assert 200 == second.status_code, second.text
    record_id = first.json()["record"]["id"]
    assert (record_id, False) == (second.json()["record"]["id"], second.json()["meta"]["isNew"])
    assert 1 == len(await list_items(client, su, "users"))
    assert {(record_id, "oidc", "alice")} == await links(client, su)


async def test_oauth2_token_can_be_refreshed(
    client: httpx.AsyncClient, users: dict[str, Any], oidc_provider: OidcProvider
) -> None:
    """The token auth-with-oauth2 returns is a working auth token."""
    signed_in = (await sign_in(client, oidc_provider, "alice")).json()

    response = await client.post(
        f"{USERS}/auth-refresh", headers={"Authorization": signed_in["token"]}
    )

    assert 200 == response.status_code, response.text
    assert signed_in["record"]["id"] == response.json()["record"]["id"]


async def test_wrong_code_is_refused(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """A code the provider never issued gives 400 and creates nothing."""
    code = await grant(client, oidc_provider, "alice")

    response = await client.post(f"{USERS}/auth-with-oauth2", json=code.body(code=code.code + "x"))

    assert 400 == response.status_code, response.text
    assert ([], set()) == (await list_items(client, su, "users"), await links(client, su))


async def test_replayed_code_is_refused(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """A code used once gives 400 the second time and adds no record or link."""
    code = await grant(client, oidc_provider, "alice")
    first = await client.post(f"{USERS}/auth-with-oauth2", json=code.body())
    assert 200 == first.status_code, first.text

    replay = await client.post(f"{USERS}/auth-with-oauth2", json=code.body())

    assert 400 == replay.status_code, replay.text
    record_id = first.json()["record"]["id"]
    assert [record_id] == [u["id"] for u in await list_items(client, su, "users")]
    assert {(record_id, "oidc", "alice")} == await links(client, su)


async def test_wrong_code_verifier_is_refused(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """A code with another auth-methods call's verifier fails PKCE: 400, nothing created."""
    code = await grant(client, oidc_provider, "alice")
    other = await provider_info(client)

    response = await client.post(
        f"{USERS}/auth-with-oauth2", json=code.body(codeVerifier=other["codeVerifier"])
    )

    assert 400 == response.status_code, response.text
    assert ([], set()) == (await list_items(client, su, "users"), await links(client, su))


async def test_missing_code_verifier_is_refused(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """A code issued for a PKCE challenge cannot be redeemed without its verifier."""
    code = await grant(client, oidc_provider, "alice")

    response = await client.post(f"{USERS}/auth-with-oauth2", json=code.body(codeVerifier=""))

    assert 400 == response.status_code, response.text
    assert [] == await list_items(client, su, "users")


async def test_other_redirect_url_is_refused(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """The code must be redeemed with the redirect URL it was issued for."""
    code = await grant(client, oidc_provider, "alice")

    response = await client.post(
        f"{USERS}/auth-with-oauth2", json=code.body(redirectURL=oidc_provider.redirect_uris[1])
    )

    assert 400 == response.status_code, response.text
    assert [] == await list_items(client, su, "users")


@pytest.mark.parametrize("provider", ["github", "nope"])
async def test_unknown_provider_is_refused(
    client: httpx.AsyncClient, users: dict[str, Any], provider: str
) -> None:
    """A provider the collection does not configure gives 400 on the provider field."""
    body = {"provider": provider, "code": "x", "codeVerifier": "y", "redirectURL": "z"}

    response = await client.post(f"{USERS}/auth-with-oauth2", json=body)

    assert 400 == response.status_code, response.text
    assert "validation_invalid_provider" == response.json()["data"]["provider"]["code"]


async def test_missing_values_are_refused(client: httpx.AsyncClient, users: dict[str, Any]) -> None:
    """provider, code and redirectURL are required."""
    response = await client.post(f"{USERS}/auth-with-oauth2", json={})

    assert 400 == response.status_code, response.text
    assert {"provider", "code", "redirectURL"} == set(response.json()["data"])


async def test_disabled_oauth2_is_forbidden(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """With OAuth2 disabled, a valid code gives 403 and auth-methods lists no provider."""
    code = await grant(client, oidc_provider, "alice")
    await update_users(client, su, oauth2={"enabled": False})

    response = await client.post(f"{USERS}/auth-with-oauth2", json=code.body())
    methods = await client.get(f"{USERS}/auth-methods")

    assert 403 == response.status_code, response.text
    assert {"enabled": False, "providers": []} == methods.json()["oauth2"]
    assert [] == await list_items(client, su, "users")


async def test_unverified_provider_email_is_not_used(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """An email the provider does not vouch for is dropped; without one, creation fails."""
    response = await sign_in(client, oidc_provider, "carol-unverified")

    assert 400 == response.status_code, response.text
    assert "validation_required" == response.json()["data"]["email"]["code"]
    assert ([], set()) == (await list_items(client, su, "users"), await links(client, su))


async def test_unverified_provider_email_does_not_reach_an_existing_record(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """A verified record is not linked through an email the provider does not vouch for."""
    existing = await register(client, "dan-unverified@oidc.test")
    verify = await client.patch(
        f"{USERS}/records/{existing['id']}", json={"verified": True}, headers=su
    )
    assert 200 == verify.status_code, verify.text

    response = await sign_in(client, oidc_provider, "dan-unverified")

    assert 400 == response.status_code, response.text
    assert set() == await links(client, su)


async def test_existing_unverified_record_is_not_linked(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """A record registered by anyone with the email, never verified, is not taken over."""
    squatter = await register(client, "dave@oidc.test")

    response = await sign_in(client, oidc_provider, "dave")

    assert 400 == response.status_code, response.text
    assert set() == await links(client, su)
    assert [(squatter["id"], False)] == [
        (u["id"], u["verified"]) for u in await list_items(client, su, "users")
    ]
    login = await password_login(client, "dave@oidc.test")
    assert 200 == login.status_code, login.text


async def test_existing_verified_record_is_linked(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """A verified record with the provider-verified email is linked and signed in."""
    existing = await register(client, "erin@oidc.test")
    verify = await client.patch(
        f"{USERS}/records/{existing['id']}", json={"verified": True}, headers=su
    )
    assert 200 == verify.status_code, verify.text

    response = await sign_in(client, oidc_provider, "erin")

    assert 200 == response.status_code, response.text
    assert (existing["id"], False) == (
        response.json()["record"]["id"],
        response.json()["meta"]["isNew"],
    )
    assert {(existing["id"], "oidc", "erin")} == await links(client, su)
    assert 1 == len(await list_items(client, su, "users"))


async def test_email_match_ignores_case(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """The provider's email matches an existing verified record case-insensitively."""
    existing = await register(client, "Erin@OIDC.test")
    verify = await client.patch(
        f"{USERS}/records/{existing['id']}", json={"verified": True}, headers=su
    )
    assert 200 == verify.status_code, verify.text

    response = await sign_in(client, oidc_provider, "erin@oidc.test")

    assert 200 == response.status_code, response.text
    assert existing["id"] == response.json()["record"]["id"]


async def test_signed_in_unverified_record_links_and_becomes_verified(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """Signed in with the same email, the owner links the provider: verified, password gone."""
    own = await register(client, "frank@oidc.test")
    login = await password_login(client, "frank@oidc.test")
    assert 200 == login.status_code, login.text

    response = await sign_in(
        client, oidc_provider, "frank", headers={"Authorization": login.json()["token"]}
    )

    assert 200 == response.status_code, response.text
    record = response.json()["record"]
    assert (own["id"], True, False) == (
        record["id"],
        record["verified"],
        response.json()["meta"]["isNew"],
    )
    assert {(own["id"], "oidc", "frank")} == await links(client, su)
    assert 400 == (await password_login(client, "frank@oidc.test")).status_code
    refreshed = await client.post(
        f"{USERS}/auth-refresh", headers={"Authorization": response.json()["token"]}
    )
    assert 200 == refreshed.status_code, refreshed.text


async def test_unverified_record_cannot_link_another_email(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """An unverified record cannot link an identity of another email: no link, nothing changes.

    Whoever pre-registered an address could otherwise keep a way in after the
    owner claims the account.
    """
    await register(client, "gus@example.com")
    login = await password_login(client, "gus@example.com")
    assert 200 == login.status_code, login.text

    response = await sign_in(
        client, oidc_provider, "gustav", headers={"Authorization": login.json()["token"]}
    )

    assert 400 == response.status_code, response.text
    assert set() == await links(client, su)
    assert 200 == (await password_login(client, "gus@example.com")).status_code


async def test_create_data_is_applied_on_creation(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """createData fills the new record, ahead of the mapped fields."""
    response = await sign_in(
        client, oidc_provider, "hana", createData={"name": "Hana B.", "emailVisibility": True}
    )

    assert 200 == response.status_code, response.text
    record = response.json()["record"]
    assert ("Hana B.", True, "hana@oidc.test") == (
        record["name"],
        record["emailVisibility"],
        record["email"],
    )


async def test_create_data_cannot_override_auth_fields(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """createData cannot choose the email, verified flag or password of the new record."""
    response = await sign_in(
        client,
        oidc_provider,
        "ivy-unverified",
        createData={
            "email": "ivy@example.com",
            "verified": True,
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
        },
    )

    assert 400 == response.status_code, response.text
    assert [] == await list_items(client, su, "users")


async def test_create_data_is_ignored_for_existing_records(
    client: httpx.AsyncClient, users: dict[str, Any], oidc_provider: OidcProvider
) -> None:
    """createData only applies when a record is created."""
    await sign_in(client, oidc_provider, "hana")

    response = await sign_in(client, oidc_provider, "hana", createData={"name": "Changed"})

    assert 200 == response.status_code, response.text
    assert "hana" == response.json()["record"]["name"]


async def test_null_create_rule_blocks_new_users_but_not_linked_ones(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """With createRule null a new identity gets 403; a linked one still signs in."""
    first = await sign_in(client, oidc_provider, "jack")
    assert 200 == first.status_code, first.text
    await update_users(client, su, createRule=None)

    refused = await sign_in(client, oidc_provider, "kate")
    again = await sign_in(client, oidc_provider, "jack")

    assert 403 == refused.status_code, refused.text
    assert 200 == again.status_code, again.text
    record_id = first.json()["record"]["id"]
    assert record_id == again.json()["record"]["id"]
    assert [record_id] == [u["id"] for u in await list_items(client, su, "users")]
    assert {(record_id, "oidc", "jack")} == await links(client, su)


async def test_create_rule_applies_to_new_oauth2_users(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """A createRule the new record fails refuses the sign-up and leaves no row behind."""
    await update_users(client, su, createRule="name = 'allowed'")

    refused = await sign_in(client, oidc_provider, "lena")
    allowed = await sign_in(client, oidc_provider, "mona", createData={"name": "allowed"})

    assert (400, 200) == (refused.status_code, allowed.status_code), refused.text
    record_id = allowed.json()["record"]["id"]
    assert [record_id] == [u["id"] for u in await list_items(client, su, "users")]
    assert {(record_id, "oidc", "mona")} == await links(client, su)


async def mfa_user(client: httpx.AsyncClient, su: dict[str, str], login: str) -> dict[str, Any]:
    """A verified user with a password, in ``users`` with MFA switched on."""
    record = await register(client, f"{login}@oidc.test")
    verify = await client.patch(
        f"{USERS}/records/{record['id']}", json={"verified": True}, headers=su
    )
    assert 200 == verify.status_code, verify.text
    await update_users(client, su, mfa={"enabled": True})
    return record


async def test_mfa_password_then_oauth2(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """With MFA, a password gives 401 with an mfaId, and OAuth2 with it completes the sign-in."""
    record = await mfa_user(client, su, "nina")

    first = await password_login(client, "nina@oidc.test")
    assert 401 == first.status_code, first.text
    mfa_id = first.json()["mfaId"]

    second = await sign_in(client, oidc_provider, "nina", mfaId=mfa_id)

    assert 200 == second.status_code, second.text
    assert record["id"] == second.json()["record"]["id"]
    assert [] == await list_items(client, su, "_mfas")


async def test_mfa_oauth2_alone_is_not_enough(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """With MFA, OAuth2 as the first factor gives 401 with an mfaId, not a token."""
    await mfa_user(client, su, "olga")

    first = await sign_in(client, oidc_provider, "olga")

    assert 401 == first.status_code, first.text
    assert ["mfaId"] == list(first.json())
    second = await password_login(client, "olga@oidc.test", mfaId=first.json()["mfaId"])
    assert 200 == second.status_code, second.text


async def test_mfa_refuses_the_same_method_twice(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """The second factor must be a different method than the first."""
    await mfa_user(client, su, "pete")

    by_oauth2 = await sign_in(client, oidc_provider, "pete")
    assert 401 == by_oauth2.status_code, by_oauth2.text
    oauth2_again = await sign_in(client, oidc_provider, "pete", mfaId=by_oauth2.json()["mfaId"])

    by_password = await password_login(client, "pete@oidc.test")
    assert 401 == by_password.status_code, by_password.text
    password_again = await password_login(
        client, "pete@oidc.test", mfaId=by_password.json()["mfaId"]
    )

    assert (400, 400) == (oauth2_again.status_code, password_again.status_code)


async def test_deleted_user_can_sign_up_again(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """After its record is deleted, the identity signs up afresh and is linked to the new one."""
    first = await sign_in(client, oidc_provider, "quinn")
    old_id = first.json()["record"]["id"]
    deleted = await client.delete(f"{USERS}/records/{old_id}", headers=su)
    assert 204 == deleted.status_code, deleted.text

    again = await sign_in(client, oidc_provider, "quinn")

    assert 200 == again.status_code, again.text
    new_id = again.json()["record"]["id"]
    assert (True, True) == (old_id != new_id, again.json()["meta"]["isNew"])
    assert {(new_id, "oidc", "quinn")} == await links(client, su)


async def test_meta_carries_the_provider_profile(
    client: httpx.AsyncClient, users: dict[str, Any], oidc_provider: OidcProvider
) -> None:
    """meta has the provider's avatar URL, tokens and their expiry."""
    response = await sign_in(client, oidc_provider, "rosa")

    meta = response.json()["meta"]
    assert f"{oidc_provider.issuer}/pictures/rosa.png" == meta["avatarURL"]
    assert (True, True) == (bool(meta["accessToken"]), bool(meta["expiry"]))


async def test_owner_sees_its_own_links(
    client: httpx.AsyncClient, users: dict[str, Any], oidc_provider: OidcProvider
) -> None:
    """A signed-in user lists its own _externalAuths rows; a guest lists none."""
    signed_in = (await sign_in(client, oidc_provider, "sam")).json()
    await sign_in(client, oidc_provider, "tess")

    own = await client.get(
        "/api/collections/_externalAuths/records",
        headers={"Authorization": signed_in["token"]},
    )
    guest = await client.get("/api/collections/_externalAuths/records")

    assert 200 == own.status_code, own.text
    assert [(signed_in["record"]["id"], "sam")] == [
        (row["recordRef"], row["providerId"]) for row in own.json()["items"]
    ]
    assert 200 == guest.status_code, guest.text
    assert [] == guest.json()["items"]


async def test_legacy_redirect_url_spelling_is_accepted(
    client: httpx.AsyncClient, users: dict[str, Any], oidc_provider: OidcProvider
) -> None:
    """Older SDKs send ``redirectUrl``; it works like ``redirectURL``."""
    code = await grant(client, oidc_provider, "uma")
    body = code.body()
    body["redirectUrl"] = body.pop("redirectURL")

    response = await client.post(f"{USERS}/auth-with-oauth2", json=body)

    assert 200 == response.status_code, response.text


async def test_provider_without_pkce(
    client: httpx.AsyncClient,
    su: dict[str, str],
    users: dict[str, Any],
    oidc_provider: OidcProvider,
) -> None:
    """With pkce false there is no PKCE pair, and the flow works with the stored secret."""
    provider = {
        key: value
        for key, value in users_collection(oidc_provider)["oauth2"]["providers"][0].items()
        if key != "clientSecret"
    }
    await update_users(client, su, oauth2={"providers": [{**provider, "pkce": False}]})

    info = await provider_info(client)
    response = await sign_in(client, oidc_provider, "vera")

    assert ("", "", "") == (
        info["codeVerifier"],
        info["codeChallenge"],
        info["codeChallengeMethod"],
    )
    assert "code_challenge" not in info["authURL"]
    assert 200 == response.status_code, response.text
