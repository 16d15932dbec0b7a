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
from keel.core.actions.auth_email import claim_account, valid_email
from keel.core.actions.records import create_record, find_record
from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import BadRequestError, ForbiddenError
from keel.core.fields.text import generate
from keel.core.mail import send_template
from keel.core.record import Record
from keel.core.request import SYSTEM_INFO, RequestInfo
from keel.core.rule import ALL_ROWS
from keel.core.transaction import write_transaction

#: Wrong codes allowed per OTP before it is deleted.
MAX_ATTEMPTS = 5
INVALID_OTP = "Invalid or expired OTP."


def _otp_options(coll: Collection) -> dict[str, Any]:
    otp: dict[str, Any] = coll.options.get("otp") or {}
    if not otp.get("enabled"):
        raise ForbiddenError("The collection is not configured to allow OTP authentication.")
    return otp


async def request_otp(app: App, coll: Collection, body: Any) -> str:
    """Create and mail an OTP for the record with this email; return its id.

    A new OTP replaces the record's earlier ones and inherits their wrong
    attempts, so asking for fresh codes does not buy more guesses: a record
    gets :data:`MAX_ATTEMPTS` wrong codes per ``otp.duration``, as in
    PocketBase.
    """
    otp = _otp_options(coll)
    email = valid_email(body)
    code = "".join(secrets.choice("0123456789") for _ in range(int(otp["length"])))
    record = await find_by_email(app, coll, email)
    if record is None:
        await app.passwords.hash(code)  # the same work as for a real account: no timing oracle
        return generate("[a-z0-9]{15}")  # looks like a real id; matches nothing
    otps = app.collection("_otps")
    q = app.dialect.quote
    where = f"{q('collectionRef')} = ? AND {q('recordRef')} = ?"
    async with write_transaction(app) as tx:
        rows = await tx.fetch_all(
            f"SELECT {q('attempts')}, {q('created')} FROM {q('_otps')} WHERE {where}",
            (coll.id, record.id),
        )
        window = int(otp.get("duration", 180))
        spent = sum(int(r[0] or 0) for r in rows if age_seconds(str(r[1])) <= window)
        await tx.execute(f"DELETE FROM {q('_otps')} WHERE {where}", (coll.id, record.id))
        created = await create_record(
            app,
            otps,
            {
                "collectionRef": coll.id,
                "recordRef": record.id,
                "password": code,
                "sentTo": record.data["email"],
                "attempts": min(spent, MAX_ATTEMPTS),
            },
            SYSTEM_INFO,
            tx,
        )
    send_template(
        app,
        coll,
        record,
        "otp.emailTemplate",
        str(record.data["email"]),
        {"OTP": code, "OTP_ID": created.id},
    )
    return created.id


async def auth_with_otp(
    app: App, coll: Collection, body: Any, info: RequestInfo
) -> tuple[str, Record]:
    """Sign in with an OTP id and its code.

    Each try first takes one attempt atomically (so parallel guesses cannot
    exceed the limit), and a correct code is consumed by a delete that only
    one request can win.

    Raises:
        BadRequestError: unknown, expired, exhausted or wrong OTP (one message).
    """
    otp = _otp_options(coll)
    values = required_strings(body, "otpId", "password")
    otps = app.collection("_otps")
    q = app.dialect.quote
    entry = await find_record(app.db, otps, values["otpId"], ALL_ROWS)
    if entry is None or entry.data["collectionRef"] != coll.id:
        raise BadRequestError(INVALID_OTP)
    if age_seconds(str(entry.data["created"])) > int(otp.get("duration", 180)):
        await app.db.execute(f"DELETE FROM {q('_otps')} WHERE id = ?", (entry.id,))
        raise BadRequestError(INVALID_OTP)
    taken = await app.db.execute(
        f"UPDATE {q('_otps')} SET {q('attempts')} = {q('attempts')} + 1 "
        f"WHERE id = ? AND {q('attempts')} < ?",
        (entry.id, MAX_ATTEMPTS),
    )
    if taken != 1:
        raise BadRequestError(INVALID_OTP)  # no attempts left
    if not await app.passwords.verify(values["password"], str(entry.data["password"])):
        raise BadRequestError(INVALID_OTP)
    used = await app.db.execute(f"DELETE FROM {q('_otps')} WHERE id = ?", (entry.id,))
    if used != 1:
        raise BadRequestError(INVALID_OTP)  # a concurrent request used it first
    record = await find_record(app.db, coll, str(entry.data["recordRef"]), ALL_ROWS)
    if record is None:
        raise BadRequestError(INVALID_OTP)
    if not record.data.get("verified") and entry.data.get("sentTo") == record.data.get("email"):
        # The code reached the address: whoever holds it owns the account now.
        record = await claim_account(app, coll, record, reset_password=True)
    mfa_id = body.get("mfaId") if isinstance(body, dict) else None
    return await finish_auth(app, coll, record, info, "otp", mfa_id)
