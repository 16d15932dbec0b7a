"""Rate limits: the always-on auth limits, trusted proxies, and the ``rateLimits`` settings."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from keel.core.app import App
from keel.core.config import Config
from keel.core.settings import DEFAULT_RATE_RULES
from keel.http.app import create_app
from tests.api.people import PASSWORD, make_auth_collection, register, sign_in

IDENTITY_LIMIT = 3
IP_LIMIT = 5
WINDOW = 60
TRUSTED_PEER = "127.0.0.1"  # in Config.trusted_proxies by default
UNTRUSTED_PEER = "203.0.113.9"
SIGN_IN = "/api/collections/users/auth-with-password"
POSTS = "/api/collections/posts/records"


@pytest.fixture
def config(config: Config) -> Config:
    """The test configuration with small auth limits."""
    return dataclasses.replace(
        config,
        auth_identity_limit=IDENTITY_LIMIT,
        auth_ip_limit=IP_LIMIT,
        auth_window_seconds=WINDOW,
    )


@pytest.fixture
def asgi(app: App) -> Starlette:
    """One ASGI app (one set of rate limit counters) for every client of a test."""
    return create_app(app)


async def _connect(asgi: Starlette, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=asgi, client=(peer, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://keel.test")


@pytest.fixture
async def client(asgi: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose peer is a trusted proxy."""
    async with await _connect(asgi, TRUSTED_PEER) as http:
        yield http


@pytest.fixture
async def untrusted(asgi: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose peer is not a trusted proxy."""
    async with await _connect(asgi, UNTRUSTED_PEER) as http:
        yield http


@pytest.fixture
async def users(client: httpx.AsyncClient, su: dict[str, str]) -> dict[str, Any]:
    """``users`` with OTP on and Alice registered; a ``posts`` collection anyone may use."""
    coll = await make_auth_collection(client, su, otp={"enabled": True})
    await register(client, "alice@example.com")
    posts = {"name": "posts", "listRule": "", "viewRule": "", "createRule": ""}
    created = await client.post("/api/collections", json=posts, headers=su)
    assert 200 == created.status_code, created.text
    return coll


async def _sign_in(
    client: httpx.AsyncClient,
    identity: str,
    password: str = "wrong-password",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        SIGN_IN, json={"identity": identity, "password": password}, headers=headers
    )


async def _statuses(
    client: httpx.AsyncClient, identities: list[str], headers: list[dict[str, str]] | None = None
) -> list[int]:
    """The statuses of one wrong-password sign-in per identity (with its headers), in order."""
    sent = headers or [{}] * len(identities)
    return [
        (await _sign_in(client, who, headers=extra)).status_code
        for who, extra in zip(identities, sent, strict=True)
    ]


async def _use_proxy_header(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    response = await client.patch(
        "/api/settings", json={"trustedProxy": {"headers": ["X-Forwarded-For"]}}, headers=su
    )
    assert 200 == response.status_code, response.text


def _assert_too_many(response: httpx.Response) -> None:
    assert 429 == response.status_code, response.text
    assert {"status", "message", "data"} == set(response.json())
    assert (429, "Too Many Requests.") == (response.json()["status"], response.json()["message"])
    assert 1 <= int(response.headers["Retry-After"]) <= WINDOW


# -- the always-on auth limits --------------------------------------------------------


async def test_identity_limit_then_ip_limit(client: httpx.AsyncClient, users: Any) -> None:
    """One identity is refused after its limit; others from the IP until the IP limit."""
    alice = await _statuses(client, ["alice@example.com"] * (IDENTITY_LIMIT + 1))
    # Alice's four attempts used four of the IP's five.
    others = await _statuses(client, ["bob@example.com", "carol@example.com"])
    assert [400] * IDENTITY_LIMIT + [429] == alice
    assert [400, 429] == others


async def test_refusal_has_pocketbase_shape(client: httpx.AsyncClient, users: Any) -> None:
    """A refused sign-in is a PocketBase error body with status 429 and a Retry-After."""
    await _statuses(client, ["alice@example.com"] * IDENTITY_LIMIT)
    _assert_too_many(await _sign_in(client, "alice@example.com"))


async def test_limited_identity_is_refused_even_with_right_password(
    client: httpx.AsyncClient, users: Any
) -> None:
    """Once an identity is limited the right password is refused too, in any letter case."""
    await _statuses(client, ["alice@example.com"] * IDENTITY_LIMIT)
    right = await _sign_in(client, " ALICE@example.com", PASSWORD)
    assert 429 == right.status_code


async def test_limits_are_per_collection(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """Exhausting one collection's limit leaves another collection's sign-in working."""
    await make_auth_collection(client, su)
    await make_auth_collection(client, su, "members")
    await register(client, "alice@example.com", "members")
    await _statuses(client, ["alice@example.com"] * (IDENTITY_LIMIT + 1))
    assert await sign_in(client, "alice@example.com", "members")


@pytest.mark.parametrize(
    ("endpoint", "status"),
    [("request-otp", 200), ("request-password-reset", 204), ("request-verification", 204)],
)
async def test_email_requests_are_limited(
    client: httpx.AsyncClient, users: Any, endpoint: str, status: int
) -> None:
    """Requests that send mail are limited per email like sign-ins."""
    url = f"/api/collections/users/{endpoint}"
    statuses = [
        (await client.post(url, json={"email": "nobody@example.com"})).status_code
        for _ in range(IDENTITY_LIMIT + 1)
    ]
    assert [status] * IDENTITY_LIMIT + [429] == statuses
    _assert_too_many(await client.post(url, json={"email": "NOBODY@example.com"}))


# -- client IP and trusted proxies ----------------------------------------------------


def _people(count: int) -> list[str]:
    return [f"person{i}@example.com" for i in range(count)]


def _forwarded(count: int) -> list[dict[str, str]]:
    return [{"X-Forwarded-For": f"198.51.100.{i + 1}"} for i in range(count)]


async def test_forwarded_for_ignored_from_untrusted_peer(
    client: httpx.AsyncClient,
    untrusted: httpx.AsyncClient,
    su: dict[str, str],
    users: Any,
) -> None:
    """A spoofed X-Forwarded-For from an untrusted peer does not dodge the IP limit."""
    await _use_proxy_header(client, su)
    statuses = await _statuses(untrusted, _people(IP_LIMIT + 1), _forwarded(IP_LIMIT + 1))
    assert [400] * IP_LIMIT + [429] == statuses


async def test_forwarded_for_honoured_from_trusted_proxy(
    client: httpx.AsyncClient, su: dict[str, str], users: Any
) -> None:
    """Behind a trusted proxy each forwarded client address has its own IP limit."""
    await _use_proxy_header(client, su)
    first = [{"X-Forwarded-For": "198.51.100.1"}] * (IP_LIMIT + 1)
    statuses = await _statuses(client, _people(IP_LIMIT + 1), first)
    other = await _sign_in(client, "late@example.com", headers={"X-Forwarded-For": "198.51.100.2"})
    assert [400] * IP_LIMIT + [429] == statuses
    assert 400 == other.status_code


async def test_forwarded_for_ignored_without_proxy_headers_setting(
    client: httpx.AsyncClient, users: Any
) -> None:
    """Without ``trustedProxy.headers`` even a trusted peer's X-Forwarded-For is ignored."""
    statuses = await _statuses(client, _people(IP_LIMIT + 1), _forwarded(IP_LIMIT + 1))
    assert [400] * IP_LIMIT + [429] == statuses


async def test_real_ip_shown_to_superusers(
    client: httpx.AsyncClient, untrusted: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """The health check's realIP is the forwarded address only behind a trusted proxy."""
    await _use_proxy_header(client, su)
    headers = {**su, "X-Forwarded-For": "198.51.100.7"}
    via_proxy = (await client.get("/api/health", headers=headers)).json()["data"]["realIP"]
    direct = (await untrusted.get("/api/health", headers=headers)).json()["data"]["realIP"]
    assert ("198.51.100.7", UNTRUSTED_PEER) == (via_proxy, direct)


# -- the rateLimits settings ----------------------------------------------------------


async def _set_rules(
    client: httpx.AsyncClient, su: dict[str, str], *rules: dict[str, Any], **extra: Any
) -> None:
    body = {"rateLimits": {"enabled": True, "rules": list(rules), **extra}}
    response = await client.patch("/api/settings", json=body, headers=su)
    assert 200 == response.status_code, response.text


def _rule(label: str, max_requests: int, audience: str = "") -> dict[str, Any]:
    return {"label": label, "audience": audience, "duration": WINDOW, "maxRequests": max_requests}


async def _gets(
    client: httpx.AsyncClient, url: str, count: int, headers: dict[str, str] | None = None
) -> list[int]:
    return [(await client.get(url, headers=headers)).status_code for _ in range(count)]


async def test_settings_show_rate_limits(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """The settings show rateLimits: off, with PocketBase's default rules."""
    settings = (await client.get("/api/settings", headers=su)).json()
    expected = {"enabled": False, "rules": DEFAULT_RATE_RULES, "excludedIPs": []}
    assert expected == settings["rateLimits"]


async def test_rules_are_off_by_default(client: httpx.AsyncClient, users: Any) -> None:
    """Without enabling rateLimits, no rule applies."""
    assert [200] * 10 == await _gets(client, POSTS, 10)


async def test_collection_action_rule(
    client: httpx.AsyncClient, su: dict[str, str], users: Any
) -> None:
    """A ``*:list`` rule refuses the third list in its window; other actions pass."""
    await _set_rules(client, su, _rule("*:list", 2))
    shown = (await client.get("/api/settings", headers=su)).json()["rateLimits"]
    assert (True, [_rule("*:list", 2)]) == (shown["enabled"], shown["rules"])
    assert [200, 200] == await _gets(client, POSTS, 2)
    _assert_too_many(await client.get(POSTS))
    created = await client.post(POSTS, json={})
    assert 200 == created.status_code
    assert [200] * 3 == await _gets(client, f"{POSTS}/{created.json()['id']}", 3)


async def test_named_collection_rule(
    client: httpx.AsyncClient, su: dict[str, str], users: Any
) -> None:
    """A ``<collection>:auth`` rule limits that collection's sign-ins."""
    await _set_rules(client, su, _rule("users:auth", 1))
    first = await _sign_in(client, "alice@example.com", PASSWORD)
    second = await _sign_in(client, "alice@example.com", PASSWORD)
    assert (200, 429) == (first.status_code, second.status_code)


async def test_path_prefix_rule(client: httpx.AsyncClient, su: dict[str, str], users: Any) -> None:
    """A ``/api/`` rule counts every API request together."""
    await _set_rules(client, su, _rule("/api/", 3))
    statuses = [
        (await client.get("/api/health")).status_code,
        (await client.get(POSTS)).status_code,
        (await client.get("/api/collections/users/auth-methods")).status_code,
        (await client.get("/api/health")).status_code,
    ]
    assert [200, 200, 200, 429] == statuses


async def test_most_specific_rule_wins(
    client: httpx.AsyncClient, su: dict[str, str], users: Any
) -> None:
    """A longer path prefix wins over ``/api/``, counted apart from it."""
    await _set_rules(client, su, _rule("/api/", 100), _rule("/api/health", 1))
    assert [200, 429] == await _gets(client, "/api/health", 2)
    assert [200, 200] == await _gets(client, POSTS, 2)


async def test_method_rule(client: httpx.AsyncClient, su: dict[str, str], users: Any) -> None:
    """A ``POST <path>`` rule limits only that method."""
    await _set_rules(client, su, _rule(f"POST {POSTS}", 1))
    statuses = [(await client.post(POSTS, json={})).status_code for _ in range(2)]
    assert [200, 429] == statuses
    assert [200, 200] == await _gets(client, POSTS, 2)


async def test_guest_rule_skips_signed_in_callers(
    client: httpx.AsyncClient, su: dict[str, str], users: Any
) -> None:
    """A ``@guest`` rule limits guests only; an ``@auth`` rule signed-in callers only."""
    await _set_rules(client, su, _rule("*:list", 1, "@guest"), _rule("*:view", 1, "@auth"))
    alice = {"Authorization": await sign_in(client, "alice@example.com")}
    assert [200, 429] == await _gets(client, POSTS, 2)
    assert [200, 200, 200] == await _gets(client, POSTS, 3, alice)
    post = (await client.post(POSTS, json={})).json()["id"]
    assert [200, 200] == await _gets(client, f"{POSTS}/{post}", 2)
    assert [200, 429] == await _gets(client, f"{POSTS}/{post}", 2, alice)


@pytest.mark.parametrize("header", ["garbage", "Bearer ", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"])
async def test_invalid_authorization_does_not_dodge_guest_rule(
    client: httpx.AsyncClient, su: dict[str, str], users: Any, header: str
) -> None:
    """A guest sending an invalid Authorization header is still limited as a guest."""
    await _set_rules(client, su, _rule("*:list", 1, "@guest"))
    first = await client.get(POSTS)
    second = await client.get(POSTS, headers={"Authorization": header})
    assert (200, 429) == (first.status_code, second.status_code)


async def test_excluded_ips_are_not_limited(
    client: httpx.AsyncClient, su: dict[str, str], users: Any
) -> None:
    """Requests from an excluded IP skip every rule."""
    await _set_rules(client, su, _rule("*:list", 1), excludedIPs=[TRUSTED_PEER])
    assert [200] * 3 == await _gets(client, POSTS, 3)


async def test_limits_are_per_client_ip(
    client: httpx.AsyncClient, untrusted: httpx.AsyncClient, su: dict[str, str], users: Any
) -> None:
    """Each client IP has its own count under a rule."""
    await _set_rules(client, su, _rule("*:list", 1))
    statuses = [
        (await client.get(POSTS)).status_code,
        (await untrusted.get(POSTS)).status_code,
        (await client.get(POSTS)).status_code,
    ]
    assert [200, 200, 429] == statuses


INVALID_RULES: list[tuple[str, Any]] = [
    ("label not a path or action", {**_rule("*:list", 1), "label": "nonsense"}),
    ("empty label", {**_rule("*:list", 1), "label": ""}),
    ("unknown action", {**_rule("*:list", 1), "label": "*:fly"}),
    ("unknown method", {**_rule("*:list", 1), "label": "FETCH /api/"}),
    ("missing label", {"audience": "", "duration": 1, "maxRequests": 1}),
    ("unknown audience", _rule("*:list", 1, "@admin")),
    ("zero duration", {**_rule("*:list", 1), "duration": 0}),
    ("negative maxRequests", _rule("*:list", -1)),
    ("maxRequests as text", {**_rule("*:list", 1), "maxRequests": "2"}),
    ("boolean duration", {**_rule("*:list", 1), "duration": True}),
    ("unknown key", {**_rule("*:list", 1), "burst": 3}),
    ("not an object", "*:list"),
]


@pytest.mark.parametrize(("name", "rule"), INVALID_RULES, ids=[n for n, _ in INVALID_RULES])
async def test_invalid_rules_are_refused(
    client: httpx.AsyncClient, su: dict[str, str], name: str, rule: Any
) -> None:
    """An invalid rule is refused with 400 and nothing is saved."""
    response = await client.patch(
        "/api/settings", json={"rateLimits": {"enabled": True, "rules": [rule]}}, headers=su
    )
    assert 400 == response.status_code, response.text
    code = response.json()["data"]["rateLimits"]["rules"]["code"]
    assert "validation_invalid_rate_limit_rule" == code
    shown = (await client.get("/api/settings", headers=su)).json()["rateLimits"]
    assert (False, DEFAULT_RATE_RULES) == (shown["enabled"], shown["rules"])


async def test_rules_must_be_a_list(client: httpx.AsyncClient, su: dict[str, str]) -> None:
    """``rules`` that is not a list is refused with 400."""
    response = await client.patch(
        "/api/settings", json={"rateLimits": {"rules": {"label": "/api/"}}}, headers=su
    )
    assert "validation_invalid_value" == response.json()["data"]["rateLimits"]["rules"]["code"]
