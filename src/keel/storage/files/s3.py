"""``S3FileStorage``: files as objects in an S3-compatible bucket.

A key ``c1/r1/photo.png`` is the object ``<prefix>/c1/r1/photo.png``. The
content type given to :meth:`S3FileStorage.put` is stored with the object and
returned by :meth:`S3FileStorage.stat`; the ETag is the one S3 computes.

boto3 is synchronous: every call runs in a worker thread (``asyncio.to_thread``)
and a download hands one chunk per thread call, so a slow client holds no
thread. boto3 was chosen over aiobotocore for ``upload_fileobj``'s managed,
streaming multipart upload, and because aiobotocore pins exact botocore
versions and pulls in aiohttp.

Every boto3/botocore/s3transfer exception is translated inside this module:
"no such key" becomes ``MissingFileError``, anything else ``FileStorageError``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3.session
import s3transfer.exceptions
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from keel.storage.files.storage import (
    READ_CHUNK_SIZE,
    FileStorageError,
    InvalidKeyError,
    MissingFileError,
    StoredFile,
    check_key,
    check_prefix,
)

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3.client import S3Client

#: Multipart part size. Each part is read whole into memory before it is sent
#: (s3transfer does so, to sign and retry it), one part at a time: this is the
#: memory a ``put`` holds. 8 MiB parts allow objects up to ~78 GiB before
#: s3transfer grows them to stay under S3's 10,000 parts.
PART_SIZE = 8 * 1024 * 1024
#: DeleteObjects accepts at most this many keys per request.
DELETE_BATCH = 1000

_MISSING_CODES = {"NoSuchKey", "NotFound", "404"}
_DRIVER_ERRORS = (
    BotoCoreError,
    ClientError,
    Boto3Error,
    s3transfer.exceptions.RetriesExceededError,
    s3transfer.exceptions.S3UploadFailedError,
    s3transfer.exceptions.S3ValidationError,
    OSError,
)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _translated(key: str, *, missing: bool = True) -> Iterator[None]:
    """Turn driver exceptions into the storage's errors.

    With ``missing``, "no such key" becomes ``MissingFileError``.
    """
    try:
        yield
    except _DRIVER_ERRORS as exc:
        if missing and isinstance(exc, ClientError) and _error_code(exc) in _MISSING_CODES:
            raise MissingFileError(f"no file {key!r}") from exc
        raise FileStorageError(f"S3 storage failed for {key!r}: {exc}") from exc


class S3FileStorage:
    """A ``FileStorage`` in an S3 (or S3-compatible) bucket.

    Args:
        bucket: The bucket; it must exist.
        prefix: A key prefix (without slashes around it) that every object name
            gets, so several stores can share a bucket; ``""`` for none.
        endpoint: The endpoint URL for S3-compatible services (MinIO, R2,
            moto…); ``None`` for AWS.
        region: The signing region; ``None`` leaves it to boto3's configuration.
        access_key: The access key id; ``None`` (with ``secret_key``) uses
            boto3's default credential chain (environment, shared config…).
        secret_key: The secret access key.
        force_path_style: Address the bucket in the path
            (``endpoint/bucket/key``) instead of the host name.

    Note:
        The client is created here, which reads boto3's service model (tens of
        milliseconds, blocking): build the storage at startup.

    Note:
        ``stat`` and ``exists`` use HEAD, whose 404 carries no error code: a
        missing bucket reads there as a missing file (``put``, ``read`` and
        ``list`` report it as ``FileStorageError``).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        force_path_style: bool = False,
    ) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
        )
        config = Config(
            s3={"addressing_style": "path" if force_path_style else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10,
            read_timeout=60,
        )
        with _translated(bucket, missing=False):
            self._client: S3Client = session.client("s3", endpoint_url=endpoint, config=config)
        # No transfer threads: the calling worker thread sends the parts one by
        # one, so memory stays at one part and no thread pool is created per put.
        self._transfer = TransferConfig(
            multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, use_threads=False
        )

    def _object(self, key: str) -> str:
        return self._prefix + check_key(key)

    async def put(self, key: str, source: BinaryIO, content_type: str) -> StoredFile:
        """Store ``source`` under ``key``; see ``FileStorage.put``.

        Objects larger than 8 MiB go up as a multipart upload; S3 makes the
        new object visible only once complete, so the replacement is atomic.
        """
        name = self._object(key)
        return await asyncio.to_thread(self._put, key, name, source, content_type)

    def _put(self, key: str, name: str, source: BinaryIO, content_type: str) -> StoredFile:
        with _translated(key, missing=False):
            self._client.upload_fileobj(
                source,
                self._bucket,
                name,
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer,
            )
        return self._stat(key, name)

    async def stat(self, key: str) -> StoredFile:
        """Describe the file under ``key``; see ``FileStorage.stat``."""
        name = self._object(key)
        return await asyncio.to_thread(self._stat, key, name)

    def _stat(self, key: str, name: str) -> StoredFile:
        with _translated(key):
            head = self._client.head_object(Bucket=self._bucket, Key=name)
        etag = head["ETag"]
        return StoredFile(
            key=key,
            size=head["ContentLength"],
            etag=etag if etag.startswith('"') else f'"{etag}"',
            content_type=head.get("ContentType") or "application/octet-stream",
            modified=head["LastModified"].timestamp(),
        )

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end]`` of ``key``; see ``FileStorage.read``."""
        if start < 0:
            raise ValueError(f"range start must be >= 0, not {start}")
        if end is not None and end < start:
            raise ValueError(f"range end {end} is before start {start}")
        name = self._object(key)
        body = await asyncio.to_thread(self._open, key, name, start, end)
        if body is None:
            return
        try:
            while True:
                with _translated(key, missing=False):
                    chunk: bytes = await asyncio.to_thread(body.read, READ_CHUNK_SIZE)
                if not chunk:
                    break
                yield chunk
        finally:
            # Releases the connection; it does not wait for the rest of the body.
            body.close()

    def _open(self, key: str, name: str, start: int, end: int | None) -> StreamingBody | None:
        """The streaming body of the range, or ``None`` when it starts past the end."""
        args: dict[str, Any] = {"Bucket": self._bucket, "Key": name}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        with _translated(key):
            try:
                return self._client.get_object(**args)["Body"]
            except ClientError as exc:
                if _error_code(exc) == "InvalidRange":
                    return None  # start >= size: S3 answers 416
                raise

    async def delete(self, key: str) -> None:
        """Remove the file under ``key``, if any."""
        name = self._object(key)
        await asyncio.to_thread(self._delete, key, name)

    def _delete(self, key: str, name: str) -> None:
        with _translated(key, missing=False):
            self._client.delete_object(Bucket=self._bucket, Key=name)

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every file under ``prefix``; see ``FileStorage.delete_prefix``."""
        normalised = check_prefix(prefix, allow_empty=False)
        await asyncio.to_thread(self._delete_prefix, normalised)

    def _delete_prefix(self, prefix: str) -> None:
        names = self._names(prefix)
        for first in range(0, len(names), DELETE_BATCH):
            batch = names[first : first + DELETE_BATCH]
            with _translated(prefix, missing=False):
                response = self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
                )
            errors = response.get("Errors", [])
            if errors:
                first_error = errors[0]
                raise FileStorageError(
                    f"S3 storage could not delete {len(errors)} objects under {prefix!r}: "
                    f"{first_error.get('Key')}: {first_error.get('Message')}"
                )

    def _names(self, prefix: str) -> list[str]:
        """Every object name under ``prefix`` (a normalised key prefix)."""
        names: list[str] = []
        with _translated(prefix, missing=False):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._prefix + prefix
            )
            for page in pages:
                names.extend(item["Key"] for item in page.get("Contents", []) if "Key" in item)
        return names

    async def exists(self, key: str) -> bool:
        """Whether a file is stored under ``key``."""
        name = self._object(key)
        try:
            await asyncio.to_thread(self._stat, key, name)
        except MissingFileError:
            return False
        return True

    async def close(self) -> None:
        """Close the client's connection pool."""
        with _translated(self._bucket, missing=False):
            await asyncio.to_thread(self._client.close)

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for name in self._names(prefix):
            key = name.removeprefix(self._prefix)
            try:
                keys.append(check_key(key))
            except InvalidKeyError:
                continue  # an object Keel did not write
        return sorted(keys)

    async def list(self, prefix: str = "") -> list[str]:
        """The keys under ``prefix``, sorted; see ``FileStorage.list``."""
        normalised = check_prefix(prefix, allow_empty=True)
        return await asyncio.to_thread(self._list, normalised)
