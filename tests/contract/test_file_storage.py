"""The ``FileStorage`` contract, run against a local folder and a real S3 server (moto).

Decisions the suite pins down (see ``keel.storage.files.storage``):

* ``read`` yields bytes ``[start, end]`` inclusive; ``end`` past the last byte
  is clamped; ``start`` at or past the size yields nothing (no error).
* The local storage guesses the content type from the file name; S3 keeps the
  type given to ``put``. The tests use names whose extension matches the type.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from keel.storage.files.local import LocalFileStorage
from keel.storage.files.s3 import S3FileStorage
from keel.storage.files.storage import (
    FileStorage,
    FileStorageError,
    InvalidKeyError,
    MissingFileError,
    StoredFile,
    check_key,
    open_file_storage,
)
from tests.s3 import S3Server

MiB = 1024 * 1024
DATA = bytes(range(256)) * 1000  # 256,000 bytes: several 64 KiB chunks


def _bucket() -> str:
    return f"keel-{secrets.token_hex(6)}"


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FileStorage]:
    """A fresh, empty storage: a folder in tmp_path, or a new bucket (under a prefix)."""
    if request.param == "local":
        store = open_file_storage((tmp_path / "root").as_uri())
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        store = open_file_storage(server.url(_bucket(), prefix="files"))
    try:
        yield store
    finally:
        await store.close()


async def _put(store: FileStorage, key: str, data: bytes, content_type: str = "") -> StoredFile:
    return await store.put(key, io.BytesIO(data), content_type or "application/octet-stream")


async def _read(store: FileStorage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


# Round trip, ranges, overwrite.


async def test_put_stat_read_round_trip(storage: FileStorage) -> None:
    """What is put comes back whole from read, and put and stat describe it alike."""
    stored = await _put(storage, "c1/r1/photo.png", DATA, "image/png")

    assert ("c1/r1/photo.png", len(DATA), "image/png") == (
        stored.key,
        stored.size,
        stored.content_type,
    )
    assert stored == await storage.stat("c1/r1/photo.png")
    assert DATA == await _read(storage, "c1/r1/photo.png")


async def test_etag_is_a_quoted_strong_etag_stable_while_unchanged(storage: FileStorage) -> None:
    """The ETag is quoted, not weak, and the same on every stat of an unchanged file."""
    stored = await _put(storage, "c1/r1/a.txt", b"hello", "text/plain")

    assert (True, True, False) == (
        stored.etag.startswith('"'),
        stored.etag.endswith('"') and len(stored.etag) > 2,
        stored.etag.startswith("W/"),
    )
    assert stored.etag == (await storage.stat("c1/r1/a.txt")).etag


async def test_put_from_current_position_of_source(storage: FileStorage) -> None:
    """put stores what the source yields from its current position on."""
    source = io.BytesIO(b"skip:keep")
    source.seek(5)

    await storage.put("c1/r1/a.txt", source, "text/plain")

    assert b"keep" == await _read(storage, "c1/r1/a.txt")


async def test_empty_file(storage: FileStorage) -> None:
    """An empty file is stored with size 0 and reads as no bytes, whatever the range."""
    stored = await _put(storage, "c1/r1/empty.txt", b"", "text/plain")

    assert 0 == stored.size
    assert b"" == await _read(storage, "c1/r1/empty.txt")
    assert b"" == await _read(storage, "c1/r1/empty.txt", 0, 0)


LAST = len(DATA) - 1


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, 0, DATA[:1]),
        (0, None, DATA),
        (1000, 70_999, DATA[1000:71_000]),
        (LAST, LAST, DATA[-1:]),
        (LAST, None, DATA[-1:]),
        (LAST - 9, LAST + 100, DATA[-10:]),
        (len(DATA), None, b""),
        (len(DATA) + 10, len(DATA) + 20, b""),
    ],
    ids=["first-byte", "all", "middle", "last-byte", "last-open", "end-clamped", "at-size", "past"],
)
async def test_read_range(
    storage: FileStorage, start: int, end: int | None, expected: bytes
) -> None:
    """read yields bytes [start, end] inclusive; past the end it clamps or yields nothing."""
    await _put(storage, "c1/r1/data.bin", DATA)

    assert expected == await _read(storage, "c1/r1/data.bin", start, end)


async def test_read_chunks_are_at_most_64_kib(storage: FileStorage) -> None:
    """read streams in chunks of at most 64 KiB."""
    await _put(storage, "c1/r1/data.bin", DATA)

    sizes = [len(chunk) async for chunk in storage.read("c1/r1/data.bin")]

    assert len(DATA) == sum(sizes)
    assert [] == [size for size in sizes if size > 64 * 1024]


@pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 9)])
async def test_read_rejects_invalid_range(
    storage: FileStorage, start: int, end: int | None
) -> None:
    """A negative start, or an end before the start, is a ValueError."""
    await _put(storage, "c1/r1/data.bin", DATA)

    with pytest.raises(ValueError):
        await _read(storage, "c1/r1/data.bin", start, end)


async def test_read_missing_raises_on_first_iteration(storage: FileStorage) -> None:
    """Reading a missing key raises MissingFileError when iteration starts."""
    chunks = storage.read("c1/r1/missing.txt")

    with pytest.raises(MissingFileError):
        await anext(chunks)


async def test_stat_missing_raises(storage: FileStorage) -> None:
    """stat of a missing key raises MissingFileError."""
    with pytest.raises(MissingFileError):
        await storage.stat("c1/r1/missing.txt")


async def test_put_overwrites(storage: FileStorage) -> None:
    """A put on an existing key replaces its content and size."""
    await _put(storage, "c1/r1/a.txt", b"first version, longer", "text/plain")

    stored = await _put(storage, "c1/r1/a.txt", b"second", "text/plain")

    assert b"second" == await _read(storage, "c1/r1/a.txt")
    assert 6 == stored.size == (await storage.stat("c1/r1/a.txt")).size
    assert ["c1/r1/a.txt"] == await storage.list("c1/r1/")


async def test_etag_changes_when_content_changes(storage: FileStorage) -> None:
    """Replacing content (even with the same size) gives a new ETag."""
    first = await _put(storage, "c1/r1/a.txt", b"aaaa", "text/plain")
    second = await _put(storage, "c1/r1/a.txt", b"bbbb", "text/plain")

    assert first.etag != second.etag
    assert second.etag == (await storage.stat("c1/r1/a.txt")).etag


class _FailingSource(io.RawIOBase):
    """A source that yields some bytes, then fails like a broken upload."""

    def __init__(self) -> None:
        self._sent = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]  # bytes-like
        if self._sent:
            raise OSError("client went away")
        self._sent = True
        buffer[:4] = b"half"
        return 4


async def test_failed_put_keeps_old_content(storage: FileStorage) -> None:
    """A put whose source fails raises FileStorageError and leaves the old file as it was."""
    await _put(storage, "c1/r1/a.txt", b"old", "text/plain")
    source: BinaryIO = io.BufferedReader(_FailingSource())

    with pytest.raises(FileStorageError):
        await storage.put("c1/r1/a.txt", source, "text/plain")

    assert b"old" == await _read(storage, "c1/r1/a.txt")
    assert ["c1/r1/a.txt"] == await storage.list("")


# Delete, list, exists.


async def test_delete_removes_file(storage: FileStorage) -> None:
    """delete removes the file: stat then raises and exists is false."""
    await _put(storage, "c1/r1/a.txt", b"x", "text/plain")

    await storage.delete("c1/r1/a.txt")

    assert False is await storage.exists("c1/r1/a.txt")
    with pytest.raises(MissingFileError):
        await storage.stat("c1/r1/a.txt")


async def test_delete_missing_is_fine(storage: FileStorage) -> None:
    """Deleting a key that was never stored does nothing and raises nothing."""
    await storage.delete("c1/r1/missing.txt")

    assert [] == await storage.list("")


RECORD_FILES = [
    "c1/r1/a.txt",
    "c1/r1/thumbs_a.png/100x100_a.png",
    "c1/r1/thumbs_a.png/0x50_a.png",
    "c1/r10/b.txt",
    "c1/r2/c.txt",
    "c2/r1/d.txt",
]


@pytest.mark.parametrize("prefix", ["c1/r1/", "c1/r1"])
async def test_delete_prefix_removes_everything_under_it_only(
    storage: FileStorage, prefix: str
) -> None:
    """delete_prefix removes a record's files and thumbs, and nothing else (not c1/r10)."""
    for key in RECORD_FILES:
        await _put(storage, key, key.encode())

    await storage.delete_prefix(prefix)

    assert ["c1/r10/b.txt", "c1/r2/c.txt", "c2/r1/d.txt"] == await storage.list("")
    assert b"c1/r10/b.txt" == await _read(storage, "c1/r10/b.txt")


async def test_delete_prefix_of_nothing_is_fine(storage: FileStorage) -> None:
    """delete_prefix of a prefix holding no file does nothing."""
    await _put(storage, "c1/r1/a.txt", b"x")

    await storage.delete_prefix("c9/r9/")

    assert ["c1/r1/a.txt"] == await storage.list("")


async def test_delete_prefix_refuses_empty_prefix(storage: FileStorage) -> None:
    """delete_prefix("") (everything) is refused with InvalidKeyError."""
    await _put(storage, "c1/r1/a.txt", b"x")

    with pytest.raises(InvalidKeyError):
        await storage.delete_prefix("")

    assert ["c1/r1/a.txt"] == await storage.list("")


THUMBS = ["c1/r1/thumbs_a.png/0x50_a.png", "c1/r1/thumbs_a.png/100x100_a.png"]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", sorted(RECORD_FILES)),
        ("c1/", sorted(k for k in RECORD_FILES if k.startswith("c1/"))),
        ("c1/r1/", ["c1/r1/a.txt", *THUMBS]),
        ("c1/r1", ["c1/r1/a.txt", *THUMBS]),
        ("c1/r1/thumbs_a.png/", THUMBS),
        ("c9/", []),
        ("c1/r1/a.txt/", []),
    ],
)
async def test_list(storage: FileStorage, prefix: str, expected: list[str]) -> None:
    """list returns the sorted keys under whole-segment prefixes ("" for all)."""
    for key in reversed(RECORD_FILES):
        await _put(storage, key, b"x")

    assert expected == await storage.list(prefix)


async def test_exists(storage: FileStorage) -> None:
    """exists is true for a stored file, false for a missing key or a folder-like prefix."""
    await _put(storage, "c1/r1/a.txt", b"x")

    assert (True, False, False) == (
        await storage.exists("c1/r1/a.txt"),
        await storage.exists("c1/r1/b.txt"),
        await storage.exists("c1/r1"),
    )


# Streaming a large file.


@pytest.fixture
def big_file(tmp_path: Path) -> Iterator[tuple[BinaryIO, str]]:
    """A 50 MiB file on disk, opened for reading, and its SHA-256."""
    path = tmp_path / "big.bin"
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for i in range(50):
            chunk = i.to_bytes(4, "big") + block[4:]
            out.write(chunk)
            digest.update(chunk)
    with path.open("rb") as source:
        yield source, digest.hexdigest()


@pytest.mark.slow
async def test_large_file_streams_in_bounded_memory(
    storage: FileStorage, big_file: tuple[BinaryIO, str]
) -> None:
    """A 50 MiB put and read stay under 16 MiB of peak Python memory (tracemalloc)."""
    source, expected_digest = big_file
    # Warm up: one-time imports, the connection pool and lazily built models.
    await _put(storage, "c1/r1/warm.bin", b"warm")
    await _read(storage, "c1/r1/warm.bin")

    tracemalloc.start()
    try:
        stored = await storage.put("c1/r1/big.bin", source, "application/octet-stream")
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        async for chunk in storage.read("c1/r1/big.bin"):
            digest.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert 50 * MiB == stored.size
    assert expected_digest == digest.hexdigest()
    assert put_peak < 16 * MiB, f"put peaked at {put_peak / MiB:.1f} MiB"
    assert read_peak < 16 * MiB, f"read peaked at {read_peak / MiB:.1f} MiB"


# Hostile keys.


HOSTILE_KEYS = {
    "dotdot": "../x",
    "dotdot-inside": "a/../../etc/passwd",
    "dotdot-alone": "..",
    "dot-first": "./a",
    "dot-inside": "a/./b",
    "absolute": "/etc/passwd",
    "backslash": "a\\b",
    "backslash-dotdot": "..\\x",
    "percent-dotdot": "a/%2e%2e/b",
    "fullwidth-dots": "\uff0e\uff0e/x",
    "nul": "a/\x00b",
    "newline": "a/b\n",
    "space": "a/b c",
    "non-ascii": "a/caf\u00e9",
    "too-long": "a" * 2000,
    "segment-too-long": "a/" + "b" * 256,
    "empty-segment": "a//b",
    "trailing-slash": "a/b/",
    "empty": "",
}


@pytest.mark.parametrize("key", HOSTILE_KEYS.values(), ids=HOSTILE_KEYS.keys())
async def test_hostile_key_is_refused_by_every_operation(storage: FileStorage, key: str) -> None:
    """put, read, stat, delete and exists all raise InvalidKeyError for a hostile key."""
    with pytest.raises(InvalidKeyError):
        await _put(storage, key, b"pwned")
    with pytest.raises(InvalidKeyError):
        await _read(storage, key)
    with pytest.raises(InvalidKeyError):
        await storage.stat(key)
    with pytest.raises(InvalidKeyError):
        await storage.delete(key)
    with pytest.raises(InvalidKeyError):
        await storage.exists(key)

    assert [] == await storage.list("")


@pytest.mark.parametrize("prefix", ["../", "/", "..", "a/../", "a//", "\\", "a/%2e%2e/"])
async def test_hostile_prefix_is_refused(storage: FileStorage, prefix: str) -> None:
    """delete_prefix and list raise InvalidKeyError for a hostile prefix."""
    with pytest.raises(InvalidKeyError):
        await storage.delete_prefix(prefix)
    with pytest.raises(InvalidKeyError):
        await storage.list(prefix)


@pytest.mark.parametrize(
    "key",
    [
        "c1/r1/photo.png",
        "abc123/xyz789/thumbs_photo_Ab12.png/100x100_photo_Ab12.png",
        "a",
        ".hidden",
        "a/...",
        "x" * 255,
        "/".join(["a" * 99] * 10),
    ],
)
def test_check_key_accepts_valid_keys(key: str) -> None:
    """check_key returns a valid key unchanged."""
    assert key == check_key(key)


def _files_outside(parent: Path, root: Path) -> list[str]:
    outside = []
    for folder, _, names in os.walk(parent):
        for name in names:
            path = Path(folder, name)
            if not path.is_relative_to(root):
                outside.append(str(path.relative_to(parent)))
    return sorted(outside)


async def test_local_hostile_keys_write_nothing_outside_root(tmp_path: Path) -> None:
    """After every hostile put/read/delete/delete_prefix, no file exists outside the root."""
    root = tmp_path / "deep" / "root"
    root.parent.mkdir()
    (tmp_path / "deep" / "secret.txt").write_bytes(b"secret")
    store = LocalFileStorage(str(root))
    before = _files_outside(tmp_path, root)

    for key in [*HOSTILE_KEYS.values(), "../secret.txt", "../../x", "a/../../secret.txt"]:
        with pytest.raises(InvalidKeyError):
            await _put(store, key, b"pwned")
        with pytest.raises(InvalidKeyError):
            await _read(store, key)
        with pytest.raises(InvalidKeyError):
            await store.delete(key)
        with pytest.raises(InvalidKeyError):
            await store.delete_prefix(key + "/")

    assert ["deep/secret.txt"] == before == _files_outside(tmp_path, root)
    assert b"secret" == (tmp_path / "deep" / "secret.txt").read_bytes()


async def test_local_symlinks_out_of_root_are_refused(tmp_path: Path) -> None:
    """Keys through a symlink leading outside the root are refused and list skips them."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    (root / "c1" / "r1").mkdir(parents=True)
    (root / "c1" / "link").symlink_to(outside, target_is_directory=True)
    (root / "c1" / "r1" / "leak.txt").symlink_to(outside / "secret.txt")
    store = LocalFileStorage(str(root))

    for key in ["c1/link/secret.txt", "c1/link/new.txt", "c1/r1/leak.txt"]:
        with pytest.raises(InvalidKeyError):
            await _put(store, key, b"pwned")
        with pytest.raises(InvalidKeyError):
            await _read(store, key)
        with pytest.raises(InvalidKeyError):
            await store.stat(key)
        with pytest.raises(InvalidKeyError):
            await store.delete(key)
    with pytest.raises(InvalidKeyError):
        await store.delete_prefix("c1/link/")
    with pytest.raises(InvalidKeyError):
        await store.list("c1/link/")

    assert [] == await store.list("")
    assert ["secret.txt"] == sorted(os.listdir(outside))
    assert b"secret" == (outside / "secret.txt").read_bytes()


async def test_local_leaves_no_temporary_file_and_lists_none(tmp_path: Path) -> None:
    """After puts, every file in the root is a listed key; a stray temp file is not listed."""
    root = tmp_path / "root"
    store = LocalFileStorage(str(root))
    await _put(store, "c1/r1/a.txt", b"one")
    await _put(store, "c1/r1/a.txt", b"two")
    on_disk = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    (root / "c1" / "r1" / ".a.txtq1w2e3~tmp").write_bytes(b"partial")

    assert ["c1/r1/a.txt"] == on_disk == await store.list("")


@pytest.mark.parametrize(("first", "second"), [("c1/r1", "c1/r1/a.txt"), ("c1/r1/a.txt", "c1/r1")])
async def test_local_file_and_folder_in_the_way(tmp_path: Path, first: str, second: str) -> None:
    """Locally a key cannot be both a file and a folder: the second put is a FileStorageError."""
    store = LocalFileStorage(str(tmp_path / "root"))
    await _put(store, first, b"first")

    with pytest.raises(FileStorageError) as error:
        await _put(store, second, b"second")

    assert (FileStorageError, [first]) == (type(error.value), await store.list(""))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.png", "image/png"),
        ("a.JPG", "image/jpeg"),
        ("a.webp", "image/webp"),
        ("a.pdf", "application/pdf"),
        ("a.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("a.tar.gz", "application/gzip"),
        ("a.unknownext", "application/octet-stream"),
        ("noextension", "application/octet-stream"),
    ],
)
async def test_local_content_type_comes_from_the_name(
    tmp_path: Path, name: str, expected: str
) -> None:
    """Local storage derives the content type from the last extension, not from put."""
    store = LocalFileStorage(str(tmp_path / "root"))

    stored = await _put(store, f"c1/r1/{name}", b"x", "text/plain")

    assert (expected, expected) == (
        stored.content_type,
        (await store.stat(f"c1/r1/{name}")).content_type,
    )


# S3 specifics.


async def test_s3_keeps_given_content_type(s3_server: S3Server) -> None:
    """S3 stores the content type given to put, whatever the name."""
    store = open_file_storage(s3_server.url(_bucket()))
    try:
        await _put(store, "c1/r1/data", b"{}", "application/json")

        assert "application/json" == (await store.stat("c1/r1/data")).content_type
    finally:
        await store.close()


async def test_s3_prefix_isolates_storages_sharing_a_bucket(s3_server: S3Server) -> None:
    """Objects are named <prefix>/<key>; storages with other prefixes do not see them."""
    bucket = _bucket()
    first = open_file_storage(s3_server.url(bucket, prefix="one"))
    second = open_file_storage(s3_server.url(bucket, prefix="two/nested"))
    try:
        await _put(first, "c1/r1/a.txt", b"1")
        await _put(second, "c1/r1/a.txt", b"2")
        s3_server.client.put_object(Bucket=bucket, Key="one/c1/r1/bad name", Body=b"x")
        await second.delete_prefix("c1/")

        listed = s3_server.client.list_objects_v2(Bucket=bucket).get("Contents", [])
        assert ["one/c1/r1/a.txt", "one/c1/r1/bad name"] == sorted(o.get("Key", "") for o in listed)
        assert ["c1/r1/a.txt"] == await first.list("")
        assert b"1" == await _read(first, "c1/r1/a.txt")
    finally:
        await first.close()
        await second.close()


@pytest.mark.slow
async def test_s3_delete_prefix_deletes_more_than_one_batch(s3_server: S3Server) -> None:
    """delete_prefix removes more than 1000 objects (several DeleteObjects batches)."""
    bucket = _bucket()
    store = open_file_storage(s3_server.url(bucket))
    for i in range(1005):
        s3_server.client.put_object(Bucket=bucket, Key=f"c1/r1/f{i:04}.txt", Body=b"")
    s3_server.client.put_object(Bucket=bucket, Key="c1/r2/keep.txt", Body=b"")
    try:
        await store.delete_prefix("c1/r1/")

        assert ["c1/r2/keep.txt"] == await store.list("")
    finally:
        await store.close()


async def test_s3_driver_errors_are_translated(s3_server: S3Server) -> None:
    """A missing bucket surfaces as FileStorageError, never a botocore exception."""
    store = open_file_storage(s3_server.url(_bucket()).replace("@keel-", "@keel-missing-", 1))
    try:
        with pytest.raises(FileStorageError) as put_error:
            await _put(store, "c1/r1/a.txt", b"x")
        with pytest.raises(FileStorageError) as read_error:
            await _read(store, "c1/r1/a.txt")
        with pytest.raises(FileStorageError) as list_error:
            await store.list("")
        with pytest.raises(FileStorageError) as delete_error:
            await store.delete_prefix("c1/")
    finally:
        await store.close()

    errors = [put_error.value, read_error.value, list_error.value, delete_error.value]
    assert [FileStorageError] * 4 == [type(e) for e in errors]


# URLs.


def test_open_file_storage_plain_path_and_file_url(tmp_path: Path) -> None:
    """A plain path and a file:/// URL both give a LocalFileStorage rooted there."""
    by_path = open_file_storage(str(tmp_path / "a"))
    by_url = open_file_storage((tmp_path / "b c").as_uri())

    assert isinstance(by_path, LocalFileStorage) and isinstance(by_url, LocalFileStorage)
    assert (str(tmp_path.resolve() / "a"), str(tmp_path.resolve() / "b c")) == (
        by_path.root,
        by_url.root,
    )


def test_open_file_storage_s3_url() -> None:
    """An s3:// URL gives an S3FileStorage (no request is made to build it)."""
    store = open_file_storage(
        "s3://AK:S%2Fk@bucket/some/prefix?endpoint=http://127.0.0.1:1&region=eu-west-1"
        "&force_path_style=true"
    )

    assert isinstance(store, S3FileStorage)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://host/x",
        "file://remote-host/x",
        "file:relative/path",
        "file:///x?query=1",
        "s3://",
        "s3://bucket:9000",
        "s3://-bucket",
        "s3://KEY@bucket",
        "s3://:SECRET@bucket",
        "s3://bucket/../x",
        "s3://bucket/a%20b",
        "s3://bucket?unknown=1",
        "s3://bucket?region=a&region=b",
        "s3://bucket?endpoint=ftp://x",
        "s3://bucket?force_path_style=maybe",
        "s3://bucket#fragment",
    ],
)
def test_open_file_storage_rejects_invalid_urls(url: str) -> None:
    """Malformed or unsupported storage URLs raise ValueError."""
    with pytest.raises(ValueError):
        open_file_storage(url)
