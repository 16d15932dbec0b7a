"""The HTTP protocol: writes of one event-loop turn leave in one system call."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from keel.http.protocol import FLUSH_AT, CoalescingTransport, HttpProtocol


@pytest.fixture
async def pair() -> AsyncIterator[tuple[asyncio.Transport, list[bytes], socket.socket]]:
    """A real socket transport whose writes are recorded, and its peer socket."""
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    writes: list[bytes] = []
    write = transport.write

    def recording(data: bytes) -> None:
        writes.append(bytes(data))
        write(data)

    transport.write = recording  # type: ignore[method-assign]
    yield transport, writes, peer
    transport.abort()
    peer.close()


async def _read(peer: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(peer, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


async def test_writes_of_one_turn_leave_as_one(pair) -> None:
    """Headers and body written in one turn reach the socket as one write, in order."""
    transport, writes, peer = pair
    coalescing = CoalescingTransport(transport)
    coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
    coalescing.write(b"body")
    assert [] == writes
    assert b"HTTP/1.1 200 OK\r\n\r\nbody" == await _read(peer, 23)
    assert [b"HTTP/1.1 200 OK\r\n\r\nbody"] == writes


async def test_large_writes_leave_at_once(pair) -> None:
    """Past FLUSH_AT bytes, writes go out without waiting for the turn to end, in order."""
    transport, writes, peer = pair
    coalescing = CoalescingTransport(transport)
    coalescing.write(b"a" * 10)
    coalescing.write(b"b" * FLUSH_AT)
    assert [b"a" * 10, b"b" * FLUSH_AT] == writes
    coalescing.write(b"c" * (FLUSH_AT // 2))
    coalescing.write(b"d" * (FLUSH_AT // 2))
    assert [b"a" * 10, b"b" * FLUSH_AT, b"c" * (FLUSH_AT // 2) + b"d" * (FLUSH_AT // 2)] == writes
    expected = b"a" * 10 + b"b" * FLUSH_AT + b"c" * (FLUSH_AT // 2) + b"d" * (FLUSH_AT // 2)
    assert expected == await _read(peer, len(expected))


async def test_close_sends_what_is_pending(pair) -> None:
    """Closing right after a write still delivers it, then the end of the stream."""
    transport, _, peer = pair
    coalescing = CoalescingTransport(transport)
    coalescing.write(b"last words")
    coalescing.close()
    assert b"last words" == await _read(peer, 1024)


async def test_abort_drops_what_is_pending(pair) -> None:
    """An aborted connection sends nothing more."""
    transport, writes, peer = pair
    coalescing = CoalescingTransport(transport)
    coalescing.write(b"never sent")
    coalescing.abort()
    assert b"" == await _read(peer, 1024)
    assert [] == writes


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    """Bodies of the size the path names, in as many parts as the query says."""
    if scope["type"] != "http":
        return
    size, parts = int(scope["path"].strip("/")), int(scope["query_string"] or b"1")
    body = bytes(i % 251 for i in range(size))
    cut = [size * i // parts for i in range(parts + 1)]
    headers = [(b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for i in range(parts):
        more = i < parts - 1
        await send(
            {"type": "http.response.body", "body": body[cut[i] : cut[i + 1]], "more_body": more}
        )


async def test_uvicorn_serves_whole_responses_through_it() -> None:
    """Responses arrive whole, on kept-alive connections and on half-closed ones."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections wait in the backlog until the server accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(_app, http=HttpProtocol, lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for size, parts in [(0, 1), (17, 1), (FLUSH_AT + 1, 1), (3 * FLUSH_AT, 7), (5, 3)]:
                response = await client.get(f"/{size}?{parts}")
                assert bytes(i % 251 for i in range(size)) == response.content
        # A client that half-closes after its request still gets the response.
        for _ in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /17?1 HTTP/1.1\r\nHost: x\r\n\r\n")
            writer.write_eof()
            raw = await reader.read()
            writer.close()
            assert raw.endswith(b"\r\n\r\n" + bytes(range(17))), raw
    finally:
        server.should_exit = True
        await task
        sock.close()
