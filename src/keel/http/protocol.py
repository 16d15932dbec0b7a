"""The HTTP/1.1 protocol Keel serves with: uvicorn's, with one socket write per response.

uvicorn writes a response's status line and headers with one
``transport.write()`` and its body with another. On an idle connection each
write is a ``send()`` system call of its own, so a small JSON response costs
two; the headers' call alone was 12 % of a worker's samples under the view
benchmark (``bench/profile.py view``).

:class:`HttpProtocol` gives uvicorn a transport that holds what is written
during one turn of the event loop and sends it as one buffer at the start of
the next turn (or at once past :data:`FLUSH_AT` bytes, and before the
connection closes). A response written in one go, as Starlette's are, leaves
in one system call. Nothing else changes: parsing, flow control and
keep-alive stay uvicorn's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Pending bytes that are sent at once instead of at the end of the turn.
FLUSH_AT = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A transport whose writes of one event-loop turn leave together.

    Every other method is the wrapped transport's; those that end or hand
    over the stream send what is pending first.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._size = 0
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if len(data) >= FLUSH_AT:  # large enough to go on its own, without a copy
            self.flush()
            self._send(data)
            return
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_scheduled)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send what is pending now, as one write."""
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        self._send(data)

    def _send(self, data: bytes | bytearray | memoryview) -> None:
        # Note: data for a transport that is already closing is dropped, as the
        # connection is going away; writing would raise inside a loop callback.
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._transport.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # uvicorn's own signature narrows asyncio's BaseTransport the same way.
        self._coalescing = CoalescingTransport(transport)
        super().connection_made(self._coalescing)

    def eof_received(self) -> None:
        # The client closed its side (it sent its request, then FIN): the
        # event loop closes the socket itself on return, so a response
        # written in this turn must leave now.
        self._coalescing.flush()
        super().eof_received()
