"""Record files: storing uploads, deleting replaced files, and finding a file to serve.

Consistency without a distributed transaction, in this order:

1. Uploads are checked (size, detected type) and written to the file storage
   under fresh random names *before* the database transaction.
2. The record row commits, naming the new files.
3. Files the change removed (or whose record was deleted) are deleted *after*
   the commit.

So a committed record never names a missing file. A failed request deletes
the files it wrote in step 1; a crash between the steps leaves only
unreferenced files, which ``keel files gc`` (:func:`collect_garbage`) deletes.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from keel.core.collection import Collection
from keel.core.errors import FieldError, ValidationError
from keel.core.fields.file import FileField, PendingFile, Upload
from keel.core.record import Record, from_row, select_sql
from keel.core.transaction import after_commit
from keel.storage.files.names import detect_content_type, stored_name
from keel.storage.files.storage import FileStorageError

if TYPE_CHECKING:
    from keel.core.app import App

log = logging.getLogger("keel.files")

#: How long an unreferenced file must have existed before gc deletes it, so
#: uploads of requests still in flight are never taken.
GC_GRACE_SECONDS = 3600
SNIFF_BYTES = 4096


def record_prefix(coll: Collection, record_id: str) -> str:
    return f"{coll.id}/{record_id}/"


def file_key(coll: Collection, record_id: str, name: str) -> str:
    return f"{coll.id}/{record_id}/{name}"


def thumb_prefix(coll: Collection, record_id: str, name: str) -> str:
    return f"{coll.id}/{record_id}/thumbs_{name}/"


def file_fields(coll: Collection) -> list[FileField]:
    return [f for f in coll.fields if isinstance(f, FileField)]


def has_uploads(body: dict[str, Any]) -> bool:
    return any(_uploads_in(v) for v in body.values())


def _uploads_in(value: Any) -> list[Upload]:
    if isinstance(value, Upload):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Upload)]
    return []


async def stage_uploads(
    app: App, coll: Collection, record_id: str, body: dict[str, Any], staged: list[str]
) -> dict[str, Any]:
    """Check and store every upload of ``body``; return the body with their names.

    Keys written are appended to ``staged`` (the caller deletes them if the
    request fails).

    Raises:
        ValidationError: an upload for a non-file key, too big, or of a type
            the field does not accept.
    """
    out: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for key, value in body.items():
        uploads = _uploads_in(value)
        if not uploads:
            out[key] = value
            continue
        name = key.strip("+-")
        fld = coll.field(name)
        if not isinstance(fld, FileField):
            errors[key] = FieldError("validation_invalid_value", "Files go to file fields only.")
            continue
        replaced: list[Any] = []
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, Upload):
                replaced.append(item)
                continue
            try:
                replaced.append(await _store(app, coll, record_id, fld, item, staged))
            except FieldError as exc:
                errors[fld.name] = exc
                break
        out[key] = replaced if isinstance(value, list) else replaced[0] if replaced else ""
    if errors:
        raise ValidationError("Failed to save the uploaded files.", errors)
    return out


async def _store(
    app: App, coll: Collection, record_id: str, fld: FileField, upload: Upload, staged: list[str]
) -> PendingFile:
    if upload.size > fld.max_size:
        raise FieldError(
            "validation_file_size_limit",
            f"Failed to upload {upload.filename!r} - the maximum allowed file size is "
            f"{fld.max_size} bytes.",
            {"maxSize": fld.max_size},
        )
    upload.file.seek(0)
    head = upload.file.read(SNIFF_BYTES)
    upload.file.seek(0)
    content_type = detect_content_type(head, upload.filename)
    allowed = fld.options["mimeTypes"]
    if allowed and content_type not in allowed:
        raise FieldError(
            "validation_invalid_mime_type",
            f"{upload.filename!r} mime type must be one of: {', '.join(allowed)}.",
            {"mimeTypes": allowed},
        )
    name = stored_name(upload.filename)
    key = file_key(coll, record_id, name)
    staged.append(key)
    try:
        await app.files.put(key, upload.file, content_type)
    except FileStorageError as exc:
        log.exception("storing %s failed", key)
        raise FieldError("validation_file_upload", "The file could not be stored.") from exc
    return PendingFile(name)


def file_names(coll: Collection, record: Record) -> dict[str, set[str]]:
    """The file names each file field of ``record`` holds."""
    return {f.name: set(f.values_of(record.data.get(f.name))) for f in file_fields(coll)}


def check_kept_files(
    coll: Collection, record: Record, before: dict[str, set[str]], message: str
) -> None:
    """Refuse names that are neither new uploads nor files the record already had.

    Raises:
        ValidationError: ``validation_invalid_file`` with the unknown names.
    """
    errors: dict[str, Any] = {}
    for fld in file_fields(coll):
        unknown = [
            v
            for v in fld.values_of(record.data.get(fld.name))
            if not isinstance(v, PendingFile) and v not in before.get(fld.name, set())
        ]
        if unknown:
            errors[fld.name] = FieldError(
                "validation_invalid_file",
                f"Invalid new files: {unknown}.",
                {"invalidFiles": unknown},
            )
    if errors:
        raise ValidationError(message, errors)


def removed_keys(coll: Collection, record: Record, before: dict[str, set[str]]) -> list[str]:
    """Keys (files and their thumbnails) of files ``record`` no longer names."""
    after = file_names(coll, record)
    keys: list[str] = []
    for name, old in before.items():
        for gone in sorted(old - after.get(name, set())):
            keys.append(file_key(coll, record.id, gone))
            keys.append(thumb_prefix(coll, record.id, gone))
    return keys


def delete_after_commit(app: App, keys: list[str]) -> None:
    """Delete ``keys`` (a trailing ``/`` means the whole prefix) once committed.

    Raises:
        RuntimeError: outside a transaction opened by ``write_transaction``.
    """
    after_commit(lambda: app.spawn(delete_keys(app, keys)))


async def delete_keys(app: App, keys: list[str]) -> None:
    """Delete files and prefixes; failures are logged (gc deletes what is left)."""
    for key in keys:
        try:
            if key.endswith("/"):
                await app.files.delete_prefix(key)
            else:
                await app.files.delete(key)
        except FileStorageError:
            log.exception("deleting %s failed; `keel files gc` will retry", key)


async def find_file(
    app: App, coll: Collection, record_id: str, filename: str
) -> tuple[Record, FileField] | None:
    """The record and the field holding ``filename``, if any."""
    fields = file_fields(coll)
    if not fields:
        return None
    row = await app.db.fetch_point(f"{select_sql(app.dialect, coll)} WHERE id = ?", (record_id,))
    if row is None:
        return None
    record = from_row(coll, row)
    for fld in fields:
        if filename in fld.values_of(record.data.get(fld.name)):
            return record, fld
    return None


async def collect_garbage(
    app: App, *, dry_run: bool = False, grace_seconds: float = GC_GRACE_SECONDS
) -> list[str]:
    """Delete stored files no record names, once older than ``grace_seconds``.

    Returns:
        The keys deleted (or that would be, with ``dry_run``).
    """
    removed: list[str] = []
    now = time.time()
    known = {c.id: c for c in app.collections}
    for key in await app.files.list(""):
        parts = key.split("/")
        if len(parts) < 3:
            continue
        coll = known.get(parts[0])
        if coll is None:
            continue  # not ours to judge: another app's files, or a schema not imported yet
        if await find_file(app, coll, parts[1], _base_name(parts)) is not None:
            continue
        try:
            stat = await app.files.stat(key)
        except FileStorageError:
            continue
        if now - stat.modified < grace_seconds:
            continue
        removed.append(key)
        if not dry_run:
            await app.files.delete(key)
    return removed


def _base_name(parts: list[str]) -> str:
    """The record file a key belongs to: itself, or the original of a thumbnail."""
    if len(parts) >= 4 and parts[2].startswith("thumbs_"):
        return parts[2].removeprefix("thumbs_")
    return parts[2]
