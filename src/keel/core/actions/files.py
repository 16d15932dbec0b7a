"""Serving record files: who may fetch one, thumbnails, and file tokens.

Files of a non-protected field are public to whoever knows the record id and
the random file name, as in PocketBase. A ``protected`` field's files need a
short-lived file token (``POST /api/files/token``) of a caller who passes the
collection's ``viewRule`` for that record (request context ``protectedFile``).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from typing import Any

from keel.core.actions.records import find_record
from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import ForbiddenError, NotFoundError, UnauthorizedError
from keel.core.fields.file import FileField
from keel.core.files import file_key, find_file, thumb_prefix
from keel.core.record import Record
from keel.core.request import ANONYMOUS, Auth, RequestInfo
from keel.core.rule import rule_filter
from keel.core.tokens import InvalidTokenError, issue_token, verify_token
from keel.storage.files.storage import FileStorageError
from keel.storage.files.thumb import THUMBABLE_TYPES, ImageTooLargeError, make_thumb, parse_thumb

log = logging.getLogger("keel.files")

#: The thumb size PocketBase's admin UI uses; always allowed, as there.
DEFAULT_THUMB = "100x100"
#: Images larger than this are not read into memory for a thumbnail.
MAX_THUMB_SOURCE_BYTES = 64 << 20


def file_token(info: RequestInfo) -> str:
    """A short-lived token for protected files, for the signed-in caller.

    Raises:
        UnauthorizedError: nobody is signed in.
        ForbiddenError: a scoped API key.
    """
    auth = info.auth
    if auth.record is None or auth.collection is None:
        raise UnauthorizedError()
    if not auth.unrestricted:
        raise ForbiddenError("Scoped API keys cannot issue file tokens.")
    return issue_token(auth.collection, auth.record, "file")


async def _file_auth(app: App, token: str) -> Auth:
    if not token:
        return ANONYMOUS
    try:
        coll, record, _ = await verify_token(app.db, app.find_collection, token, "file")
    except InvalidTokenError:
        return ANONYMOUS
    return Auth(record=record, collection=coll)


async def visible_file(
    app: App,
    collection: str,
    record_id: str,
    filename: str,
    token: str,
    headers: dict[str, str],
) -> tuple[Collection, Record, FileField, str]:
    """The file the caller may fetch.

    Raises:
        NotFoundError: no such collection, record or file, or a protected
            file the token does not give access to (404 either way, as in
            PocketBase, so protected names are not confirmed).
    """
    coll = app.find_collection(collection)
    if coll is None:
        raise NotFoundError()
    found = await find_file(app, coll, record_id, filename)
    if found is None:
        raise NotFoundError()
    record, fld = found
    if fld.options["protected"]:
        info = RequestInfo(
            auth=await _file_auth(app, token),
            headers={k.lower(): v for k, v in headers.items()},
            context="protectedFile",
        )
        try:
            rule = rule_filter(app, coll, "viewRule", info)
        except ForbiddenError:
            raise NotFoundError() from None
        if not rule.unrestricted and await find_record(app.db, coll, record.id, rule) is None:
            raise NotFoundError()
    return coll, record, fld, filename


async def thumb_key_for(
    app: App, coll: Collection, record: Record, fld: FileField, filename: str, thumb: str
) -> str:
    """The key to serve: the thumbnail when one applies (made once, then kept).

    A thumb size the field does not list, a file that is no image, or an image
    too large to thumbnail safely gets the original file, as in PocketBase.
    """
    original = file_key(coll, record.id, filename)
    if not thumb:
        return original
    try:
        spec = parse_thumb(thumb)
    except ValueError:
        return original
    allowed = {parse_thumb(t) for t in fld.options["thumbs"]} | {parse_thumb(DEFAULT_THUMB)}
    if spec not in allowed:
        return original
    key = f"{thumb_prefix(coll, record.id, filename)}{thumb}_{filename}"
    try:
        if await app.files.exists(key):
            return key
        stat = await app.files.stat(original)
    except FileStorageError:
        return original
    if stat.content_type not in THUMBABLE_TYPES or stat.size > MAX_THUMB_SOURCE_BYTES:
        return original
    made = await _make(app, original, spec)
    if made is None:
        return original
    data, content_type = made
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as out:
        out.write(data)
        out.seek(0)
        try:
            await app.files.put(key, out, content_type)  # type: ignore[arg-type]
        except FileStorageError:
            log.exception("storing thumbnail %s failed", key)
            return original
    return key


async def _make(app: App, key: str, spec: Any) -> tuple[bytes, str] | None:
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as source:
        try:
            async for chunk in app.files.read(key):
                source.write(chunk)
        except FileStorageError:
            return None
        source.seek(0)
        try:
            return await asyncio.to_thread(make_thumb, source, spec)  # type: ignore[arg-type]
        except ImageTooLargeError:
            log.warning("not making a thumbnail of %s: the image is too large", key)
            return None
        except ValueError:
            return None
