"""Authentication use cases: password login and token verification.

Auth tokens are JWTs signed with the collection's secret plus the record's
``tokenKey``: changing the password (which renews ``tokenKey``) invalidates
every token issued before.
"""

from __future__ import annotations

from typing import Any

from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import BadRequestError, FieldError, ValidationError
from keel.core.record import Record, from_row, select_sql
from keel.core.request import ANONYMOUS, Auth
from keel.query.dialect import dialect_of
from keel.security import token as tokens


def _signing_key(coll: Collection, record: Record) -> str:
    secret = (coll.options.get("authToken") or {}).get("secret", "")
    return str(record.data.get("tokenKey", "")) + str(secret)


def issue_auth_token(coll: Collection, record: Record) -> str:
    """A refreshable auth token for ``record``."""
    duration = int((coll.options.get("authToken") or {}).get("duration", 86400))
    claims = {"id": record.id, "collectionId": coll.id, "type": "auth", "refreshable": True}
    return tokens.issue(claims, _signing_key(coll, record), duration)


async def authenticate(app: App, token: str) -> Auth:
    """The caller a token identifies; anonymous when it is invalid (as PocketBase)."""
    if not token:
        return ANONYMOUS
    try:
        claims = tokens.unverified_claims(token)
    except tokens.TokenError:
        return ANONYMOUS
    coll = app.find_collection(str(claims.get("collectionId", "")))
    if coll is None or not coll.is_auth or claims.get("type") != "auth":
        return ANONYMOUS
    row = await app.db.fetch_point(
        f"{select_sql(dialect_of(app.db), coll)} WHERE id = ?", (str(claims.get("id", "")),)
    )
    if row is None:
        return ANONYMOUS
    record = from_row(coll, row)
    try:
        tokens.verify(token, _signing_key(coll, record))
    except tokens.TokenError:
        return ANONYMOUS
    return Auth(record=record, collection=coll)


async def auth_with_password(app: App, coll: Collection, body: Any) -> tuple[str, Record]:
    """Check an identity (email) and password; return a token and the record.

    Raises:
        ValidationError: missing identity or password.
        BadRequestError: wrong credentials (one message for every failure, so
            the answer does not tell whether the account exists).
    """
    if not coll.is_auth:
        raise BadRequestError("The collection is not an auth collection.")
    body = body if isinstance(body, dict) else {}
    errors: dict[str, Any] = {}
    identity, password = body.get("identity"), body.get("password")
    for key, value in (("identity", identity), ("password", password)):
        if not isinstance(value, str) or value == "":
            errors[key] = FieldError("validation_required", "Cannot be blank.")
    if errors:
        raise ValidationError("An error occurred while validating the submitted data.", errors)
    assert isinstance(identity, str) and isinstance(password, str)
    row = await app.db.fetch_one(
        f"{select_sql(dialect_of(app.db), coll)} WHERE LOWER(email) = LOWER(?)", (identity,)
    )
    record = from_row(coll, row) if row else None
    stored = str(record.data.get("password", "")) if record else ""
    # Hash even for unknown identities so response time does not reveal them.
    passwords = app.passwords
    valid = await passwords.verify(password, stored) if record else False
    if record is None:
        await passwords.hash(password)
    if record is None or not valid:
        raise BadRequestError("Failed to authenticate.")
    if passwords.needs_rehash(stored):
        await app.db.execute(
            f"UPDATE {dialect_of(app.db).quote(coll.name)} SET password = ? WHERE id = ?",
            (await passwords.hash(password), record.id),
        )
    return issue_auth_token(coll, record), record
