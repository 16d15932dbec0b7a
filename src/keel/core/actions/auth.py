"""Authentication use cases: who a token is, and signing in with a password.

Every sign-in method ends in :func:`finish_auth`, which checks the
collection's ``authRule``, runs the MFA step when it applies, and issues the
auth token. Tokens are described in :mod:`keel.core.tokens`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keel.core.actions.api_keys import API_KEY_PREFIX, authenticate_api_key
from keel.core.actions.records import create_record, delete_record, find_record
from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import (
    BadRequestError,
    FieldError,
    ForbiddenError,
    MFARequiredError,
    NotFoundError,
    UnauthorizedError,
    ValidationError,
)
from keel.core.fields.date import parse_datetime
from keel.core.record import Record, from_row, select_sql
from keel.core.request import ANONYMOUS, SYSTEM_INFO, Auth, RequestInfo
from keel.core.rule import ALL_ROWS, compile_expression, rule_filter
from keel.core.tokens import InvalidTokenError, issue_auth_token, verify_token
from keel.query.dialect import dialect_of

AUTH_FAILED = "Failed to authenticate."


async def authenticate(app: App, token: str) -> Auth:
    """The caller a token or API key identifies; anonymous when it is invalid.

    As in PocketBase, an invalid token does not fail the request by itself: the
    caller is a guest, and endpoints needing auth answer 401 (or rules hide).
    """
    if not token:
        return ANONYMOUS
    if token.startswith(API_KEY_PREFIX):
        return await authenticate_api_key(app, token)
    try:
        coll, record, claims = await verify_token(app.db, app.find_collection, token, "auth")
    except InvalidTokenError:
        return ANONYMOUS
    return Auth(record=record, collection=coll, refreshable=claims.get("refreshable") is True)


def require_auth_collection(app: App, name: str) -> Collection:
    """The auth collection named in the URL.

    Raises:
        NotFoundError: no such collection, or it is not an auth collection.
    """
    coll = app.collection(name)
    if not coll.is_auth:
        raise NotFoundError("Missing or invalid auth collection context.")
    return coll


def required_strings(body: Any, *keys: str) -> dict[str, str]:
    """The non-empty string values of ``keys`` in a JSON object body.

    Raises:
        ValidationError: a key is missing, blank or not a string.
    """
    body = body if isinstance(body, dict) else {}
    errors: dict[str, Any] = {}
    for key in keys:
        value = body.get(key)
        if not isinstance(value, str) or value == "":
            errors[key] = FieldError("validation_required", "Cannot be blank.")
    if errors:
        raise ValidationError("An error occurred while validating the submitted data.", errors)
    return {key: body[key] for key in keys}


async def find_by_email(app: App, coll: Collection, email: str) -> Record | None:
    """The record of ``coll`` with this email (case-insensitive), if any."""
    row = await app.db.fetch_one(
        f"{select_sql(dialect_of(app.db), coll)} WHERE LOWER(email) = LOWER(?)", (email,)
    )
    return from_row(coll, row) if row else None


async def auth_with_password(
    app: App, coll: Collection, body: Any, info: RequestInfo
) -> tuple[str, Record]:
    """Check an identity and password; return an auth token and the record.

    The identity is matched against the collection's ``identityFields`` (or the
    one named by ``identityField``): email case-insensitively, others exactly.

    Raises:
        ValidationError: missing identity or password.
        BadRequestError: wrong credentials (one message for every failure, so
            the answer does not tell whether the account exists).
        ForbiddenError: password sign-in disabled, or ``authRule`` refuses.
        MFARequiredError: a second factor is needed (401 with ``mfaId``).
    """
    password_auth = coll.options.get("passwordAuth") or {}
    if not password_auth.get("enabled"):
        raise ForbiddenError("The collection is not configured to allow password authentication.")
    values = required_strings(body, "identity", "password")
    identity, password = values["identity"], values["password"]
    fields = list(password_auth.get("identityFields") or [])
    chosen = body.get("identityField") if isinstance(body, dict) else None
    if chosen:
        if chosen not in fields:
            raise ValidationError(
                AUTH_FAILED,
                {"identityField": FieldError("validation_in_invalid", "Must be a valid value.")},
            )
        fields = [chosen]
    record = None
    for name in fields:
        fld = coll.field(name)
        if fld is None:
            continue
        if fld.type == "email":
            if "@" not in identity:
                continue
            record = await find_by_email(app, coll, identity)
        else:
            row = await app.db.fetch_one(
                f"{select_sql(app.dialect, coll)} WHERE {app.dialect.quote(fld.name)} = ?",
                (identity,),
            )
            record = from_row(coll, row) if row else None
        if record is not None:
            break
    passwords = app.passwords
    stored = str(record.data.get("password", "")) if record else ""
    if record is None:
        await passwords.hash(password)  # same work for unknown identities: no timing oracle
        raise BadRequestError(AUTH_FAILED)
    if not await passwords.verify(password, stored):
        raise BadRequestError(AUTH_FAILED)
    if passwords.needs_rehash(stored):
        await app.db.execute(
            f"UPDATE {app.dialect.quote(coll.name)} SET password = ? WHERE id = ?",
            (await passwords.hash(password), record.id),
        )
    mfa_id = body.get("mfaId") if isinstance(body, dict) else None
    return await finish_auth(app, coll, record, info, "password", mfa_id)


async def finish_auth(
    app: App,
    coll: Collection,
    record: Record,
    info: RequestInfo,
    method: str,
    mfa_id: Any = None,
) -> tuple[str, Record]:
    """The last step of every sign-in: ``authRule``, MFA, then the token.

    Raises:
        ForbiddenError: ``authRule`` is null or does not match the record.
        MFARequiredError: MFA applies and this was the first factor.
        BadRequestError: an invalid or expired ``mfaId``, or the same method twice.
    """
    await check_auth_rule(app, coll, record, info)
    if await _mfa_applies(app, coll, record, info):
        if not mfa_id:
            created = await create_record(
                app,
                app.collection("_mfas"),
                {"collectionRef": coll.id, "recordRef": record.id, "method": method},
                SYSTEM_INFO,
            )
            raise MFARequiredError(created.id)
        await _complete_mfa(app, coll, record, method, str(mfa_id))
    return issue_auth_token(coll, record), record


async def check_auth_rule(app: App, coll: Collection, record: Record, info: RequestInfo) -> None:
    """Raise ForbiddenError unless ``record`` may authenticate under ``authRule``."""
    rule = coll.options.get("authRule")
    if rule is None:
        raise ForbiddenError("The collection is not allowed to authenticate.")
    if rule.strip() == "":
        return
    as_record = RequestInfo(
        auth=Auth(record=record, collection=coll),
        method=info.method,
        query=info.query,
        headers=info.headers,
        body=info.body,
        context=info.context,
    )
    condition = rule_filter(app, coll, "authRule", as_record)
    if await find_record(app.db, coll, record.id, condition) is None:
        raise ForbiddenError(
            "The request doesn't satisfy the collection requirements to authenticate."
        )


async def _mfa_applies(app: App, coll: Collection, record: Record, info: RequestInfo) -> bool:
    mfa = coll.options.get("mfa") or {}
    if not mfa.get("enabled"):
        return False
    rule = str(mfa.get("rule") or "")
    if rule.strip() == "":
        return True
    as_record = RequestInfo(auth=Auth(record=record, collection=coll), context=info.context)
    condition = compile_expression(app, coll, rule, as_record, app.dialect, allow_hidden=True)
    return await find_record(app.db, coll, record.id, condition) is not None


async def _complete_mfa(
    app: App, coll: Collection, record: Record, method: str, mfa_id: str
) -> None:
    mfas = app.collection("_mfas")
    pending = await find_record(app.db, mfas, mfa_id, ALL_ROWS)
    invalid = "Invalid or expired MFA session."
    if (
        pending is None
        or pending.data["collectionRef"] != coll.id
        or pending.data["recordRef"] != record.id
    ):
        raise BadRequestError(invalid)
    duration = int((coll.options.get("mfa") or {}).get("duration", 1800))
    if age_seconds(str(pending.data["created"])) > duration:
        await delete_record(app, mfas, pending.id, SYSTEM_INFO)
        raise BadRequestError(invalid)
    if pending.data["method"] == method:
        raise BadRequestError("The MFA second factor must be a different auth method.")
    try:
        await delete_record(app, mfas, pending.id, SYSTEM_INFO)
    except NotFoundError:
        raise BadRequestError(invalid) from None  # a concurrent request used it first


def age_seconds(stamp: str) -> float:
    """Seconds since a stored ``YYYY-MM-DD HH:MM:SS.mmmZ`` timestamp."""
    try:
        when = parse_datetime(stamp)
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - when).total_seconds()


async def refresh(app: App, coll: Collection, info: RequestInfo) -> tuple[str, Record]:
    """A new auth token for the caller, who must hold a refreshable one of ``coll``.

    Raises:
        UnauthorizedError: no valid auth of this collection.
        ForbiddenError: an API key, or ``authRule`` no longer matches.
    """
    auth = info.auth
    if auth.record is None or auth.collection is None or auth.collection.id != coll.id:
        raise UnauthorizedError()
    if auth.api_key:
        raise ForbiddenError("API keys cannot be refreshed into tokens.")
    if not auth.refreshable:
        raise ForbiddenError("The current auth token is not refreshable.")
    await check_auth_rule(app, coll, auth.record, info)
    return issue_auth_token(coll, auth.record), auth.record


async def impersonate(
    app: App, coll: Collection, record_id: str, body: Any, info: RequestInfo
) -> tuple[str, Record]:
    """A non-refreshable token for any record, for superusers.

    Raises:
        ForbiddenError: the caller is no (unrestricted) superuser.
        NotFoundError: no such record.
        ValidationError: a negative or non-integer ``duration``.
    """
    if not info.auth.is_superuser or not info.auth.unrestricted:
        raise ForbiddenError("Only superusers can perform this action.")
    body = body if isinstance(body, dict) else {}
    duration = body.get("duration", 0)
    if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
        raise ValidationError(
            "An error occurred while validating the submitted data.",
            {"duration": FieldError("validation_min_greater_equal_than_required", "Invalid.")},
        )
    record = await find_record(app.db, coll, record_id, ALL_ROWS)
    if record is None:
        raise NotFoundError()
    return issue_auth_token(coll, record, duration, refreshable=False), record


def auth_methods(coll: Collection) -> dict[str, Any]:
    """What ``GET …/auth-methods`` shows: the enabled sign-in methods.

    OAuth2 providers carry a fresh ``state`` and PKCE pair (see
    :mod:`keel.core.actions.oauth2`).
    """
    from keel.core.actions.oauth2 import provider_infos

    options = coll.options
    password = options.get("passwordAuth") or {}
    oauth2 = options.get("oauth2") or {}
    mfa = options.get("mfa") or {}
    otp = options.get("otp") or {}
    providers = provider_infos(coll) if oauth2.get("enabled") else []
    return {
        "password": {
            "enabled": bool(password.get("enabled")),
            "identityFields": list(password.get("identityFields") or []),
        },
        "oauth2": {"enabled": bool(oauth2.get("enabled")), "providers": providers},
        "mfa": {
            "enabled": bool(mfa.get("enabled")),
            "duration": int(mfa.get("duration", 0)) if mfa.get("enabled") else 0,
        },
        "otp": {
            "enabled": bool(otp.get("enabled")),
            "duration": int(otp.get("duration", 0)) if otp.get("enabled") else 0,
        },
    }
