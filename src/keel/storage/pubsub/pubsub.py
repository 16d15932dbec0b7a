"""The ``PubSub`` protocol, the bounded subscription buffer, and the URL that picks one.

A pubsub carries "something happened" signals between the worker processes and
nodes of one deployment: realtime publishes a short message when its outbox
has news, and every reader subscribed to that channel wakes up and reads the
outbox. The outbox is the source of truth; pubsub only saves readers a poll.
Hence the delivery contract is deliberately weak:

* **Best effort, at most once.** A message published while a subscriber is
  disconnected, or dropped from a full buffer, is gone. (Redis retries a
  publish whose connection failed; if the first attempt did reach the server,
  that message arrives twice. Treat messages as idempotent wake-ups.)
* **Ordered per channel and publisher.** Messages one publisher sends to one
  channel arrive in the order it sent them; nothing is promised across
  channels or publishers.
* **Active on return.** :meth:`PubSub.subscribe` returns once the server has
  confirmed the subscription, so a message published after it returns is
  delivered (barring the losses above).
* **Bounded memory.** Each subscription buffers at most ``buffer_size``
  (default :data:`DEFAULT_BUFFER_SIZE`) unread messages. A full buffer discards
  its **oldest** message to make room and counts it in
  :attr:`Subscription.dropped`; a reader that sees ``dropped`` grow knows it
  missed wake-ups and should re-scan its source of truth.

Driver exceptions never leave ``keel.storage``; implementations translate them::

    PubSubError     the broker failed (unreachable, lost beyond retries) or the
                    pubsub was closed
    ValueError      a malformed URL or channel name (a programming error)
    TypeError       a message that is not ``bytes``
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
from types import TracebackType
from typing import Protocol, Self

#: How many unread messages a subscription keeps before it drops the oldest.
DEFAULT_BUFFER_SIZE = 1000


class PubSubError(Exception):
    """The broker failed, or the pubsub or subscription was used after ``close``."""

    code = "pubsub_error"


class Subscription(Protocol):
    """The messages published to some channels since ``subscribe`` returned.

    Iterate with ``async for``; iteration ends (``StopAsyncIteration``) once the
    subscription is closed. Usable as ``async with``, which closes it on exit.

    Attributes:
        dropped: How many messages the full buffer discarded (oldest first).
    """

    dropped: int

    def __aiter__(self) -> Self:
        """The subscription itself."""
        ...

    async def __anext__(self) -> bytes:
        """Wait for the next message.

        Raises:
            StopAsyncIteration: the subscription is closed.
            PubSubError: the subscription failed for good (after the messages
                it had buffered).
        """
        ...

    async def __aenter__(self) -> Self:
        """The subscription itself."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the subscription."""
        ...

    async def close(self) -> None:
        """Stop delivery and release the connection; idempotent.

        Buffered unread messages are discarded; readers waiting in
        ``__anext__`` stop with ``StopAsyncIteration``.
        """
        ...


class PubSub(Protocol):
    """A broker of messages on named channels: in-process or Redis."""

    async def publish(self, channel: str, message: bytes) -> None:
        """Send ``message`` to every current subscriber of ``channel``.

        Returns once the broker accepted the message, not when it was read.

        Raises:
            ValueError: ``channel`` is not a non-empty string.
            TypeError: ``message`` is not ``bytes``.
            PubSubError: the broker failed or the pubsub is closed.
        """
        ...

    async def subscribe(self, *channels: str) -> Subscription:
        """Subscribe to one or more channels; returns once the subscription is active.

        Raises:
            ValueError: no channel given, or one is not a non-empty string.
            PubSubError: the broker failed or the pubsub is closed.
        """
        ...

    async def close(self) -> None:
        """Close every subscription and release connections; idempotent."""
        ...


def check_channels(channels: Iterable[str]) -> tuple[str, ...]:
    """Validate channel names and return them without duplicates, in order.

    Raises:
        ValueError: no channel, or one that is not a non-empty string.
    """
    names = tuple(dict.fromkeys(check_channel(channel) for channel in channels))
    if not names:
        raise ValueError("subscribe to at least one channel")
    return names


def check_channel(channel: str) -> str:
    """Return ``channel`` unchanged if it is a non-empty string.

    Raises:
        ValueError: it is not.
    """
    if not isinstance(channel, str) or not channel:
        raise ValueError(f"a channel name is a non-empty string, not {channel!r}")
    return channel


def check_message(message: bytes) -> bytes:
    """Return ``message`` unchanged if it is ``bytes``.

    Raises:
        TypeError: it is not (``str`` included: encode it yourself).
    """
    if not isinstance(message, bytes):
        raise TypeError(f"a pubsub message is bytes, not {type(message).__name__}")
    return message


class BufferedSubscription:
    """A :class:`Subscription` over a bounded, drop-oldest buffer.

    Implementations feed it with :meth:`deliver` (never blocks) and release
    their resources in :meth:`_release`, which :meth:`close` calls once.

    Attributes:
        dropped: How many messages the full buffer discarded (oldest first).
    """

    def __init__(self, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        """Start with an empty buffer of ``buffer_size`` messages.

        Raises:
            ValueError: ``buffer_size`` is less than 1.
        """
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, not {buffer_size}")
        self.dropped = 0
        self._messages: collections.deque[bytes] = collections.deque(maxlen=buffer_size)
        self._ready = asyncio.Event()
        self._closed = False
        self._error: PubSubError | None = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def deliver(self, message: bytes) -> None:
        """Buffer a message for the reader (for implementations); never blocks.

        A full buffer discards its oldest message and counts it in ``dropped``.
        Messages delivered after ``close`` or :meth:`fail` are ignored.
        """
        if self._closed or self._error is not None:
            return
        if len(self._messages) == self._messages.maxlen:
            self.dropped += 1  # the deque's maxlen discards the oldest on append
        self._messages.append(message)
        self._ready.set()

    def fail(self, error: PubSubError) -> None:
        """End delivery with ``error`` (for implementations).

        Readers get the messages already buffered, then ``error``.
        """
        if not self._closed and self._error is None:
            self._error = error
            self._ready.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        while not self._messages:
            if self._closed:
                raise StopAsyncIteration
            if self._error is not None:
                raise self._error
            self._ready.clear()
            await self._ready.wait()
        return self._messages.popleft()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop delivery, discard unread messages and release resources; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._messages.clear()
        self._ready.set()
        await self._release()

    async def _release(self) -> None:
        """Release what the implementation holds; called once, by ``close``."""


def open_pubsub(url: str) -> PubSub:
    """Build the pubsub a URL names.

    * ``memory://``: :class:`MemoryPubSub`, in this process only (one worker).
    * ``redis://[[user]:password@]host[:port][/db][?prefix=P&...]`` or
      ``rediss://…`` (TLS): :class:`RedisPubSub`. Channels are namespaced with
      ``prefix`` (default ``keel:``) so several deployments can share one
      Redis; other query parameters are redis-py's (``health_check_interval``,
      ``socket_timeout``, ``max_connections``, ...).

    Nothing connects yet: the first ``publish`` or ``subscribe`` does.

    Raises:
        ValueError: the URL is empty, has another scheme, or is malformed.
    """
    if url == "memory://":
        from keel.storage.pubsub.memory import MemoryPubSub

        return MemoryPubSub()
    if url.startswith(("redis://", "rediss://")):
        from keel.storage.pubsub.redis import RedisPubSub

        return RedisPubSub(url)
    raise ValueError(f"unsupported pubsub URL: {url!r} (use memory://, redis:// or rediss://)")
