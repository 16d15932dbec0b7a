"""/api/settings, /api/health and superuser authentication."""

from __future__ import annotations

import httpx

from tests.conftest import SUPERUSER_EMAIL, SUPERUSER_PASSWORD


async def test_settings_view_and_update(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Superusers read and patch settings; the change is stored."""
    assert 401 == (await client.get("/api/settings")).status_code
    settings = (await client.get("/api/settings", headers=su)).json()
    assert {"enabled": False, "maxRequests": 50, "timeout": 3, "maxBodySize": 0} == settings[
        "batch"
    ]
    assert "Acme" == settings["meta"]["appName"]
    patched = await client.patch("/api/settings", json={"meta": {"appName": "Keel"}}, headers=su)
    assert "Keel" == patched.json()["meta"]["appName"]
    assert "Keel" == (await client.get("/api/settings", headers=su)).json()["meta"]["appName"]


async def test_settings_validation(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Invalid settings are nested per section and key, and nothing is saved."""
    response = await client.patch(
        "/api/settings",
        json={
            "batch": {"maxRequests": -1, "enabled": "yes"},
            "meta": {"appName": "", "appURL": "nope"},
            "bogus": {},
        },
        headers=su,
    )
    assert 400 == response.status_code
    data = response.json()["data"]
    assert "validation_min_greater_equal_than_required" == data["batch"]["maxRequests"]["code"]
    assert "validation_invalid_value" == data["batch"]["enabled"]["code"]
    assert "validation_required" == data["meta"]["appName"]["code"]
    assert "validation_is_url" == data["meta"]["appURL"]["code"]
    assert "validation_unknown_setting" == data["bogus"]["code"]
    assert "Acme" == (await client.get("/api/settings", headers=su)).json()["meta"]["appName"]


async def test_health(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Health answers everyone, with details for superusers only."""
    anonymous = await client.get("/api/health")
    assert {"message": "API is healthy.", "code": 200, "data": {}} == anonymous.json()
    detailed = (await client.get("/api/health", headers=su)).json()
    assert {"canBackup", "realIP", "possibleProxyHeader"} == set(detailed["data"])


async def test_superuser_auth(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Password login returns a token and the record; failures do not say why."""
    url = "/api/collections/_superusers/auth-with-password"
    ok = await client.post(
        url, json={"identity": SUPERUSER_EMAIL.upper(), "password": SUPERUSER_PASSWORD}
    )
    assert 200 == ok.status_code
    assert {"token", "record"} == set(ok.json())
    assert "password" not in ok.json()["record"] and "tokenKey" not in ok.json()["record"]
    wrong = await client.post(url, json={"identity": SUPERUSER_EMAIL, "password": "nope-nope"})
    unknown = await client.post(url, json={"identity": "who@example.com", "password": "nope-nope"})
    assert (400, "Failed to authenticate.") == (wrong.status_code, wrong.json()["message"])
    assert wrong.json() == unknown.json()
    missing = await client.post(url, json={})
    assert {"identity", "password"} == set(missing.json()["data"])
    bearer = await client.get(
        "/api/settings", headers={"Authorization": "Bearer " + su["Authorization"]}
    )
    assert 200 == bearer.status_code
    refreshed = await client.post("/api/collections/_superusers/auth-refresh", headers=su)
    assert 200 == refreshed.status_code


async def test_tokens_are_checked(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Tampered, unsigned and post-password-change tokens grant nothing."""
    token = su["Authorization"]
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[::-1]}"
    unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + payload + "."
    for bad in (tampered, unsigned, "garbage"):
        assert (
            401 == (await client.get("/api/settings", headers={"Authorization": bad})).status_code
        )
    me = (await client.post("/api/collections/_superusers/auth-refresh", headers=su)).json()[
        "record"
    ]
    changed = await client.patch(
        f"/api/collections/_superusers/records/{me['id']}",
        json={"password": "another-password", "passwordConfirm": "another-password"},
        headers=su,
    )
    assert 200 == changed.status_code, changed.text
    assert 401 == (await client.get("/api/settings", headers=su)).status_code


async def test_superusers_through_records_api(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """Superusers are records: created with a confirmed password, never shown hashes."""
    url = "/api/collections/_superusers/records"
    body = {"email": "second@example.com", "password": "pass-word-1"}
    unconfirmed = await client.post(url, json=body, headers=su)
    assert "validation_required" == unconfirmed.json()["data"]["passwordConfirm"]["code"]
    mismatch = await client.post(url, json={**body, "passwordConfirm": "other"}, headers=su)
    assert "validation_values_mismatch" == mismatch.json()["data"]["passwordConfirm"]["code"]
    created = await client.post(url, json={**body, "passwordConfirm": "pass-word-1"}, headers=su)
    assert 200 == created.status_code, created.text
    assert {"password", "tokenKey"}.isdisjoint(created.json())
    assert 403 == (await client.get(url)).status_code
    login = await client.post(
        "/api/collections/_superusers/auth-with-password",
        json={"identity": "second@example.com", "password": "pass-word-1"},
    )
    assert 200 == login.status_code
