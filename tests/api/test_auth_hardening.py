"""Regressions of the auth review: each test is an attack that must fail."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx

from keel.core.app import App
from tests.api.people import PASSWORD, make_auth_collection, mint_key, register, sign_in
from tests.api.test_auth import otp_code, use_smtp
from tests.smtp import SMTPServer


async def test_scoped_key_cannot_write_system_collections(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A superuser key scoped to creates cannot mint itself a full key or a superuser."""
    minted = await mint_key(client, su, ["*:create", "_superusers:update"])
    key = {"Authorization": f"Bearer {minted['key']}"}
    secret = "x" * 43
    forged = {
        "collectionRef": "pbc_3142635823",
        "recordRef": minted["recordRef"],
        "name": "forged",
        "scopes": ["*"],
        "hash": hashlib.sha256(secret.encode()).hexdigest(),
    }
    response = await client.post("/api/collections/_apiKeys/records", json=forged, headers=key)
    assert 403 == response.status_code
    admin = {"email": "evil@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD}
    response = await client.post("/api/collections/_superusers/records", json=admin, headers=key)
    assert 403 == response.status_code
    assert 403 == (await client.get("/api/settings", headers=key)).status_code


async def test_hidden_emails_cannot_be_probed_by_filters(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A guest's filter on email only sees public emails, so hidden ones cannot be guessed."""
    await make_auth_collection(client, su, listRule="")
    await register(client, "alice@example.com")
    url = "/api/collections/users/records"
    for text in ('email = "alice@example.com"', 'email ~ "ali%"', 'email != ""'):
        listed = await client.get(url, params={"filter": text})
        assert 0 == listed.json()["totalItems"], text
    as_admin = await client.get(url, params={"filter": 'email = "alice@example.com"'}, headers=su)
    assert 1 == as_admin.json()["totalItems"]


async def test_parallel_otp_guesses_stay_within_the_limit(
    client: httpx.AsyncClient, su: dict[str, str], smtp_server: SMTPServer
) -> None:
    """Nine concurrent wrong codes burn the OTP: the right code afterwards is refused."""
    await make_auth_collection(client, su, otp={"enabled": True})
    await use_smtp(client, su, smtp_server)
    await register(client, "o@example.com")
    otp_id = (
        await client.post("/api/collections/users/request-otp", json={"email": "o@example.com"})
    ).json()["otpId"]
    code = await otp_code(smtp_server, "o@example.com")
    wrong = "0" * 8 if code != "0" * 8 else "1" * 8
    url = "/api/collections/users/auth-with-otp"
    answers = await asyncio.gather(
        *(client.post(url, json={"otpId": otp_id, "password": wrong}) for _ in range(9))
    )
    assert {400} == {a.status_code for a in answers}
    right = await client.post(url, json={"otpId": otp_id, "password": code})
    assert 400 == right.status_code


async def test_new_otp_inherits_wrong_attempts(
    client: httpx.AsyncClient, su: dict[str, str], smtp_server: SMTPServer
) -> None:
    """Asking for a fresh code does not reset the record's wrong-guess budget."""
    await make_auth_collection(client, su, otp={"enabled": True})
    await use_smtp(client, su, smtp_server)
    await register(client, "o@example.com")
    url = "/api/collections/users/auth-with-otp"
    request = "/api/collections/users/request-otp"
    for _ in range(5):
        otp_id = (await client.post(request, json={"email": "o@example.com"})).json()["otpId"]
        code = await otp_code(smtp_server, "o@example.com")
        wrong = "0" * 8 if code != "0" * 8 else "1" * 8
        await client.post(url, json={"otpId": otp_id, "password": wrong})
    otp_id = (await client.post(request, json={"email": "o@example.com"})).json()["otpId"]
    code = await otp_code(smtp_server, "o@example.com")
    assert 400 == (await client.post(url, json={"otpId": otp_id, "password": code})).status_code


async def test_emails_are_unique_ignoring_case(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """ALICE@… cannot be registered next to alice@… (sign-in matches any case)."""
    await make_auth_collection(client, su)
    await register(client, "alice@example.com")
    body = {"email": "ALICE@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD}
    response = await client.post("/api/collections/users/records", json=body)
    assert 400 == response.status_code
    assert "validation_not_unique" == response.json()["data"]["email"]["code"]


async def test_pre_registered_account_is_lost_to_the_owner(
    client: httpx.AsyncClient, su: dict[str, str], smtp_server: SMTPServer
) -> None:
    """Whoever pre-registered an address loses it once the owner signs in by OTP."""
    await make_auth_collection(client, su, otp={"enabled": True})
    await use_smtp(client, su, smtp_server)
    await register(client, "victim@example.com")  # by the attacker, with PASSWORD
    attacker_token = await sign_in(client, "victim@example.com")
    otp_id = (
        await client.post(
            "/api/collections/users/request-otp", json={"email": "victim@example.com"}
        )
    ).json()["otpId"]
    code = await otp_code(smtp_server, "victim@example.com")
    owner = await client.post(
        "/api/collections/users/auth-with-otp", json={"otpId": otp_id, "password": code}
    )
    assert (200, True) == (owner.status_code, owner.json()["record"]["verified"])
    login = await client.post(
        "/api/collections/users/auth-with-password",
        json={"identity": "victim@example.com", "password": PASSWORD},
    )
    assert 400 == login.status_code
    stale = await client.post(
        "/api/collections/users/auth-refresh", headers={"Authorization": attacker_token}
    )
    assert 401 == stale.status_code


async def test_impersonation_token_cannot_mint_keys(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A short, non-refreshable impersonation token cannot become a permanent key."""
    await make_auth_collection(client, su, apiKeyRule="")
    user = await register(client, "u@example.com")
    token = (await client.post(f"/api/collections/users/impersonate/{user}", headers=su)).json()[
        "token"
    ]
    response = await client.post(
        "/api/keys", json={"name": "k", "scopes": ["*"]}, headers={"Authorization": token}
    )
    assert 403 == response.status_code


async def test_key_of_a_banned_record_stops_working(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A key dies as soon as its creator no longer passes the collection's authRule."""
    await make_auth_collection(
        client,
        su,
        apiKeyRule="",
        authRule="banned = false",
        fields=[{"name": "banned", "type": "bool"}],
        viewRule="id = @request.auth.id",
    )
    user = await register(client, "u@example.com")
    key = await mint_key(client, {"Authorization": await sign_in(client, "u@example.com")}, ["*"])
    headers = {"Authorization": f"Bearer {key['key']}"}
    url = f"/api/collections/users/records/{user}"
    assert 200 == (await client.get(url, headers=headers)).status_code
    await client.patch(url, json={"banned": True}, headers=su)
    assert 404 == (await client.get(url, headers=headers)).status_code


async def test_auth_system_fields_keep_their_definition(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A new auth collection cannot turn password into a plain text field."""
    body: dict[str, Any] = {
        "name": "users",
        "type": "auth",
        "fields": [{"name": "password", "type": "text"}],
    }
    response = await client.post("/api/collections", json=body, headers=su)
    assert 400 == response.status_code
    body["fields"] = [{"name": "password", "type": "password", "hidden": False, "min": 1}]
    created = await client.post("/api/collections", json=body, headers=su)
    assert 200 == created.status_code, created.text
    password = next(f for f in created.json()["fields"] if f["name"] == "password")
    assert (True, True, 8) == (password["hidden"], password["system"], password["min"])


async def test_rate_limit_labels_match_any_spelling(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A users:auth rule also limits /api/collections/USERS/… and the collection id."""
    coll = await make_auth_collection(client, su)
    rules = [{"label": "users:auth", "audience": "", "duration": 60, "maxRequests": 1}]
    settings = {"rateLimits": {"enabled": True, "rules": rules}}
    assert 200 == (await client.patch("/api/settings", json=settings, headers=su)).status_code
    body = {"identity": "x@example.com", "password": "wrong-password"}
    codes = [
        (await client.post(f"/api/collections/{name}/auth-with-password", json=body)).status_code
        for name in ("users", "USERS", coll["id"])
    ]
    assert [400, 429, 429] == codes


async def test_no_uploads_to_collections_without_files(
    client: httpx.AsyncClient, su: dict[str, str], app: App
) -> None:
    """A collection without file fields takes no more than a normal body, and batch no files."""
    await client.post(
        "/api/collections",
        json={"name": "notes", "createRule": "", "fields": [{"name": "t", "type": "text"}]},
        headers=su,
    )
    big = b"x" * (app.config.max_body_size + 1)
    response = await client.post(
        "/api/collections/notes/records", files=[("t", ("a.bin", big))], data={"t": "x"}
    )
    assert 413 == response.status_code
    await client.patch("/api/settings", json={"batch": {"enabled": True}}, headers=su)
    requests = '{"requests":[{"method":"POST","url":"/api/collections/notes/records","body":{}}]}'
    response = await client.post(
        "/api/batch", data={"@jsonPayload": requests}, files=[("requests.0.t", ("a.txt", b"a"))]
    )
    assert 400 == response.status_code
