"""``LocalFileStorage``: files in a folder, one file per key.

A key ``c1/r1/photo.png`` is the file ``<root>/c1/r1/photo.png``. Nothing else
is stored: no sidecar, so the content type comes from the file name's last
extension, looked up in Python's built-in :mod:`mimetypes` table plus a few
common web types (not the system's ``mime.types``, so it is the same on every
machine), ``application/octet-stream`` when unknown. The type given to
:meth:`LocalFileStorage.put` is not kept: callers name files with the extension
of their type.

Blocking I/O runs in worker threads (``asyncio.to_thread``). Every path is
resolved with ``os.path.realpath`` after :func:`check_key` and must stay inside
the root, so a symlink inside the root cannot lead a key out of it.

Note:
    The containment check and the system call that follows are two steps: a
    process that can create symlinks inside the root between them could still
    redirect one call. The storage root belongs to Keel alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from stat import S_ISREG
from typing import BinaryIO, TypeVar

from keel.storage.files.storage import (
    PUT_CHUNK_SIZE,
    READ_CHUNK_SIZE,
    FileStorageError,
    InvalidKeyError,
    MissingFileError,
    StoredFile,
    check_key,
    check_prefix,
)

T = TypeVar("T")

# mkstemp names end with "~tmp": "~" is not a key character, so a temporary
# file is never mistaken for a stored one (list skips it).
_TMP_PREFIX = "."
_TMP_SUFFIX = "~tmp"
_DEFAULT_TYPE = "application/octet-stream"
# Common types Python 3.11's built-in table lacks or gets wrong; they win over it.
# Compressed files are typed by their last extension (.tar.gz is gzip, not tar).
_EXTRA_TYPES = {
    ".webp": "image/webp",
    ".heif": "image/heif",
    ".jxl": "image/jxl",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/opus",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".md": "text/markdown",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".epub": "application/epub+zip",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",
    ".7z": "application/x-7z-compressed",
    ".rar": "application/vnd.rar",
}


@contextlib.contextmanager
def _translated(key: str, *, missing: bool = True) -> Iterator[None]:
    """Turn ``OSError`` into the storage's errors.

    With ``missing``, errors meaning "no such file" become ``MissingFileError``.
    """
    try:
        yield
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        if not missing:
            raise FileStorageError(f"file storage I/O failed for {key!r}: {exc.strerror}") from exc
        raise MissingFileError(f"no file {key!r}") from exc
    except OSError as exc:
        raise FileStorageError(f"file storage I/O failed for {key!r}: {exc.strerror}") from exc


class LocalFileStorage:
    """A ``FileStorage`` in a local folder.

    Args:
        root: The folder holding the files; created (with parents) on the first
            ``put``. Resolved once, here, with ``os.path.realpath``.

    Files are written to a temporary file in the target folder, flushed to disk
    (``fsync``) and renamed over the key (``os.replace``), so a reader or a crash
    sees the old content or the new. They are created owner-only (``0600``).
    """

    def __init__(self, root: str) -> None:
        self._root = os.path.realpath(root)
        # A private table: the module-level one also reads /etc/mime.types.
        self._types = mimetypes.MimeTypes()

    @property
    def root(self) -> str:
        """The resolved root folder."""
        return self._root

    def _path(self, key: str) -> str:
        """The real path for ``key``, refused when it leaves the root."""
        check_key(key)
        return self._contained(os.path.join(self._root, *key.split("/")), key)

    def _contained(self, path: str, key: str, *, allow_root: bool = False) -> str:
        real = os.path.realpath(path)
        inside = os.path.commonpath([self._root, real]) == self._root
        if not inside or (real == self._root and not allow_root):
            raise InvalidKeyError(f"file key {key!r} resolves outside the storage root")
        return real

    def _describe(self, key: str, st: os.stat_result) -> StoredFile:
        # The inode tells two writes apart within one mtime tick: a replacement
        # is a new file, created while the old one still exists.
        version = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode()
        etag = '"' + hashlib.blake2b(version, digest_size=16).hexdigest() + '"'
        return StoredFile(
            key=key,
            size=st.st_size,
            etag=etag,
            content_type=self.content_type(key),
            modified=st.st_mtime,
        )

    def content_type(self, key: str) -> str:
        """The media type served for ``key``: looked up by its last extension.

        Case-insensitive; ``application/octet-stream`` when unknown.
        """
        extension = os.path.splitext(key.rsplit("/", 1)[-1])[1].lower()
        known = _EXTRA_TYPES.get(extension) or self._types.types_map[True].get(extension)
        return known or _DEFAULT_TYPE

    async def put(self, key: str, source: BinaryIO, content_type: str) -> StoredFile:
        """Store ``source`` under ``key``; see ``FileStorage.put``.

        ``content_type`` is not kept: :meth:`stat` guesses it from the name.
        """
        path = self._path(key)
        return await asyncio.to_thread(self._put, key, path, source)

    def _put(self, key: str, path: str, source: BinaryIO) -> StoredFile:
        parent = os.path.dirname(path)
        with _translated(key, missing=False):
            os.makedirs(parent, exist_ok=True)
            # Resolved again: a folder may have been swapped for a symlink meanwhile.
            self._contained(parent, key, allow_root=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    while chunk := source.read(PUT_CHUNK_SIZE):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(parent)
            return self._describe(key, os.stat(path))

    async def stat(self, key: str) -> StoredFile:
        """Describe the file under ``key``; see ``FileStorage.stat``."""
        path = self._path(key)
        return await asyncio.to_thread(self._stat, key, path)

    def _stat(self, key: str, path: str) -> StoredFile:
        with _translated(key):
            st = os.stat(path)
        if not _is_file(st):
            raise MissingFileError(f"no file {key!r}")
        return self._describe(key, st)

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end]`` of ``key``; see ``FileStorage.read``."""
        _check_range(start, end)
        path = self._path(key)
        file, size = await asyncio.to_thread(self._open, key, path, start)
        try:
            # The size when opened: a concurrent put replaces the file (a new
            # inode), it never changes this open one.
            last = size - 1 if end is None else min(size - 1, end)
            remaining = last - start + 1
            while remaining > 0:
                chunk = await _in_thread(key, file.read, min(READ_CHUNK_SIZE, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            file.close()  # closing a file opened for reading does not block

    def _open(self, key: str, path: str, start: int) -> tuple[BinaryIO, int]:
        with _translated(key):
            file = open(path, "rb")  # noqa: SIM115  (closed by read's finally)
            try:
                st = os.fstat(file.fileno())
                if not _is_file(st):
                    raise MissingFileError(f"no file {key!r}")
                file.seek(start)
            except BaseException:
                file.close()
                raise
            return file, st.st_size

    async def delete(self, key: str) -> None:
        """Remove the file under ``key``, if any."""
        path = self._path(key)
        await asyncio.to_thread(self._delete, key, path)

    def _delete(self, key: str, path: str) -> None:
        with contextlib.suppress(MissingFileError), _translated(key):
            os.unlink(path)

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every file under ``prefix``; see ``FileStorage.delete_prefix``."""
        normalised = check_prefix(prefix, allow_empty=False)
        path = self._path(normalised.removesuffix("/"))
        await asyncio.to_thread(self._delete_tree, normalised, path)

    def _delete_tree(self, prefix: str, path: str) -> None:
        # A tree deleted meanwhile by someone else is just as good.
        with contextlib.suppress(MissingFileError), _translated(prefix):
            if not os.path.isdir(path):
                return
            # rmtree never follows symlinks inside the tree: it removes the links.
            shutil.rmtree(path)

    async def exists(self, key: str) -> bool:
        """Whether a file is stored under ``key``."""
        path = self._path(key)
        return await asyncio.to_thread(os.path.isfile, path)

    async def close(self) -> None:
        """Nothing to release: files are opened per call."""

    def _list(self, prefix: str, base: str) -> list[str]:
        keys: list[str] = []
        # os.walk does not descend into symlinked folders; symlinked files are
        # skipped below, so only what lies inside the root is listed.
        for folder, _, names in os.walk(base):
            rel = os.path.relpath(folder, base)
            for name in names:
                if os.path.islink(os.path.join(folder, name)):
                    continue
                key = prefix + (name if rel == "." else f"{rel}/{name}".replace(os.sep, "/"))
                try:
                    keys.append(check_key(key))
                except InvalidKeyError:
                    continue  # a temporary file, or one Keel did not write
        return sorted(keys)

    async def list(self, prefix: str = "") -> list[str]:
        """The keys under ``prefix``, sorted; see ``FileStorage.list``."""
        normalised = check_prefix(prefix, allow_empty=True)
        base = self._root
        if normalised:
            base = self._path(normalised.removesuffix("/"))
        return await asyncio.to_thread(self._list, normalised, base)


def _check_range(start: int, end: int | None) -> None:
    if start < 0:
        raise ValueError(f"range start must be >= 0, not {start}")
    if end is not None and end < start:
        raise ValueError(f"range end {end} is before start {start}")


def _is_file(st: os.stat_result) -> bool:
    return S_ISREG(st.st_mode)


def _fsync_dir(path: str) -> None:
    """Make a rename in ``path`` durable (where folders can be opened)."""
    flags = getattr(os, "O_DIRECTORY", None)
    if flags is None:
        return
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _in_thread(key: str, fn: Callable[[int], T], arg: int) -> T:
    with _translated(key):
        return await asyncio.to_thread(fn, arg)
