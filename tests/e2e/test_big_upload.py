"""A 1 GiB file through a real one-worker ``keel serve``, in bounded memory.

The file goes up as a streamed multipart body and comes back as a streamed
download and as a byte range; the serving process's peak resident memory
(``VmHWM``) may grow by less than :data:`MAX_RSS_GROWTH` over the whole round
trip, and no temporary file of the upload may stay open. The file is sparse
on the client side, but the server spools it to a temporary file and then
stores it, so about 2 GiB of real disk is used.
"""

from __future__ import annotations

import http.client
import io
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    SUPERUSER_EMAIL,
    SUPERUSER_PASSWORD,
    Server,
    create_superuser,
    keel_env,
    start_server,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIZE = 1 << 30
MAX_SIZE = 2 << 30
NEEDED_DISK = 3 << 30
MAX_RSS_GROWTH = 64 << 20
DEFAULT_MAX_UPLOAD_SIZE = 8 << 30
HEAD = b"keel-big-upload-head\n"
TAIL = b"tail-mark\n"
BLOBS = {
    "name": "blobs",
    "listRule": "",
    "viewRule": "",
    "createRule": "",
    "fields": [{"name": "file", "type": "file", "maxSelect": 1, "maxSize": MAX_SIZE}],
}
TIMEOUT = httpx.Timeout(30.0, read=600.0)


@pytest.fixture
def one_worker_server(tmp_path: Path, database_url: str) -> Iterator[Server]:
    """``keel serve --workers 1`` on a fresh data folder, with a superuser."""
    data_dir = tmp_path / "keel_data"
    env = keel_env(database_url)
    create_superuser(data_dir, env)
    with start_server(data_dir, env, tmp_path / "server.log", workers=1) as running:
        yield running


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    """A sparse 1 GiB file: zeros between a head and a tail marker."""
    needed = {tmp_path, Path(tempfile.gettempdir())}  # the server spools to the latter
    for folder in needed:
        free = shutil.disk_usage(folder).free
        if free < NEEDED_DISK:
            reason = f"{free >> 20} MiB free in {folder}; the 1 GiB round trip needs 3 GiB"
            if os.environ.get("CI") == "true":
                pytest.fail(f"required under CI: {reason}")
            pytest.skip(reason)
    path = tmp_path / "big.bin"
    with path.open("wb") as f:
        f.write(HEAD)
        f.truncate(SIZE)
        f.seek(SIZE - len(TAIL))
        f.write(TAIL)
    return path


class ReadRecorder(io.FileIO):
    """A file that remembers the largest single read asked of it."""

    largest_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.largest_read = max(self.largest_read, SIZE if size is None or size < 0 else size)
        return super().read(size)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _listening_inode(port: int) -> str:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return inode
    raise AssertionError(f"nothing listens on port {port}")


def serving_pid(server: Server) -> int:
    """The process accepting connections: the deepest one holding the listening socket.

    With one worker uvicorn serves in the main process; with several, the
    main process holds the socket too but its children serve.
    """
    socket_link = f"socket:[{_listening_inode(int(server.base_url.rsplit(':', 1)[1]))}]"
    holders: list[tuple[int, int]] = []  # (depth, pid)
    pending = [(0, server.pid)]
    while pending:
        depth, pid = pending.pop()
        pending += [(depth + 1, child) for child in _children(pid)]
        fds = Path(f"/proc/{pid}/fd")
        if any(os.readlink(fd) == socket_link for fd in fds.iterdir()):
            holders.append((depth, pid))
    assert holders, f"no process of {server.pid} holds {socket_link}"
    return max(holders)[1]


def peak_rss(pid: int) -> int:
    """The peak resident set size (``VmHWM``) of ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def held_deleted_files(pid: int) -> list[str]:
    """Files over 1 MiB that ``pid`` keeps open after they were deleted (spooled uploads)."""
    held: list[str] = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
            if target.endswith(" (deleted)") and fd.stat().st_size > 1 << 20:
                held.append(target)
        except FileNotFoundError:
            continue  # closed meanwhile
    return held


def superuser(client: httpx.Client) -> dict[str, str]:
    response = client.post(
        "/api/collections/_superusers/auth-with-password",
        json={"identity": SUPERUSER_EMAIL, "password": SUPERUSER_PASSWORD},
    )
    assert 200 == response.status_code, response.text
    return {"Authorization": response.json()["token"]}


def test_gigabyte_round_trip_in_bounded_memory(one_worker_server: Server, big_file: Path) -> None:
    """A 1 GiB upload, download and range read grow the server's peak RSS by < 64 MiB."""
    server = one_worker_server
    pid = serving_pid(server)
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
        su = superuser(client)
        created = client.post("/api/collections", headers=su, json=BLOBS)
        assert 200 == created.status_code, created.text
        before = peak_rss(pid)
        started = time.monotonic()

        with ReadRecorder(big_file, "rb") as f:
            uploaded = client.post(
                "/api/collections/blobs/records",
                headers=su,
                files={"file": ("big.bin", f, "application/octet-stream")},
            )
            largest_read = f.largest_read
        assert 200 == uploaded.status_code, uploaded.text
        assert largest_read <= 1 << 20, "the client read the file whole instead of streaming it"
        record: dict[str, Any] = uploaded.json()
        url = f"/api/files/blobs/{record['id']}/{record['file']}"

        received = 0
        head = b""
        with client.stream("GET", url) as download:
            assert 200 == download.status_code
            assert str(SIZE) == download.headers["content-length"]
            for chunk in download.iter_raw():
                if len(head) < len(HEAD):
                    head += chunk[: len(HEAD) - len(head)]
                received += len(chunk)
        tail = client.get(url, headers={"Range": "bytes=-10"})
        elapsed = time.monotonic() - started
        after = peak_rss(pid)
        spooled = held_deleted_files(pid)

    assert (SIZE, HEAD) == (received, head)
    assert (206, TAIL, f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}") == (
        tail.status_code,
        tail.content,
        tail.headers["content-range"],
    )
    assert [] == spooled, "the upload's temporary file is still held open"
    growth = after - before
    print(  # shown with -s / -rP: the figures the bound is about
        f"serving pid {pid}: VmHWM {before / (1 << 20):.1f} MiB before upload, "
        f"{after / (1 << 20):.1f} MiB after download (+{growth / (1 << 20):.1f} MiB); "
        f"round trip {elapsed:.1f}s"
    )
    assert growth < MAX_RSS_GROWTH, f"peak RSS grew by {growth >> 20} MiB"


def test_declared_length_over_the_upload_limit_is_refused_at_once(
    one_worker_server: Server,
) -> None:
    """A multipart body declaring max_upload_size + 1 bytes gets 413 before it is sent."""
    server = one_worker_server
    with httpx.Client(base_url=server.base_url, timeout=TIMEOUT) as client:
        su = superuser(client)
        created = client.post("/api/collections", headers=su, json=BLOBS)
        assert 200 == created.status_code, created.text
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    boundary = "keelboundary"
    start = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    head = (
        "POST /api/collections/blobs/records HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: {su['Authorization']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {DEFAULT_MAX_UPLOAD_SIZE + 1}\r\n\r\n"
    ).encode()

    # A raw socket: an HTTP client would refuse to send less than it declared.
    with socket.create_connection((host, int(port)), timeout=30.0) as sock:
        sock.sendall(head + start + b"\0" * 1024)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()

    assert 413 == response.status, body
