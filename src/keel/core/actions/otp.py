"""One-time passwords by email: ``request-otp`` and ``auth-with-otp``.

An OTP is a row of ``_otps`` holding a hash of the code. It expires after the
collection's ``otp.duration`` and after :data:`MAX_ATTEMPTS` wrong codes, and
is deleted once used. Requesting one for an unknown email answers with an
``otpId`` all the same (no account enumeration).
"""

from __future__ import annotations

import secrets
from typing import Any

from keel.core.actions.auth import (
    age_seconds,
    find_by_email,
    finish_auth,
    required_strings,
)
from keel.core.actions.auth_email import SYSTEM_INFO, valid_email
from keel.core.actions.records import create_record, delete_record, update_record
from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import BadRequestError, ForbiddenError, NotFoundError
from keel.core.fields.text import generate
from keel.core.mail import send_template
from keel.core.record import Record, from_row, select_sql
from keel.core.request import RequestInfo

#: Wrong codes allowed per OTP before it is deleted.
MAX_ATTEMPTS = 5
INVALID_OTP = "Invalid or expired OTP."


def _otp_options(coll: Collection) -> dict[str, Any]:
    otp: dict[str, Any] = coll.options.get("otp") or {}
    if not otp.get("enabled"):
        raise ForbiddenError("The collection is not configured to allow OTP authentication.")
    return otp


async def request_otp(app: App, coll: Collection, body: Any) -> str:
    """Create and mail an OTP for the record with this email; return its id."""
    otp = _otp_options(coll)
    email = valid_email(body)
    record = await find_by_email(app, coll, email)
    if record is None:
        return generate("[a-z0-9]{15}")  # looks like a real id; matches nothing
    code = "".join(secrets.choice("0123456789") for _ in range(int(otp["length"])))
    created = await create_record(
        app,
        app.collection("_otps"),
        {
            "collectionRef": coll.id,
            "recordRef": record.id,
            "password": code,
            "sentTo": record.data["email"],
        },
        SYSTEM_INFO,
    )
    send_template(
        app, coll, record, "otp.emailTemplate", email, {"OTP": code, "OTP_ID": created.id}
    )
    return created.id


async def auth_with_otp(
    app: App, coll: Collection, body: Any, info: RequestInfo
) -> tuple[str, Record]:
    """Sign in with an OTP id and its code.

    Raises:
        BadRequestError: unknown, expired, exhausted or wrong OTP (one message).
    """
    otp = _otp_options(coll)
    values = required_strings(body, "otpId", "password")
    otps = app.collection("_otps")
    row = await app.db.fetch_one(
        f"{select_sql(app.dialect, otps)} WHERE id = ?", (values["otpId"],)
    )
    entry = from_row(otps, row) if row else None
    if entry is None or entry.data["collectionRef"] != coll.id:
        raise BadRequestError(INVALID_OTP)
    if age_seconds(str(entry.data["created"])) > int(otp.get("duration", 180)):
        await delete_record(app, otps, entry.id, SYSTEM_INFO)
        raise BadRequestError(INVALID_OTP)
    if not await app.passwords.verify(values["password"], str(entry.data["password"])):
        attempts = int(entry.data.get("attempts") or 0) + 1
        if attempts >= MAX_ATTEMPTS:
            await delete_record(app, otps, entry.id, SYSTEM_INFO)
        else:
            await update_record(app, otps, entry.id, {"attempts": attempts}, SYSTEM_INFO)
        raise BadRequestError(INVALID_OTP)
    row = await app.db.fetch_one(
        f"{select_sql(app.dialect, coll)} WHERE id = ?", (entry.data["recordRef"],)
    )
    if row is None:
        await delete_record(app, otps, entry.id, SYSTEM_INFO)
        raise BadRequestError(INVALID_OTP)
    record = from_row(coll, row)
    try:
        await delete_record(app, otps, entry.id, SYSTEM_INFO)
    except NotFoundError:
        raise BadRequestError(INVALID_OTP) from None  # a concurrent request used it first
    if not record.data.get("verified") and entry.data.get("sentTo") == record.data.get("email"):
        # The code reached the address: it is verified.
        record = await update_record(app, coll, record.id, {"verified": True}, SYSTEM_INFO)
    mfa_id = body.get("mfaId") if isinstance(body, dict) else None
    return await finish_auth(app, coll, record, info, "otp", mfa_id)
