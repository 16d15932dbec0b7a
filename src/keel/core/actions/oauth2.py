"""Sign-in with OAuth2 / OpenID Connect (authorization code with PKCE).

Which record an OAuth2 identity signs in to, in order:

1. the record already linked to it (``_externalAuths``);
2. the signed-in record of the request, which gets linked (explicit linking);
3. the record with the same email, only when the provider vouches for the
   email *and* the record is verified. An unverified record is never linked
   automatically: whoever registered it never proved they own the address,
   and linking would hand the account to them (PocketBase's advisories
   GHSA-m9hr-5h2w-7mr4-style takeovers). Its owner signs in and links instead
   (case 2); that upgrade marks it verified and clears its old password;
4. a new record, created under the collection's ``createRule``.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from keel.core.actions.auth import find_by_email, finish_auth, required_strings
from keel.core.actions.auth_email import claim_account
from keel.core.actions.records import create_record, delete_record, find_record
from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import (
    BadRequestError,
    FieldError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from keel.core.record import Record, from_row, select_sql
from keel.core.request import SYSTEM_INFO, RequestInfo
from keel.core.rule import ALL_ROWS
from keel.core.transaction import write_transaction
from keel.security.oauth2 import AuthUser, OAuth2Error, Provider, exchange, start
from keel.storage.db.database import Executor


def provider_infos(coll: Collection) -> list[dict[str, Any]]:
    """The configured providers with a fresh state and PKCE pair each."""
    out = []
    for config in (coll.options.get("oauth2") or {}).get("providers", []):
        provider = Provider.from_config(config)
        begin = start(provider)
        out.append(
            {
                "name": provider.name,
                "displayName": provider.display_name,
                "state": begin.state,
                "authURL": begin.auth_url,
                "codeVerifier": begin.code_verifier,
                "codeChallenge": begin.code_challenge,
                "codeChallengeMethod": "S256" if begin.code_challenge else "",
            }
        )
    return out


def _provider(coll: Collection, name: str) -> Provider:
    oauth2 = coll.options.get("oauth2") or {}
    if not oauth2.get("enabled"):
        raise ForbiddenError("The collection is not configured to allow OAuth2 authentication.")
    for config in oauth2.get("providers", []):
        if config.get("name") == name:
            return Provider.from_config(config)
    raise ValidationError(
        "An error occurred while validating the submitted data.",
        {"provider": FieldError("validation_invalid_provider", "Provider is not enabled.")},
    )


async def auth_with_oauth2(
    app: App, coll: Collection, body: Any, info: RequestInfo
) -> tuple[str, Record, dict[str, Any]]:
    """Exchange the code, find or create the record, and sign it in.

    Returns:
        The token, the record and PocketBase's ``meta`` (profile, tokens, isNew).

    Raises:
        ValidationError: missing values or an unknown provider.
        BadRequestError: the provider refused the code, or the identity cannot
            be linked safely.
        ForbiddenError: OAuth2 disabled, or creation not allowed.
    """
    body = dict(body) if isinstance(body, dict) else {}
    if "redirectURL" not in body and "redirectUrl" in body:
        body["redirectURL"] = body["redirectUrl"]  # the older SDKs' spelling
    values = required_strings(body, "provider", "code", "redirectURL")
    provider = _provider(coll, values["provider"])
    verifier = body.get("codeVerifier") or ""
    if not isinstance(verifier, str):
        verifier = ""
    try:
        user = await exchange(provider, values["code"], verifier, values["redirectURL"])
    except OAuth2Error as exc:
        raise BadRequestError("Failed to fetch OAuth2 token.") from exc
    record, is_new = await _record_for(app, coll, provider, user, body, info)
    meta = {
        "id": user.id,
        "name": user.name,
        "username": user.username,
        "email": user.email,
        "avatarURL": user.avatar_url,
        "accessToken": user.access_token,
        "refreshToken": user.refresh_token,
        "expiry": user.expiry,
        "isNew": is_new,
        "rawUser": user.raw,
    }
    token, record = await finish_auth(app, coll, record, info, "oauth2", body.get("mfaId"))
    return token, record, meta


async def _linked(app: App, coll: Collection, provider: str, user_id: str) -> Record | None:
    links = app.collection("_externalAuths")
    q = app.dialect.quote  # camelCase columns: PostgreSQL folds unquoted names to lowercase
    row = await app.db.fetch_one(
        f"{select_sql(app.dialect, links)} WHERE {q('collectionRef')} = ? "
        f"AND {q('provider')} = ? AND {q('providerId')} = ?",
        (coll.id, provider, user_id),
    )
    if row is None:
        return None
    link = from_row(links, row)
    record = await find_record(app.db, coll, str(link.data["recordRef"]), ALL_ROWS)
    if record is None:
        # The record was deleted and its link left behind: drop the link, or
        # the identity could never sign up again (its providerId is unique).
        with contextlib.suppress(NotFoundError):  # a concurrent sign-in dropped it
            await delete_record(app, links, link.id, SYSTEM_INFO)
        return None
    return record


async def _link(
    app: App,
    coll: Collection,
    record: Record,
    provider: str,
    user_id: str,
    tx: Executor | None = None,
) -> None:
    await create_record(
        app,
        app.collection("_externalAuths"),
        {
            "collectionRef": coll.id,
            "recordRef": record.id,
            "provider": provider,
            "providerId": user_id,
        },
        SYSTEM_INFO,
        tx,
    )


async def _record_for(
    app: App,
    coll: Collection,
    provider: Provider,
    user: AuthUser,
    body: dict[str, Any],
    info: RequestInfo,
) -> tuple[Record, bool]:
    email = user.email if user.email_verified else ""
    linked = await _linked(app, coll, provider.name, user.id)
    if linked is not None:
        return linked, False
    signed_in = info.auth.record
    signed_coll = info.auth.collection
    same_collection = signed_coll is not None and signed_coll.id == coll.id
    if signed_in is not None and same_collection and not info.auth.api_key:
        same_email = bool(email) and email.lower() == str(signed_in.data["email"]).lower()
        if not signed_in.data.get("verified"):
            if not same_email:
                # Linking an identity to an address nobody proved would let
                # whoever pre-registered it keep a way in after the owner
                # claims the account.
                raise BadRequestError(
                    "Verify the account's email before linking another sign-in method."
                )
            # Now proven to own the address: verified, other links dropped, and
            # the password set before that proof no longer opens the account.
            signed_in = await claim_account(app, coll, signed_in, reset_password=True)
        await _link(app, coll, signed_in, provider.name, user.id)
        return signed_in, False
    if email:
        existing = await find_by_email(app, coll, email)
        if existing is not None:
            if not existing.data.get("verified"):
                raise BadRequestError(
                    "An unverified account with this email already exists. Sign in to it "
                    "and link the provider, or verify its email first."
                )
            await _link(app, coll, existing, provider.name, user.id)
            return existing, False
    return await _create(app, coll, provider, user, email, body, info), True


async def _create(
    app: App,
    coll: Collection,
    provider: Provider,
    user: AuthUser,
    email: str,
    body: dict[str, Any],
    info: RequestInfo,
) -> Record:
    create_data = body.get("createData") or {}
    if not isinstance(create_data, dict):
        raise BadRequestError("createData must be an object.")
    data = dict(create_data)
    mapped = (coll.options.get("oauth2") or {}).get("mappedFields") or {}
    for key, value in (
        ("name", user.name),
        ("username", user.username),
        ("avatarURL", user.avatar_url),
        ("id", user.id),
    ):
        target = mapped.get(key)
        fld = coll.field(target) if target else None
        if fld is not None and value and fld.type in ("text", "url", "editor"):
            data.setdefault(fld.name, value)
    password = secrets.token_urlsafe(32)
    data.update(
        email=email,
        password=password,
        passwordConfirm=password,
        verified=bool(email),
    )
    creator = RequestInfo(
        auth=info.auth,
        method=info.method,
        query=info.query,
        headers=info.headers,
        body=data,
        context="oauth2",
    )
    async with write_transaction(app) as tx:
        record = await create_record(app, coll, data, creator, tx, trusted=True)
        await _link(app, coll, record, provider.name, user.id, tx)
    return record
