"""The ``FileStorage`` protocol, its keys and errors, and the URL that picks one.

A file storage keeps record files (and their thumbnails) under keys shaped like
PocketBase's: ``collectionId/recordId/filename`` or
``collectionId/recordId/thumbs_filename/100x100_filename``. Callers generate
safe names, but every implementation still passes every key through
:func:`check_key` (defence in depth), so no key can reach outside the storage.

Driver exceptions (``OSError``, ``botocore``) never leave ``keel.storage``;
implementations translate them into this hierarchy::

    FileStorageError      the storage failed (I/O error, S3 refused, network)
     ├── MissingFileError no file under that key
     └── InvalidKeyError  the key is malformed or resolves outside the storage

Ranges: :meth:`FileStorage.read` streams bytes ``[start, end]`` inclusive.
``end`` past the last byte is clamped to it; a ``start`` at or past the size
yields no bytes (no error): the HTTP layer answers 416 from :meth:`FileStorage.stat`
before it reads.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

#: The longest key accepted, in characters (S3 allows 1024 bytes).
MAX_KEY_LENGTH = 1000
#: The longest segment accepted (the usual file-name limit).
MAX_SEGMENT_LENGTH = 255
#: How much ``put`` reads from its source at once (local storage).
PUT_CHUNK_SIZE = 1024 * 1024
#: The largest chunk ``read`` yields.
READ_CHUNK_SIZE = 64 * 1024

_KEY = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
_S3_PARAMS = {"endpoint", "region", "force_path_style"}


class FileStorageError(Exception):
    """Base class of every error a ``FileStorage`` raises."""

    code = "file_storage_error"


class MissingFileError(FileStorageError):
    """No file is stored under the key."""

    code = "file_not_found"


class InvalidKeyError(FileStorageError):
    """The key is malformed, or resolves outside the storage's root."""

    code = "invalid_file_key"


def _shown(key: str) -> str:
    return repr(key if len(key) <= 80 else key[:77] + "...")


def check_key(key: str) -> str:
    """Validate a storage key and return it unchanged.

    A key is one or more ``/``-separated segments of ``[A-Za-z0-9._-]``, none
    empty, none ``.`` or ``..``, each at most 255 characters, 1000 in all. So no
    leading or trailing ``/``, backslash, NUL, ``%``, space or non-ASCII letter.

    Raises:
        InvalidKeyError: the key breaks any of these rules.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"file key must be a string, not {type(key).__name__}")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"file key longer than {MAX_KEY_LENGTH} characters")
    if _KEY.fullmatch(key) is None:
        raise InvalidKeyError(
            f"invalid file key {_shown(key)}: use segments of [A-Za-z0-9._-] separated by '/'"
        )
    for segment in key.split("/"):
        if segment in (".", ".."):
            raise InvalidKeyError(f"invalid file key {_shown(key)}: '.' and '..' segments")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidKeyError(
                f"invalid file key {_shown(key)}: segment longer than {MAX_SEGMENT_LENGTH}"
            )
    return key


def check_prefix(prefix: str, *, allow_empty: bool) -> str:
    """Validate a key prefix and return it normalised to end with ``/`` (or ``""``).

    A prefix names whole segments: ``"c1/r1"`` and ``"c1/r1/"`` both mean every
    key under ``c1/r1/``, never ``c1/r10/x``.

    Raises:
        InvalidKeyError: the prefix without its trailing ``/`` is not a valid
            key, or it is empty and ``allow_empty`` is false.
    """
    if isinstance(prefix, str) and prefix == "" and allow_empty:
        return ""
    stripped = prefix.removesuffix("/") if isinstance(prefix, str) else prefix
    return check_key(stripped) + "/"


@dataclass(frozen=True)
class StoredFile:
    """What a storage knows about one stored file.

    Attributes:
        key: The file's key.
        size: Its size in bytes.
        etag: A quoted strong HTTP ETag (``'"…"'``); it changes whenever the
            content is replaced.
        content_type: Its media type (see each implementation for its source).
        modified: When it was last written, in seconds since the epoch.
    """

    key: str
    size: int
    etag: str
    content_type: str
    modified: float


class FileStorage(Protocol):
    """A place to keep files by key: a local folder or an S3 bucket.

    Every method validates its key with :func:`check_key` (prefixes with
    :func:`check_prefix`) and raises :class:`InvalidKeyError` before any I/O.
    Failures of the medium raise :class:`FileStorageError`.
    """

    async def put(self, key: str, source: BinaryIO, content_type: str) -> StoredFile:
        """Store everything ``source`` yields from its current position under ``key``.

        The source is read in bounded chunks, never whole into memory. The new
        file replaces any file under ``key`` atomically: readers see the old
        content or the new, never a mix. ``source`` is not closed.
        """
        ...

    async def stat(self, key: str) -> StoredFile:
        """Describe the file under ``key``.

        Raises:
            MissingFileError: no file under ``key``.
        """
        ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``start`` to ``end`` inclusive (``None``: to the end).

        An async generator yielding chunks of at most 64 KiB. ``end`` past the
        last byte is clamped; ``start`` at or past the size yields nothing.

        Raises:
            MissingFileError: on the first iteration, no file under ``key``.
            ValueError: on the first iteration, ``start < 0`` or ``end < start``.

        Note:
            Close a generator you stop early (``contextlib.aclosing``), or its
            file or connection stays open until garbage collection.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the file under ``key``; a missing file is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every file under ``prefix`` (e.g. ``collectionId/recordId/``).

        Raises:
            InvalidKeyError: the prefix is empty or invalid.
        """
        ...

    async def exists(self, key: str) -> bool:
        """Whether a file is stored under ``key``."""
        ...

    async def close(self) -> None:
        """Release connections; the storage is not used afterwards."""
        ...

    async def list(self, prefix: str = "") -> list[str]:
        """The keys under ``prefix`` (``""``: every key), sorted.

        Objects whose names are not valid keys (e.g. temporary files) are left out.
        """
        ...


def open_file_storage(url: str) -> FileStorage:
    """Build the file storage a URL names.

    * ``file:///abs/path`` or a plain path: :class:`LocalFileStorage` rooted there.
    * ``s3://[KEY:SECRET@]bucket[/prefix][?endpoint=URL&region=R&force_path_style=1]``:
      :class:`S3FileStorage`. ``KEY`` and ``SECRET`` are percent-decoded; without
      them boto3's default chain applies (``AWS_ACCESS_KEY_ID`` /
      ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, then shared config).

    Raises:
        ValueError: the URL is empty, has another scheme, or is malformed.
    """
    if not url:
        raise ValueError("empty file storage URL")
    if url.startswith("s3://"):
        return _open_s3(url)
    if url.startswith("file:"):
        parts = urllib.parse.urlsplit(url)
        if not url.startswith("file://") or parts.netloc not in ("", "localhost"):
            raise ValueError(f"file storage URL must be file:///absolute/path, not {url!r}")
        if parts.query or parts.fragment or not parts.path.startswith("/"):
            raise ValueError(f"file storage URL must be file:///absolute/path, not {url!r}")
        return _open_local(urllib.parse.unquote(parts.path))
    if "://" in url:
        raise ValueError(f"unsupported file storage URL: {url!r} (use a path, file:// or s3://)")
    return _open_local(url)


def _open_local(root: str) -> FileStorage:
    from keel.storage.files.local import LocalFileStorage

    return LocalFileStorage(root)


def _open_s3(url: str) -> FileStorage:
    parts = urllib.parse.urlsplit(url)
    if parts.fragment:
        raise ValueError("s3:// URL must not have a fragment")
    userinfo, has_userinfo, host = parts.netloc.rpartition("@")
    if not _BUCKET.fullmatch(host):
        raise ValueError(f"s3:// URL has an invalid bucket name: {host!r}")
    access_key = secret_key = None
    if has_userinfo:
        user, has_secret, password = userinfo.partition(":")
        if not user or not has_secret or not password:
            raise ValueError("s3:// URL credentials must be KEY:SECRET")
        access_key = urllib.parse.unquote(user)
        secret_key = urllib.parse.unquote(password)
    prefix = parts.path.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except InvalidKeyError as exc:
            raise ValueError(f"s3:// URL has an invalid prefix: {exc}") from None
    params: dict[str, str] = {}
    for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if name not in _S3_PARAMS or name in params:
            raise ValueError(f"s3:// URL has an unknown or repeated parameter: {name!r}")
        params[name] = value
    endpoint = params.get("endpoint") or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"s3:// URL endpoint must be an http(s) URL: {endpoint!r}")
    path_style = params.get("force_path_style", "").lower()
    if path_style not in _TRUE | _FALSE:
        raise ValueError(f"s3:// URL force_path_style must be 1 or 0: {path_style!r}")

    from keel.storage.files.s3 import S3FileStorage

    return S3FileStorage(
        bucket=host,
        prefix=prefix,
        endpoint=endpoint,
        region=params.get("region") or None,
        access_key=access_key,
        secret_key=secret_key,
        force_path_style=path_style in _TRUE,
    )
