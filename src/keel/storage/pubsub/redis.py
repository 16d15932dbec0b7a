"""``RedisPubSub``: channels shared by every process and node that reach one Redis.

One connection pool serves the instance. ``publish`` borrows a pooled
connection per call; each subscription holds one pooled connection (a Redis
``PubSub``) plus a reader task that moves its messages into the subscription's
bounded buffer, so a slow reader never makes Redis buffer for it.

Connection loss: redis-py retries each operation (reconnecting, with jittered
exponential backoff) and, on reconnect, resubscribes the connection to its
channels; when its retries are spent the reader keeps trying, backing off up
to 5 s, for as long as the subscription is open. An idle subscription pings
Redis every ``health_check_interval`` seconds (default 30) so a dead connection
is noticed without traffic; TCP keepalive is on. Messages published while a
subscription is disconnected are lost (see the delivery contract in
:mod:`keel.storage.pubsub.pubsub`).

Every Redis channel is ``prefix + channel``; the prefix (default ``keel:``,
``?prefix=`` in the URL) lets several deployments share one Redis.

Note:
    Each open subscription holds a connection, and the pool allows 100 by
    default (``?max_connections=N``): subscribe once per process to every
    channel needed and fan out in process, not once per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import urllib.parse
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.client import PubSub as RedisClientPubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from keel.storage.pubsub.pubsub import (
    DEFAULT_BUFFER_SIZE,
    BufferedSubscription,
    PubSubError,
    check_channel,
    check_channels,
    check_message,
)

log = logging.getLogger(__name__)

#: The channel prefix when the URL names none.
DEFAULT_PREFIX = "keel:"
#: Seconds an idle connection waits before it pings Redis (``?health_check_interval=``).
HEALTH_CHECK_INTERVAL = 30
#: Seconds ``subscribe`` waits for Redis to confirm the subscription.
CONFIRM_TIMEOUT = 10.0
#: The reader's backoff after redis-py gave up reconnecting: base and cap, in seconds.
_RECONNECT_BASE = 0.1
_RECONNECT_CAP = 5.0
#: URL parameters that would turn message bytes into text, or change the protocol.
_FORBIDDEN_PARAMS = {"decode_responses", "encoding", "encoding_errors", "protocol"}
_DB_PATH = re.compile(r"/?|/\d+")
#: Driver failures translated to ``PubSubError`` (redis-py raises ``OSError``
#: subclasses from a few socket paths, and ``TimeoutError`` from its own timeouts).
_FAILURES = (RedisError, OSError)


def _pool_options() -> dict[str, Any]:
    # URL parameters override these (redis-py's from_url gives the URL precedence).
    return {
        "health_check_interval": HEALTH_CHECK_INTERVAL,
        "socket_connect_timeout": 5.0,
        "socket_timeout": 10.0,
        "socket_keepalive": True,
        "retry": Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), 3),
    }


def split_url(url: str) -> tuple[str, str]:
    """Split a Keel Redis URL into redis-py's URL and the channel prefix.

    Raises:
        ValueError: not ``redis://`` or ``rediss://``, a bad port or database,
            a fragment, a repeated ``prefix``, or a parameter that would
            decode messages into text.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError("a Redis pubsub URL starts with redis:// or rediss://")
    if parts.fragment:
        raise ValueError("a Redis pubsub URL has no fragment")
    try:
        parts.port  # noqa: B018  (urllib validates the port lazily)
    except ValueError:
        raise ValueError("a Redis pubsub URL has an invalid port") from None
    if _DB_PATH.fullmatch(parts.path) is None:
        raise ValueError(f"a Redis pubsub URL path is a database number, not {parts.path!r}")
    prefixes: list[str] = []
    rest: list[tuple[str, str]] = []
    for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if name in _FORBIDDEN_PARAMS:
            raise ValueError(f"a Redis pubsub URL cannot set {name!r}")
        if name == "prefix":
            prefixes.append(value)
        else:
            rest.append((name, value))
    if len(prefixes) > 1:
        raise ValueError("a Redis pubsub URL has one prefix at most")
    prefix = prefixes[0] if prefixes else DEFAULT_PREFIX
    redis_url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(rest)))
    return redis_url, prefix


class RedisSubscription(BufferedSubscription):
    """A subscription to channels of a :class:`RedisPubSub`, with its reader task."""

    def __init__(
        self,
        owner: RedisPubSub,
        pubsub: RedisClientPubSub,
        keys: tuple[str, ...],
        buffer_size: int,
        poll: float,
    ) -> None:
        super().__init__(buffer_size)
        self._owner = owner
        self._pubsub = pubsub
        self._keys = keys
        self._poll = poll
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe, wait for Redis to confirm every channel, start the reader.

        Raises:
            PubSubError: Redis failed or did not confirm within ``CONFIRM_TIMEOUT``.
        """
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await self._confirm()
        except BaseException as exc:
            await self._disconnect()
            if isinstance(exc, (*_FAILURES, TimeoutError)):
                raise PubSubError(f"subscribe failed: {exc or type(exc).__name__}") from exc
            raise
        self._reader = asyncio.create_task(self._read(), name=f"keel pubsub reader {self._keys}")

    async def _confirm(self) -> None:
        await self._pubsub.subscribe(*self._keys)
        pending = {key.encode() for key in self._keys}
        while pending:
            message = await self._pubsub.get_message(timeout=CONFIRM_TIMEOUT)
            if message is None:
                continue
            if message["type"] == "subscribe":
                pending.discard(message["channel"])
            elif message["type"] == "message":
                # A message on a channel confirmed before the others.
                self.deliver(message["data"])

    async def _read(self) -> None:
        failures = 0
        try:
            while True:
                try:
                    message = await self._pubsub.get_message(timeout=self._poll)
                except _FAILURES as exc:
                    # redis-py's own retries are spent: keep reconnecting, slower.
                    failures += 1
                    delay = min(_RECONNECT_CAP, _RECONNECT_BASE * 2 ** min(failures, 8))
                    log.warning("pubsub connection lost (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                if message is not None and message["type"] == "message":
                    self.deliver(message["data"])
        except Exception as exc:  # a bug, not a connection failure: end, loudly
            log.exception("pubsub reader failed")
            self.fail(PubSubError(f"the subscription failed: {exc!r}"))

    async def _release(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._disconnect()
        self._owner.remove(self)

    async def _disconnect(self) -> None:
        with contextlib.suppress(*_FAILURES):
            # redis-py leaves PubSub.aclose unannotated.
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]


class RedisPubSub:
    """A :class:`~keel.storage.pubsub.pubsub.PubSub` over Redis PUBLISH/SUBSCRIBE.

    Attributes:
        prefix: Prepended to every channel name in Redis.
    """

    def __init__(self, url: str, *, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        """Configure a pool for ``url``; nothing connects until first use.

        Args:
            url: ``redis://`` or ``rediss://`` URL; ``?prefix=`` sets
                :attr:`prefix`, other parameters go to redis-py.
            buffer_size: Unread messages each subscription keeps.

        Raises:
            ValueError: the URL is malformed or has an unknown parameter, or
                ``buffer_size`` is less than 1.
        """
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, not {buffer_size}")
        redis_url, self.prefix = split_url(url)
        try:
            pool = ConnectionPool.from_url(redis_url, **_pool_options())
            # Unknown parameters would otherwise fail at the first connection.
            pool.connection_class(**pool.connection_kwargs)
        except (TypeError, ValueError, RedisError) as exc:
            raise ValueError(f"invalid Redis pubsub URL: {exc}") from None
        self._pool = pool
        self._client = Redis(connection_pool=pool)
        self._buffer_size = buffer_size
        interval = pool.connection_kwargs.get("health_check_interval")
        # The reader wakes this often so redis-py can send its health-check
        # ping; an explicit read timeout also keeps ``socket_timeout`` (which
        # some redis-py versions apply to blocking reads) from firing when idle.
        self._poll = float(interval or HEALTH_CHECK_INTERVAL)
        self._subscriptions: set[RedisSubscription] = set()
        self._closed = False

    async def publish(self, channel: str, message: bytes) -> None:
        """PUBLISH ``message`` on ``prefix + channel``.

        Raises:
            ValueError: ``channel`` is not a non-empty string.
            TypeError: ``message`` is not ``bytes``.
            PubSubError: Redis failed (after retries) or the pubsub is closed.
        """
        check_channel(channel)
        check_message(message)
        self._check_open()
        try:
            await self._client.publish(self.prefix + channel, message)
        except _FAILURES as exc:
            raise PubSubError(f"publish to {channel!r} failed: {exc}") from exc

    async def subscribe(self, *channels: str) -> RedisSubscription:
        """SUBSCRIBE to ``prefix + channel`` for each channel, once Redis confirms.

        Raises:
            ValueError: no channel given, or one is not a non-empty string.
            PubSubError: Redis failed or the pubsub is closed.
        """
        names = check_channels(channels)
        self._check_open()
        keys = tuple(self.prefix + name for name in names)
        subscription = RedisSubscription(
            self, self._client.pubsub(), keys, self._buffer_size, self._poll
        )
        await subscription.start()
        self._subscriptions.add(subscription)
        if self._closed:  # closed while Redis was confirming
            await subscription.close()
            raise PubSubError("the pubsub is closed")
        return subscription

    def remove(self, subscription: RedisSubscription) -> None:
        """Forget a closed subscription (its ``close`` calls this)."""
        self._subscriptions.discard(subscription)

    async def close(self) -> None:
        """Close every subscription and the pool; idempotent."""
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.close()
        with contextlib.suppress(*_FAILURES):
            await self._client.aclose(close_connection_pool=False)
            await self._pool.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise PubSubError("the pubsub is closed")
