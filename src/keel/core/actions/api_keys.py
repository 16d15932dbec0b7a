"""API keys: long-lived credentials that act as their creator, narrowed by scopes.

A key is ``keel_<id>_<secret>``. Only a SHA-256 hash of the secret is stored
(in ``_apiKeys``); the whole key is shown once, when it is minted. A key acts
as the record that minted it, so rules see that record as ``@request.auth``
and it can never do more than its creator; its scopes
(``<collection>:<action>``, ``*:<action>``, or ``*`` for everything) only
narrow that. Deleting the key row revokes it at the next request, on every
worker, because every request reads the row.

Superusers may always mint keys; records of an auth collection may when its
``apiKeyRule`` matches them (``null``: never, ``""``: any of its records).
Keys cannot mint keys, be refreshed into tokens, or manage the schema unless
scoped ``*``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

from keel.core.actions.records import create_record, delete_record, find_record
from keel.core.app import App
from keel.core.errors import FieldError, ForbiddenError, UnauthorizedError, ValidationError
from keel.core.fields.date import normalize_date, parse_datetime
from keel.core.record import Record, from_row, select_sql
from keel.core.request import ACTIONS, ANONYMOUS, SYSTEM_INFO, Auth, RequestInfo
from keel.core.rule import rule_filter

API_KEY_PREFIX = "keel_"
ID_LENGTH = 15
MAX_SCOPES = 200
INVALID = "An error occurred while validating the submitted data."


def _hash(secret: str) -> str:
    # The secret is 256 random bits: a fast hash is enough (no guessing attack).
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(key: str) -> tuple[str, str] | None:
    rest = key[len(API_KEY_PREFIX) :]
    if len(rest) < ID_LENGTH + 2 or rest[ID_LENGTH] != "_":
        return None
    return rest[:ID_LENGTH], rest[ID_LENGTH + 1 :]


async def authenticate_api_key(app: App, key: str) -> Auth:
    """The caller an API key identifies; anonymous when unknown, expired or revoked."""
    parts = _split(key)
    keys = app.find_collection("_apiKeys")
    if parts is None or keys is None:
        return ANONYMOUS
    key_id, secret = parts
    row = await app.db.fetch_point(f"{select_sql(app.dialect, keys)} WHERE id = ?", (key_id,))
    if row is None:
        return ANONYMOUS
    entry = from_row(keys, row)
    if not hmac.compare_digest(str(entry.data["hash"]), _hash(secret)):
        return ANONYMOUS
    expires = str(entry.data.get("expires") or "")
    if expires and parse_datetime(expires) <= datetime.now(UTC):
        return ANONYMOUS
    coll = app.find_collection(str(entry.data["collectionRef"]))
    if coll is None or not coll.is_auth:
        return ANONYMOUS
    if coll.options.get("authRule") is None:
        return ANONYMOUS  # the collection may no longer sign in at all
    if coll.name != "_superusers" and coll.options.get("apiKeyRule") is None:
        return ANONYMOUS  # keys of this collection were switched off
    creator = await app.db.fetch_point(
        f"{select_sql(app.dialect, coll)} WHERE id = ?", (entry.data["recordRef"],)
    )
    if creator is None:
        return ANONYMOUS
    record = from_row(coll, creator)
    rule = str(coll.options.get("authRule") or "")
    if rule.strip():
        # A record the collection no longer lets sign in (e.g. banned) loses
        # its keys too, at once.
        condition = rule_filter(app, coll, "authRule", RequestInfo(auth=Auth(record, coll)))
        if await find_record(app.db, coll, record.id, condition) is None:
            return ANONYMOUS
    scopes = entry.data.get("scopes") or []
    return Auth(
        record=record,
        collection=coll,
        scopes=frozenset(str(s) for s in scopes),
        api_key=entry.id,
    )


def _scopes(app: App, raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_SCOPES:
        raise ValidationError(
            INVALID,
            {"scopes": FieldError("validation_required", "Give a non-empty list of scopes.")},
        )
    out: list[str] = []
    for i, scope in enumerate(raw):
        canonical = _canonical_scope(app, scope)
        if canonical is None:
            raise ValidationError(
                INVALID,
                {
                    "scopes": {
                        str(i): FieldError(
                            "validation_invalid_scope",
                            "A scope is '*', or '<collection or *>:<action>' with an action of "
                            + ", ".join(ACTIONS)
                            + ".",
                        )
                    }
                },
            )
        out.append(canonical)
    return out


def _canonical_scope(app: App, scope: Any) -> str | None:
    """``scope`` as :meth:`Auth.allows` matches it, or None when it is invalid.

    Collection names are case-insensitive, but scopes are matched exactly: a
    name is stored as the collection spells it, or ``POSTS:list`` would be
    accepted and grant nothing.
    """
    if not isinstance(scope, str):
        return None
    if scope == "*":
        return scope
    coll_name, _, action = scope.partition(":")
    if action not in ACTIONS:
        return None
    if coll_name == "*":
        return scope
    coll = app.find_collection(coll_name)
    if coll is None:
        return None
    return scope if coll_name == coll.id else f"{coll.name}:{action}"


async def _check_may_mint(app: App, info: RequestInfo) -> None:
    auth = info.auth
    if auth.record is None or auth.collection is None:
        raise UnauthorizedError()
    if auth.api_key:
        raise ForbiddenError("API keys cannot mint API keys.")
    if not auth.refreshable:
        raise ForbiddenError("Impersonation tokens cannot mint API keys.")
    if auth.is_superuser:
        return
    if auth.collection.options.get("apiKeyRule") is None:
        raise ForbiddenError("Only superusers can mint API keys for this collection.")
    condition = rule_filter(app, auth.collection, "apiKeyRule", info)
    if await find_record(app.db, auth.collection, auth.id, condition) is None:
        raise ForbiddenError("The apiKeyRule does not allow this record to mint API keys.")


async def mint_api_key(app: App, body: Any, info: RequestInfo) -> dict[str, Any]:
    """Create a key acting as the caller; the answer holds the key, shown only now.

    Raises:
        UnauthorizedError: nobody is signed in.
        ForbiddenError: the caller may not mint keys.
        ValidationError: missing name, invalid scopes, or an expiry in the past.
    """
    await _check_may_mint(app, info)
    body = body if isinstance(body, dict) else {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(
            INVALID, {"name": FieldError("validation_required", "Cannot be blank.")}
        )
    scopes = _scopes(app, body.get("scopes"))
    try:
        expires = normalize_date(body.get("expires"))
    except FieldError as exc:
        raise ValidationError(INVALID, {"expires": exc}) from exc
    if expires and parse_datetime(expires) <= datetime.now(UTC):
        raise ValidationError(
            INVALID, {"expires": FieldError("validation_date_in_past", "Must be in the future.")}
        )
    secret = secrets.token_urlsafe(32)
    assert info.auth.collection is not None
    record = await create_record(
        app,
        app.collection("_apiKeys"),
        {
            "collectionRef": info.auth.collection.id,
            "recordRef": info.auth.id,
            "name": name.strip(),
            "scopes": scopes,
            "hash": _hash(secret),
            "expires": expires,
        },
        SYSTEM_INFO,
    )
    out = key_json(record)
    out["key"] = f"{API_KEY_PREFIX}{record.id}_{secret}"
    return out


def key_json(record: Record) -> dict[str, Any]:
    """A key's public description (never its hash)."""
    return {
        k: record.data[k]
        for k in ("id", "name", "scopes", "expires", "collectionRef", "recordRef", "created")
    }


async def list_api_keys(app: App, info: RequestInfo) -> list[dict[str, Any]]:
    """The caller's own keys; every key for superusers."""
    if info.auth.record is None:
        raise UnauthorizedError()
    keys = app.collection("_apiKeys")
    sql = select_sql(app.dialect, keys)
    if info.auth.is_superuser and info.auth.unrestricted:
        rows = await app.db.fetch_all(f"{sql} ORDER BY created")
    else:
        assert info.auth.collection is not None
        q = app.dialect.quote  # PostgreSQL folds unquoted camelCase names to lower case
        rows = await app.db.fetch_all(
            f"{sql} WHERE {q('collectionRef')} = ? AND {q('recordRef')} = ? ORDER BY created",
            (info.auth.collection.id, info.auth.id),
        )
    return [key_json(from_row(keys, r)) for r in rows]


async def revoke_api_key(app: App, key_id: str, info: RequestInfo) -> None:
    """Delete a key of the caller's (any key, for superusers).

    Raises:
        UnauthorizedError: nobody is signed in.
        NotFoundError: no such key of the caller's.
    """
    if info.auth.record is None:
        raise UnauthorizedError()
    if info.auth.api_key and not info.auth.unrestricted and key_id != info.auth.api_key:
        raise ForbiddenError("A scoped API key can revoke only itself.")
    keys = app.collection("_apiKeys")
    # The owner rule of _apiKeys (or superuser rights) decides, as for any record.
    await delete_record(app, keys, key_id, RequestInfo(auth=_unscoped(info.auth)))


def _unscoped(auth: Auth) -> Auth:
    """``auth`` without key scopes: revoking a key is not a record operation it scopes."""
    return Auth(record=auth.record, collection=auth.collection, api_key=auth.api_key)
