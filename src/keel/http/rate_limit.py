"""Rate limits: always-on ones for the auth endpoints, and PocketBase's rules.

* The auth endpoints (sign-in, OTP, verification, password reset, email
  change) are limited per client IP and per identity (the email, identity or
  OTP id sent) by :class:`~keel.core.config.Config` ``auth_*_limit``. The
  window moves, so nothing is ever locked for good.
* The ``rateLimits`` settings (off by default, as in PocketBase) apply to every
  API request whose path or ``<collection>:<action>`` matches a rule label;
  the most specific label wins. A rule's audience (``@guest``, ``@auth``)
  goes by valid credentials: an invalid token is a guest's.

A refused request gets 429 with ``Retry-After``. The client IP is the peer's
address, or taken from the ``trustedProxy`` headers only when the peer is one
of the configured trusted proxies.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from keel.core.actions.auth import authenticate
from keel.core.collection import Collection
from keel.core.errors import TooManyRequestsError
from keel.http.context import bearer_token
from keel.http.response import error_response
from keel.security.client_ip import Network, client_ip, parse_networks
from keel.security.rate_limit import MemoryRateLimiter, RateLimiter

_COLLECTION_ACTION = re.compile(
    r"^/api/collections/(?P<c>[^/]+)/(?:(?P<records>records)(?:/(?P<id>[^/]+))?"
    r"|(?P<auth>auth-with-[a-z0-9]+|auth-refresh|request-[a-z-]+|confirm-[a-z-]+|impersonate/.+))$"
)


class Limits:
    """The process's rate limiter and trusted proxy networks."""

    def __init__(self, trusted_proxies: str, limiter: RateLimiter | None = None) -> None:
        self.limiter: RateLimiter = limiter or MemoryRateLimiter()
        self.trusted: list[Network] = parse_networks(
            p.strip() for p in trusted_proxies.split(",") if p.strip()
        )


def _limits(scope_app: Any) -> Limits:
    limits: Limits = scope_app.state.limits
    return limits


def request_ip(request: Request) -> str:
    """The client IP of ``request`` (see the module docstring)."""
    keel = request.app.state.keel
    proxy = keel.settings["trustedProxy"]
    peer = request.client.host if request.client else ""
    return client_ip(
        peer,
        request.headers,
        _limits(request.app).trusted,
        proxy["headers"],
        proxy["useLeftmostIP"],
    )


async def _hit(limits: Limits, key: str, maximum: int, window: int) -> None:
    if maximum <= 0 or window <= 0:
        return
    result = await limits.limiter.hit(key, maximum, window)
    if not result.allowed:
        raise TooManyRequestsError(result.retry_after)


async def guard_auth(request: Request, coll: Collection, identity: str) -> None:
    """Count one auth attempt for the client IP and for ``identity``.

    Raises:
        TooManyRequestsError: either limit is exhausted.
    """
    config = request.app.state.keel.config
    limits = _limits(request.app)
    window = config.auth_window_seconds
    await _hit(limits, f"auth-ip:{coll.id}:{request_ip(request)}", config.auth_ip_limit, window)
    if identity:
        key = f"auth-identity:{coll.id}:{identity.strip().lower()}"
        await _hit(limits, key, config.auth_identity_limit, window)


def _labels(method: str, path: str) -> list[str]:
    """Labels that can match a request, most specific first."""
    labels = [f"{method} {path}"]
    match = _COLLECTION_ACTION.match(path)
    if match:
        coll = match.group("c")
        if match.group("auth"):
            action = "auth"
        elif match.group("id"):
            action = {"GET": "view", "PATCH": "update", "DELETE": "delete"}.get(method, "")
        else:
            action = {"GET": "list", "POST": "create"}.get(method, "")
        if action:
            labels += [f"{coll}:{action}", f"*:{action}"]
    return labels


def _best_rule(rules: list[dict[str, Any]], method: str, path: str, authed: bool) -> Any:
    audience_ok = ("", "@auth") if authed else ("", "@guest")
    candidates = [r for r in rules if r.get("audience", "") in audience_ok]
    for label in _labels(method, path):
        for rule in candidates:
            if rule["label"] == label:
                return rule
    best = None
    for rule in candidates:
        text = rule["label"]
        prefix = text.split(" ", 1)[1] if " " in text else text
        if " " in text and not text.startswith(method + " "):
            continue
        longer = best is None or len(prefix) > len(best[0])
        if prefix.startswith("/") and path.startswith(prefix) and longer:
            best = (prefix, rule)
    return best[1] if best else None


def _canonical_path(request: Request) -> str:
    """The path with its collection named as the schema spells it.

    ``/api/collections/USERS/…`` and ``/api/collections/<id>/…`` reach the same
    collection as ``/api/collections/users/…``, so they must meet the same rules.
    """
    path: str = request.url.path
    match = _COLLECTION_ACTION.match(path)
    if match is None:
        return path
    coll = request.app.state.keel.find_collection(match.group("c"))
    if coll is None:
        return path
    start, end = match.span("c")
    return f"{path[:start]}{coll.name}{path[end:]}"


async def _rule_for(request: Request, rules: list[dict[str, Any]]) -> Any:
    """The rule for ``request``; its audience is who the credentials prove, not a header.

    An invalid token is a guest's, so sending any ``Authorization`` header must
    not dodge ``@guest`` rules. The credentials are checked (one read) only when
    a header is sent and the rule would differ between guests and signed-in callers.
    """
    method, path = request.method, _canonical_path(request)
    as_guest = _best_rule(rules, method, path, authed=False)
    if not request.headers.get("authorization"):
        return as_guest
    as_user = _best_rule(rules, method, path, authed=True)
    if as_user is as_guest:
        return as_guest
    auth = await authenticate(request.app.state.keel, bearer_token(request))
    return as_user if auth.record is not None else as_guest


class RateLimitMiddleware:
    """Applies the ``rateLimits`` settings to every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = scope["app"].state.keel.settings["rateLimits"]
        if settings["enabled"]:
            request = Request(scope)
            ip = request_ip(request)
            if ip not in settings["excludedIPs"]:
                rule = await _rule_for(request, settings["rules"])
                if rule is not None:
                    key = f"rule:{rule['label']}:{rule.get('audience', '')}:{ip}"
                    try:
                        await _hit(_limits(request.app), key, rule["maxRequests"], rule["duration"])
                    except TooManyRequestsError as exc:
                        await error_response(exc)(scope, receive, send)
                        return
        await self.app(scope, receive, send)
