"""Record tokens of every kind PocketBase has: auth, verification, password
reset, email change and file.

A token is a JWT whose signing key is the record's ``tokenKey`` followed by
the collection's secret for that kind. So a token of one kind never verifies
as another, a token of one collection never verifies in another, and renewing
``tokenKey`` (on a password change) invalidates every token of the record.
The ``type`` claim is checked as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keel.core.auth_options import token_settings
from keel.core.collection import Collection
from keel.core.record import Record, from_row, select_sql
from keel.query.dialect import dialect_of
from keel.security import token as jwt_tokens
from keel.storage.db.database import Database

KINDS = ("auth", "verification", "passwordReset", "emailChange", "file")


class InvalidTokenError(Exception):
    """The token is malformed, expired, of another kind, or no longer valid."""


def _key(coll: Collection, record: Record, kind: str) -> str:
    secret, _ = token_settings(coll.options, kind)
    return str(record.data.get("tokenKey", "")) + secret


def issue_token(
    coll: Collection,
    record: Record,
    kind: str,
    claims: dict[str, Any] | None = None,
    duration: int | None = None,
) -> str:
    """A signed token of ``kind`` for ``record``.

    Args:
        claims: extra claims (``email``, ``newEmail``, ``refreshable``…).
        duration: seconds of validity; the collection's setting when omitted.
    """
    _, default_duration = token_settings(coll.options, kind)
    payload: dict[str, Any] = {"id": record.id, "type": kind, "collectionId": coll.id}
    payload.update(claims or {})
    return jwt_tokens.issue(payload, _key(coll, record, kind), duration or default_duration)


def issue_auth_token(
    coll: Collection, record: Record, duration: int | None = None, *, refreshable: bool = True
) -> str:
    """An auth token; impersonation tokens are not ``refreshable``.

    Args:
        duration: seconds of validity; the collection's ``authToken`` setting
            when omitted or 0.
    """
    return issue_token(coll, record, "auth", {"refreshable": refreshable}, duration or None)


async def verify_token(
    db: Database, find: Callable[[str], Collection | None], token: str, kind: str
) -> tuple[Collection, Record, dict[str, Any]]:
    """The collection, record and claims of a valid token of ``kind``.

    Args:
        db: where to read the record.
        find: the App's ``find_collection``.

    Raises:
        InvalidTokenError: anything wrong with the token.
    """
    try:
        claims = jwt_tokens.unverified_claims(token)
    except jwt_tokens.TokenError as exc:
        raise InvalidTokenError(str(exc)) from exc
    if claims.get("type") != kind:
        raise InvalidTokenError("wrong token type")
    coll: Collection | None = find(str(claims.get("collectionId", "")))
    if coll is None or not coll.is_auth:
        raise InvalidTokenError("unknown collection")
    row = await db.fetch_point(
        f"{select_sql(dialect_of(db), coll)} WHERE id = ?", (str(claims.get("id", "")),)
    )
    if row is None:
        raise InvalidTokenError("unknown record")
    record = from_row(coll, row)
    try:
        verified = jwt_tokens.verify(token, _key(coll, record, kind))
    except jwt_tokens.TokenError as exc:
        raise InvalidTokenError(str(exc)) from exc
    return coll, record, verified
