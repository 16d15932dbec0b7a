"""Email-confirmed account changes: verification, password reset, email change.

Each ``request-*`` answers the same whether or not the address exists (no
account enumeration) and mails a single-purpose token; each ``confirm-*``
checks that token. Changing the password or the email renews ``tokenKey``, so
earlier tokens, including the one just used, stop working.
"""

from __future__ import annotations

import secrets
from typing import Any

from keel.core.actions.auth import find_by_email, required_strings
from keel.core.actions.records import update_record
from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import (
    BadRequestError,
    FieldError,
    ForbiddenError,
    UnauthorizedError,
    ValidationError,
)
from keel.core.fields.text import EmailField
from keel.core.mail import send_template
from keel.core.record import Record
from keel.core.request import SYSTEM_INFO, RequestInfo
from keel.core.tokens import InvalidTokenError, issue_token, verify_token
from keel.core.transaction import write_transaction

INVALID_TOKEN = "Invalid or expired token."


def valid_email(body: Any, key: str = "email") -> str:
    value = required_strings(body, key)[key]
    try:
        EmailField(key).validate(value)
    except FieldError as exc:
        raise ValidationError(
            "An error occurred while validating the submitted data.", {key: exc}
        ) from exc
    return value


async def _token_record(app: App, coll: Collection, body: Any, kind: str) -> Any:
    token = required_strings(body, "token")["token"]
    try:
        token_coll, record, claims = await verify_token(app.db, app.find_collection, token, kind)
    except InvalidTokenError as exc:
        raise ValidationError(
            INVALID_TOKEN, {"token": FieldError("validation_invalid_token", INVALID_TOKEN)}
        ) from exc
    if token_coll.id != coll.id or claims.get("email") != record.data.get("email"):
        # The email changed since the token was issued: it was meant for someone else.
        raise ValidationError(
            INVALID_TOKEN, {"token": FieldError("validation_invalid_token", INVALID_TOKEN)}
        )
    return record, claims


async def claim_account(
    app: App,
    coll: Collection,
    record: Record,
    *,
    reset_password: bool,
    extra: dict[str, Any] | None = None,
) -> Record:
    """Mark ``record`` verified after a proof of owning its address.

    Whoever registered the address before that proof may not be its owner:
    the record's OAuth2 links are dropped and its tokens renewed, and with
    ``reset_password`` its password is replaced by an unknown one (the owner
    sets one through a password reset), so a pre-registered account cannot
    be kept by the one who pre-registered it.
    """
    body: dict[str, Any] = {"verified": True, **(extra or {})}
    if reset_password and "password" not in body:
        fresh = secrets.token_urlsafe(32)
        body.update(password=fresh, passwordConfirm=fresh)
    q = app.dialect.quote
    async with write_transaction(app) as tx:
        if not record.data.get("verified"):
            await tx.execute(
                f"DELETE FROM {q('_externalAuths')} WHERE {q('collectionRef')} = ? "
                f"AND {q('recordRef')} = ?",
                (coll.id, record.id),
            )
        return await update_record(app, coll, record.id, body, SYSTEM_INFO, tx, renew_key=True)


async def request_verification(app: App, coll: Collection, body: Any) -> None:
    """Mail a verification link to an unverified record with this email."""
    email = valid_email(body)
    record = await find_by_email(app, coll, email)
    if record is None or record.data.get("verified"):
        return
    address = str(record.data["email"])
    token = issue_token(coll, record, "verification", {"email": address})
    send_template(app, coll, record, "verificationTemplate", address, {"TOKEN": token})


async def confirm_verification(app: App, coll: Collection, body: Any) -> None:
    """Mark the record of a verification token verified."""
    record, _ = await _token_record(app, coll, body, "verification")
    if not record.data.get("verified"):
        await claim_account(app, coll, record, reset_password=False)


async def request_password_reset(app: App, coll: Collection, body: Any) -> None:
    """Mail a password reset link to the record with this email, if any."""
    email = valid_email(body)
    record = await find_by_email(app, coll, email)
    if record is None:
        return
    address = str(record.data["email"])
    token = issue_token(coll, record, "passwordReset", {"email": address})
    send_template(app, coll, record, "resetPasswordTemplate", address, {"TOKEN": token})


async def confirm_password_reset(app: App, coll: Collection, body: Any) -> None:
    """Set a new password from a reset token; the email is then verified too.

    Raises:
        ValidationError: invalid token, or the new password fails validation.
    """
    record, _ = await _token_record(app, coll, body, "passwordReset")
    values = required_strings(body, "password", "passwordConfirm")
    await claim_account(
        app,
        coll,
        record,
        reset_password=True,
        extra={"password": values["password"], "passwordConfirm": values["passwordConfirm"]},
    )


async def request_email_change(app: App, coll: Collection, body: Any, info: RequestInfo) -> None:
    """Mail a confirmation link to the new address of the signed-in record.

    Raises:
        UnauthorizedError: no record of this collection is signed in.
        ValidationError: the new email is invalid or already taken.
    """
    auth = info.auth
    if auth.record is None or auth.collection is None or auth.collection.id != coll.id:
        raise UnauthorizedError()
    if not auth.unrestricted:
        raise ForbiddenError("Scoped API keys cannot change the account's email.")
    new_email = valid_email(body, "newEmail")
    if await find_by_email(app, coll, new_email) is not None:
        raise ValidationError(
            "An error occurred while validating the submitted data.",
            {"newEmail": FieldError("validation_invalid_new_email", "Invalid new email address.")},
        )
    record = auth.record
    token = issue_token(
        coll, record, "emailChange", {"email": record.data["email"], "newEmail": new_email}
    )
    send_template(app, coll, record, "confirmEmailChangeTemplate", new_email, {"TOKEN": token})


async def confirm_email_change(app: App, coll: Collection, body: Any) -> None:
    """Apply an email change after checking the token and the current password.

    The new address is verified (the mail reached it).
    """
    record, claims = await _token_record(app, coll, body, "emailChange")
    password = required_strings(body, "password")["password"]
    if not await app.passwords.verify(password, str(record.data.get("password", ""))):
        raise ValidationError(
            "An error occurred while validating the submitted data.",
            {"password": FieldError("validation_invalid_password", "Invalid password.")},
        )
    new_email = str(claims.get("newEmail", ""))
    if not new_email:
        raise BadRequestError(INVALID_TOKEN)
    await update_record(
        app, coll, record.id, {"email": new_email, "verified": True}, SYSTEM_INFO, renew_key=True
    )
