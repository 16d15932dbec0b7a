"""Auth collections and their endpoints: passwords, email flows, OTP, MFA, impersonation."""

from __future__ import annotations

import re
from typing import Any

import bcrypt
import httpx
import pytest

from keel.core.app import App
from tests.smtp import SMTPServer

PASSWORD = "secret-pass-1"
USERS: dict[str, Any] = {
    "name": "users",
    "type": "auth",
    "listRule": "",
    "viewRule": "",
    "createRule": "",
    "updateRule": "id = @request.auth.id",
    "deleteRule": "id = @request.auth.id",
    "fields": [
        {"name": "username", "type": "text"},
        {"name": "role", "type": "text"},
    ],
    "indexes": ["CREATE UNIQUE INDEX idx_users_username ON users (username)"],
    "passwordAuth": {"enabled": True, "identityFields": ["email", "username"]},
}


async def make_users(client: httpx.AsyncClient, su: dict[str, str], **extra: Any) -> Any:
    response = await client.post("/api/collections", json={**USERS, **extra}, headers=su)
    assert 200 == response.status_code, response.text
    return response.json()


async def register(client: httpx.AsyncClient, email: str, **extra: Any) -> dict[str, Any]:
    body = {
        "email": email,
        "password": PASSWORD,
        "passwordConfirm": PASSWORD,
        "username": email.split("@")[0].lower(),
        **extra,
    }
    response = await client.post("/api/collections/users/records", json=body)
    assert 200 == response.status_code, response.text
    record: dict[str, Any] = response.json()
    return record


async def login(client: httpx.AsyncClient, identity: str, password: str = PASSWORD) -> Any:
    return await client.post(
        "/api/collections/users/auth-with-password",
        json={"identity": identity, "password": password},
    )


async def token_of(client: httpx.AsyncClient, identity: str) -> str:
    response = await login(client, identity)
    assert 200 == response.status_code, response.text
    token: str = response.json()["token"]
    return token


async def use_smtp(client: httpx.AsyncClient, su: dict[str, str], server: SMTPServer) -> None:
    smtp = {"enabled": True, "host": server.host, "port": server.port}
    response = await client.patch("/api/settings", json={"smtp": smtp}, headers=su)
    assert 200 == response.status_code, response.text


def token_in(text: str) -> str:
    match = re.search(r"/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", text)
    assert match is not None, text
    return match.group(1)


# -- the collection ---------------------------------------------------------------


async def test_auth_collection_shape(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """A new auth collection gets the system fields, unique indexes and options, no secrets."""
    coll = await make_users(client, su)
    names = [f["name"] for f in coll["fields"]]
    for system in ("id", "password", "tokenKey", "email", "emailVisibility", "verified"):
        assert system in names
    assert any("idx_email_" in i for i in coll["indexes"])
    assert any("idx_tokenKey_" in i for i in coll["indexes"])
    assert {"duration": 604800} == coll["authToken"]
    assert {"enabled": True, "identityFields": ["email", "username"]} == coll["passwordAuth"]
    assert "secret" not in str(coll)
    assert {"enabled": False, "duration": 180, "length": 8} == {
        k: coll["otp"][k] for k in ("enabled", "duration", "length")
    }


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"authToken": {"duration": 5}}, "authToken"),
        ({"otp": {"length": 2}}, "otp"),
        ({"otp": {"enabled": "yes"}}, "otp"),
        ({"passwordAuth": {"identityFields": ["role"]}}, "passwordAuth"),
        ({"oauth2": {"providers": [{"name": "nope", "clientId": "a"}]}}, "oauth2"),
        ({"mfa": {"rule": "nope ="}}, "mfa"),
        ({"mfa": "on"}, "mfa"),
    ],
)
async def test_invalid_auth_options(
    client: httpx.AsyncClient, su: dict[str, str], extra: dict[str, Any], key: str
) -> None:
    """Invalid auth options are a 400 keyed by the option, and create nothing."""
    response = await client.post("/api/collections", json={**USERS, **extra}, headers=su)
    assert 400 == response.status_code, response.text
    assert key in response.json()["data"]
    assert 404 == (await client.get("/api/collections/users", headers=su)).status_code


# -- passwords --------------------------------------------------------------------


async def test_password_login_and_refresh(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Email (any case) or username signs in; the token refreshes and shows the own email."""
    await make_users(client, su)
    created = await register(client, "Jane@Example.com", username="jane")
    assert "email" not in created  # emailVisibility is off for a guest
    for identity in ("jane@example.com", "JANE@EXAMPLE.COM", "jane"):
        response = await login(client, identity)
        assert 200 == response.status_code, response.text
        assert created["id"] == response.json()["record"]["id"]
        assert "Jane@Example.com" == response.json()["record"]["email"]
    token = await token_of(client, "jane")
    refreshed = await client.post(
        "/api/collections/users/auth-refresh", headers={"Authorization": token}
    )
    assert 200 == refreshed.status_code, refreshed.text
    assert created["id"] == refreshed.json()["record"]["id"]


async def test_wrong_credentials_look_alike(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """A wrong password and an unknown identity get the same 400."""
    await make_users(client, su)
    await register(client, "a@example.com")
    wrong = await login(client, "a@example.com", "not-the-password")
    unknown = await login(client, "nobody@example.com")
    assert (400, 400) == (wrong.status_code, unknown.status_code)
    assert wrong.json() == unknown.json()
    blank = await login(client, "", "")
    assert {"identity", "password"} == set(blank.json()["data"])


async def test_password_auth_disabled_and_auth_rule(
    client: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """Disabled password auth is 403; authRule refuses records it does not match."""
    await make_users(client, su, authRule="verified = true")
    await register(client, "a@example.com")
    assert 403 == (await login(client, "a@example.com")).status_code
    await client.patch(
        "/api/collections/users", json={"passwordAuth": {"enabled": False}}, headers=su
    )
    assert 403 == (await login(client, "a@example.com")).status_code


async def test_bcrypt_hash_is_rehashed(
    client: httpx.AsyncClient, su: dict[str, str], app: App
) -> None:
    """An imported bcrypt hash signs in and is replaced by argon2id."""
    await make_users(client, su)
    record = await register(client, "old@example.com")
    hashed = bcrypt.hashpw(b"legacy-password", bcrypt.gensalt(4)).decode()
    await app.db.execute("UPDATE users SET password = ? WHERE id = ?", (hashed, record["id"]))
    assert 200 == (await login(client, "old@example.com", "legacy-password")).status_code
    row = await app.db.fetch_one("SELECT password FROM users WHERE id = ?", (record["id"],))
    assert row is not None and str(row[0]).startswith("$argon2id$")
    assert 200 == (await login(client, "old@example.com", "legacy-password")).status_code


# -- what a user may set ----------------------------------------------------------


async def test_mass_assignment_is_refused(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Users cannot set verified, their email, tokenKey, or a password without the old one."""
    await make_users(client, su)
    body = {"email": "m@example.com", "password": PASSWORD, "passwordConfirm": PASSWORD}
    verified = await client.post("/api/collections/users/records", json={**body, "verified": True})
    assert 400 == verified.status_code
    assert "validation_values_mismatch" == verified.json()["data"]["verified"]["code"]
    record = await register(client, "m@example.com", tokenKey="x" * 40)
    token = await token_of(client, "m@example.com")
    auth = {"Authorization": token}
    url = f"/api/collections/users/records/{record['id']}"
    cases = [
        ({"verified": True}, "verified"),
        ({"email": "other@example.com"}, "email"),
        ({"password": "new-pass-123", "passwordConfirm": "new-pass-123"}, "oldPassword"),
        (
            {"password": "new-pass-123", "passwordConfirm": "new-pass-123", "oldPassword": "x"},
            "oldPassword",
        ),
    ]
    for patch, key in cases:
        response = await client.patch(url, json=patch, headers=auth)
        assert 400 == response.status_code, response.text
        assert key in response.json()["data"]
    # The token still works: nothing above changed tokenKey, and "x"*40 was ignored.
    refreshed = await client.post("/api/collections/users/auth-refresh", headers=auth)
    assert 200 == refreshed.status_code
    ok = await client.patch(
        url,
        json={
            "password": "new-pass-123",
            "passwordConfirm": "new-pass-123",
            "oldPassword": PASSWORD,
        },
        headers=auth,
    )
    assert 200 == ok.status_code, ok.text
    # A password change signs out every earlier token.
    stale = await client.post("/api/collections/users/auth-refresh", headers=auth)
    assert 401 == stale.status_code
    assert 200 == (await login(client, "m@example.com", "new-pass-123")).status_code


async def test_manage_rule_grants_managing(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """A manager (manageRule) may set verified, email and password of others."""
    await make_users(client, su, manageRule="@request.auth.role = 'admin'", updateRule="")
    boss = await register(client, "boss@example.com")
    await client.patch(
        f"/api/collections/users/records/{boss['id']}", json={"role": "admin"}, headers=su
    )
    worker = await register(client, "worker@example.com")
    url = f"/api/collections/users/records/{worker['id']}"
    as_boss = {"Authorization": await token_of(client, "boss@example.com")}
    response = await client.patch(
        url,
        json={
            "verified": True,
            "email": "worker2@example.com",
            "password": "chosen-by-boss",
            "passwordConfirm": "chosen-by-boss",
        },
        headers=as_boss,
    )
    assert 200 == response.status_code, response.text
    assert (True, "worker2@example.com") == (
        response.json()["verified"],
        response.json()["email"],
    )
    signed = await login(client, "worker2@example.com", "chosen-by-boss")
    as_worker = {"Authorization": signed.json()["token"]}
    refused = await client.patch(
        f"/api/collections/users/records/{boss['id']}", json={"verified": True}, headers=as_worker
    )
    assert 400 == refused.status_code


async def test_email_visibility(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Emails show to their owner, superusers, and everyone when emailVisibility is on."""
    await make_users(client, su)
    hidden = await register(client, "hidden@example.com")
    await register(client, "shown@example.com", emailVisibility=True)
    guest = (await client.get("/api/collections/users/records?sort=email")).json()["items"]
    assert [None, "shown@example.com"] == sorted(
        (u.get("email") for u in guest), key=lambda e: e or ""
    )
    admin = (await client.get("/api/collections/users/records", headers=su)).json()["items"]
    assert {"hidden@example.com", "shown@example.com"} == {u["email"] for u in admin}
    own = {"Authorization": await token_of(client, "hidden@example.com")}
    viewed = await client.get(f"/api/collections/users/records/{hidden['id']}", headers=own)
    assert "hidden@example.com" == viewed.json()["email"]
    assert "password" not in viewed.text and "tokenKey" not in viewed.text


# -- email flows --------------------------------------------------------------------


async def test_verification_flow(
    client: httpx.AsyncClient, su: dict[str, str], app: App, smtp_server: SMTPServer
) -> None:
    """request-verification mails a token; confirming it verifies; unknown emails get no mail."""
    await make_users(client, su)
    await use_smtp(client, su, smtp_server)
    await register(client, "v@example.com")
    url = "/api/collections/users/request-verification"
    unknown = await client.post(url, json={"email": "ghost@example.com"})
    known = await client.post(url, json={"email": "v@example.com"})
    assert (204, 204) == (unknown.status_code, known.status_code)
    mail = await smtp_server.wait_for(lambda m: "v@example.com" in m.to)
    await app.idle()
    assert ["v@example.com"] == [a for m in smtp_server.messages for a in m.to]
    assert "Verify your Acme email" == mail.subject
    token = token_in(mail.html)
    confirm = "/api/collections/users/confirm-verification"
    assert 204 == (await client.post(confirm, json={"token": token})).status_code
    assert True is (await login(client, "v@example.com")).json()["record"]["verified"]
    bad = await client.post(confirm, json={"token": token + "x"})
    assert 400 == bad.status_code
    assert "validation_invalid_token" == bad.json()["data"]["token"]["code"]


async def test_password_reset_flow(
    client: httpx.AsyncClient, su: dict[str, str], smtp_server: SMTPServer
) -> None:
    """A reset token sets a new password once; it signs out old tokens and verifies the email."""
    await make_users(client, su)
    await use_smtp(client, su, smtp_server)
    await register(client, "r@example.com")
    old_token = await token_of(client, "r@example.com")
    response = await client.post(
        "/api/collections/users/request-password-reset", json={"email": "r@example.com"}
    )
    assert 204 == response.status_code
    token = token_in((await smtp_server.wait_for()).html)
    confirm = "/api/collections/users/confirm-password-reset"
    mismatch = await client.post(
        confirm, json={"token": token, "password": "brand-new-1", "passwordConfirm": "other"}
    )
    assert 400 == mismatch.status_code
    body = {"token": token, "password": "brand-new-1", "passwordConfirm": "brand-new-1"}
    assert 204 == (await client.post(confirm, json=body)).status_code
    assert 400 == (await client.post(confirm, json=body)).status_code  # used up
    assert 400 == (await login(client, "r@example.com")).status_code
    signed = await login(client, "r@example.com", "brand-new-1")
    assert True is signed.json()["record"]["verified"]
    stale = await client.post(
        "/api/collections/users/auth-refresh", headers={"Authorization": old_token}
    )
    assert 401 == stale.status_code


async def test_email_change_flow(
    client: httpx.AsyncClient, su: dict[str, str], smtp_server: SMTPServer
) -> None:
    """request-email-change mails the new address; confirming with the password applies it."""
    await make_users(client, su)
    await use_smtp(client, su, smtp_server)
    await register(client, "before@example.com")
    await register(client, "taken@example.com")
    auth = {"Authorization": await token_of(client, "before@example.com")}
    url = "/api/collections/users/request-email-change"
    assert 401 == (await client.post(url, json={"newEmail": "after@example.com"})).status_code
    taken = await client.post(url, json={"newEmail": "taken@example.com"}, headers=auth)
    assert 400 == taken.status_code
    ok = await client.post(url, json={"newEmail": "after@example.com"}, headers=auth)
    assert 204 == ok.status_code
    mail = await smtp_server.wait_for()
    assert ["after@example.com"] == mail.to
    token = token_in(mail.html)
    confirm = "/api/collections/users/confirm-email-change"
    wrong = await client.post(confirm, json={"token": token, "password": "wrong-password"})
    assert 400 == wrong.status_code
    done = await client.post(confirm, json={"token": token, "password": PASSWORD})
    assert 204 == done.status_code, done.text
    signed = await login(client, "after@example.com")
    assert (200, True) == (signed.status_code, signed.json()["record"]["verified"])
    assert 400 == (await login(client, "before@example.com")).status_code


# -- OTP and MFA --------------------------------------------------------------------


async def otp_code(server: SMTPServer, address: str) -> str:
    mail = await server.wait_for(lambda m: address in m.to)
    server.clear()
    match = re.search(r"\b(\d{8})\b", mail.text)
    assert match is not None, mail.text
    return match.group(1)


async def test_otp_flow(
    client: httpx.AsyncClient, su: dict[str, str], app: App, smtp_server: SMTPServer
) -> None:
    """An emailed OTP signs in once and verifies the email; unknown emails look the same."""
    await make_users(client, su, otp={"enabled": True})
    await use_smtp(client, su, smtp_server)
    await register(client, "o@example.com")
    url = "/api/collections/users/request-otp"
    ghost = await client.post(url, json={"email": "ghost@example.com"})
    real = await client.post(url, json={"email": "o@example.com"})
    assert (200, 200) == (ghost.status_code, real.status_code)
    assert {"otpId"} == set(ghost.json()) == set(real.json())
    code = await otp_code(smtp_server, "o@example.com")
    await app.idle()
    assert [] == smtp_server.messages  # nothing was sent to the unknown address
    otp_login = "/api/collections/users/auth-with-otp"
    body = {"otpId": real.json()["otpId"], "password": code}
    signed = await client.post(otp_login, json=body)
    assert 200 == signed.status_code, signed.text
    assert True is signed.json()["record"]["verified"]
    assert 400 == (await client.post(otp_login, json=body)).status_code  # used once
    ghost_login = await client.post(
        otp_login, json={"otpId": ghost.json()["otpId"], "password": code}
    )
    assert 400 == ghost_login.status_code


async def test_otp_attempt_limit_and_expiry(
    client: httpx.AsyncClient, su: dict[str, str], app: App, smtp_server: SMTPServer
) -> None:
    """Five wrong codes burn an OTP; an expired OTP is refused even with the right code."""
    await make_users(client, su, otp={"enabled": True})
    await use_smtp(client, su, smtp_server)
    await register(client, "o@example.com")
    url = "/api/collections/users/request-otp"
    otp_login = "/api/collections/users/auth-with-otp"
    first = (await client.post(url, json={"email": "o@example.com"})).json()["otpId"]
    code = await otp_code(smtp_server, "o@example.com")
    wrong = "0" * 8 if code != "0" * 8 else "1" * 8
    for _ in range(5):
        response = await client.post(otp_login, json={"otpId": first, "password": wrong})
        assert 400 == response.status_code
    burnt = await client.post(otp_login, json={"otpId": first, "password": code})
    assert 400 == burnt.status_code
    second = (await client.post(url, json={"email": "o@example.com"})).json()["otpId"]
    code = await otp_code(smtp_server, "o@example.com")
    await app.db.execute(
        "UPDATE _otps SET created = ? WHERE id = ?", ("2020-01-01 00:00:00.000Z", second)
    )
    expired = await client.post(otp_login, json={"otpId": second, "password": code})
    assert 400 == expired.status_code


async def test_mfa_password_then_otp(
    client: httpx.AsyncClient, su: dict[str, str], smtp_server: SMTPServer
) -> None:
    """With MFA on, a password gives an mfaId (401) and an OTP with it completes sign-in."""
    await make_users(client, su, otp={"enabled": True}, mfa={"enabled": True})
    await use_smtp(client, su, smtp_server)
    await register(client, "f@example.com")
    first = await login(client, "f@example.com")
    assert 401 == first.status_code
    mfa_id = first.json()["mfaId"]
    again = await client.post(
        "/api/collections/users/auth-with-password",
        json={"identity": "f@example.com", "password": PASSWORD, "mfaId": mfa_id},
    )
    assert 400 == again.status_code  # the same method twice is no second factor
    otp_id = (
        await client.post("/api/collections/users/request-otp", json={"email": "f@example.com"})
    ).json()["otpId"]
    code = await otp_code(smtp_server, "f@example.com")
    done = await client.post(
        "/api/collections/users/auth-with-otp",
        json={"otpId": otp_id, "password": code, "mfaId": mfa_id},
    )
    assert 200 == done.status_code, done.text
    assert done.json()["token"]


# -- methods and impersonation ------------------------------------------------------


async def test_auth_methods(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """auth-methods lists what is enabled; base collections have none (404)."""
    await make_users(client, su, otp={"enabled": True, "duration": 300})
    methods = (await client.get("/api/collections/users/auth-methods")).json()
    assert {"enabled": True, "identityFields": ["email", "username"]} == methods["password"]
    assert {"enabled": True, "duration": 300} == methods["otp"]
    assert {"enabled": False, "duration": 0} == methods["mfa"]
    assert {"enabled": False, "providers": []} == methods["oauth2"]
    await client.post("/api/collections", json={"name": "notes"}, headers=su)
    assert 404 == (await client.get("/api/collections/notes/auth-methods")).status_code


async def test_impersonate(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Superusers impersonate any record with a non-refreshable token; others cannot."""
    await make_users(client, su)
    target = await register(client, "t@example.com")
    url = f"/api/collections/users/impersonate/{target['id']}"
    as_user = {"Authorization": await token_of(client, "t@example.com")}
    assert 403 == (await client.post(url, headers=as_user)).status_code
    assert (
        404
        == (await client.post("/api/collections/users/impersonate/missing", headers=su)).status_code
    )
    response = await client.post(url, json={"duration": 60}, headers=su)
    assert 200 == response.status_code, response.text
    token = response.json()["token"]
    view = await client.get(
        f"/api/collections/users/records/{target['id']}", headers={"Authorization": token}
    )
    assert "t@example.com" == view.json()["email"]  # acting as the owner
    refresh = await client.post(
        "/api/collections/users/auth-refresh", headers={"Authorization": token}
    )
    assert 403 == refresh.status_code


async def test_templates_are_editable(
    client: httpx.AsyncClient, su: dict[str, str], smtp_server: SMTPServer
) -> None:
    """A collection's own template and the sender settings shape the mail; values are escaped."""
    template = {
        "subject": "Welcome to {APP_NAME}",
        "body": "<p>Hi {RECORD:username}, open {APP_URL}/verify/{TOKEN}</p>",
    }
    await make_users(client, su, verificationTemplate=template)
    await use_smtp(client, su, smtp_server)
    meta = {"appName": "Shop", "senderName": "Shop Team", "senderAddress": "team@shop.test"}
    await client.patch("/api/settings", json={"meta": meta}, headers=su)
    await register(client, "t@example.com", username="<b>tom</b>")
    await client.post(
        "/api/collections/users/request-verification", json={"email": "t@example.com"}
    )
    mail = await smtp_server.wait_for()
    assert "Welcome to Shop" == mail.subject
    assert "Hi &lt;b&gt;tom&lt;/b&gt;, open http://localhost:8090/verify/" in mail.html
    assert "team@shop.test" == mail.envelope_from
    assert "Shop Team" in str(mail.message["From"])


async def test_deleting_a_record_deletes_its_auth_rows(
    client: httpx.AsyncClient, su: dict[str, str], app: App
) -> None:
    """Deleting an auth record (or its collection) deletes its OTPs, MFA sessions and API keys."""
    await make_users(client, su, otp={"enabled": True}, mfa={"enabled": True}, apiKeyRule="")
    record = await register(client, "gone@example.com")
    await register(client, "kept@example.com")
    for email in ("gone@example.com", "kept@example.com"):
        await client.post("/api/collections/users/request-otp", json={"email": email})
        assert 401 == (await login(client, email)).status_code  # leaves an _mfas row

    async def count(table: str) -> int:
        row = await app.db.fetch_one(f'SELECT COUNT(*) FROM "{table}"')
        assert row is not None
        return int(row[0])

    assert (2, 2) == (await count("_otps"), await count("_mfas"))
    deleted = await client.delete(f"/api/collections/users/records/{record['id']}", headers=su)
    assert 204 == deleted.status_code
    assert (1, 1) == (await count("_otps"), await count("_mfas"))
    assert 204 == (await client.delete("/api/collections/users", headers=su)).status_code
    assert (0, 0) == (await count("_otps"), await count("_mfas"))
