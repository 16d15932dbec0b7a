"""The ``PubSub`` contract, run unchanged against memory and a real Redis.

Redis comes from ``KEEL_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``);
each test uses a channel prefix of its own, so runs sharing one Redis do not
see each other. When Redis is unreachable the Redis cases skip, except under
``CI=true``, where a missing service is a failure.

Absence is shown with a fence, never a timeout: after publishing what must not
arrive, the test publishes a fence the subscriber must get; per-channel order
means anything wrongly delivered would have come first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from redis.exceptions import RedisError

from keel.storage.pubsub.memory import MemoryPubSub
from keel.storage.pubsub.pubsub import (
    DEFAULT_BUFFER_SIZE,
    BufferedSubscription,
    PubSub,
    PubSubError,
    Subscription,
    open_pubsub,
)
from keel.storage.pubsub.redis import RedisPubSub

REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WAIT = 10.0  # seconds any single wait may take before the test fails


def _with_params(url: str, **params: str) -> str:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _prefix() -> str:
    return f"keeltest-{secrets.token_hex(6)}:"


async def _require_redis(url: str = REDIS_URL) -> None:
    client = redis.asyncio.from_url(url, socket_connect_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI but unreachable: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def pubsub(request: pytest.FixtureRequest) -> AsyncIterator[PubSub]:
    """A fresh pubsub of each implementation (Redis under a prefix of its own)."""
    if request.param == "memory":
        broker = open_pubsub("memory://")
    else:
        await _require_redis()
        broker = open_pubsub(_with_params(REDIS_URL, prefix=_prefix()))
    try:
        yield broker
    finally:
        await broker.close()


@pytest.fixture
async def redis_url() -> str:
    """The test Redis URL with a fresh channel prefix (Redis-only tests)."""
    await _require_redis()
    return _with_params(REDIS_URL, prefix=_prefix())


async def _next(subscription: Subscription) -> bytes:
    async with asyncio.timeout(WAIT):
        return await anext(subscription)


async def _take(subscription: Subscription, count: int) -> list[bytes]:
    return [await _next(subscription) for _ in range(count)]


async def _drain(subscription: Subscription) -> list[bytes]:
    async with asyncio.timeout(WAIT):
        return [message async for message in subscription]


def _buffered_event(subscription: Subscription, last: bytes) -> asyncio.Event:
    """An event set once ``last`` is in the subscription's buffer.

    Both implementations feed their buffer through ``BufferedSubscription.deliver``
    (Redis from a reader task, asynchronously); the test observes that call.
    """
    assert isinstance(subscription, BufferedSubscription)
    buffered = asyncio.Event()
    deliver = subscription.deliver

    def observe(message: bytes) -> None:
        deliver(message)
        if message == last:
            buffered.set()

    subscription.deliver = observe  # type: ignore[method-assign]
    return buffered


# Delivery.


async def test_publish_subscribe_round_trip(pubsub: PubSub) -> None:
    """A message published to a channel reaches its subscriber."""
    async with await pubsub.subscribe("news") as subscription:
        await pubsub.publish("news", b"hello")

        assert b"hello" == await _next(subscription)


async def test_message_published_right_after_subscribe_is_received(pubsub: PubSub) -> None:
    """subscribe returns only once active: the very next publish is delivered."""
    received = []
    for attempt in range(20):
        async with await pubsub.subscribe(f"c{attempt}") as subscription:
            await pubsub.publish(f"c{attempt}", b"first")
            received.append(await _next(subscription))

    assert [b"first"] * 20 == received


async def test_one_subscription_covers_several_channels(pubsub: PubSub) -> None:
    """One subscription receives what is published to each of its channels."""
    async with await pubsub.subscribe("a", "b", "c") as subscription:
        for channel in ("a", "b", "c"):
            await pubsub.publish(channel, channel.encode())

        assert [b"a", b"b", b"c"] == sorted(await _take(subscription, 3))


async def test_duplicate_channels_deliver_once(pubsub: PubSub) -> None:
    """A channel named twice in one subscribe call delivers each message once."""
    async with await pubsub.subscribe("a", "a") as subscription:
        await pubsub.publish("a", b"1")
        await pubsub.publish("a", b"2")

        assert [b"1", b"2"] == await _take(subscription, 2)


async def test_every_subscriber_gets_every_message(pubsub: PubSub) -> None:
    """Two subscriptions to one channel each receive all of its messages."""
    first = await pubsub.subscribe("news")
    second = await pubsub.subscribe("news")
    sent = [str(i).encode() for i in range(10)]
    for message in sent:
        await pubsub.publish("news", message)

    assert (sent, sent) == (await _take(first, 10), await _take(second, 10))


async def test_order_within_a_channel_is_kept(pubsub: PubSub) -> None:
    """1000 messages from one publisher arrive in the order they were sent."""
    async with await pubsub.subscribe("news") as subscription:
        sent = [str(i).encode() for i in range(1000)]
        for message in sent:
            await pubsub.publish("news", message)

        assert (sent, 0) == (await _take(subscription, 1000), subscription.dropped)


async def test_other_channels_are_not_received(pubsub: PubSub) -> None:
    """Messages to other channels, even ones sharing a name prefix, stay away."""
    async with await pubsub.subscribe("a") as subscription:
        for channel in ("b", "ab", "a:", "A"):
            await pubsub.publish(channel, b"not for a")
        await pubsub.publish("a", b"fence")

        assert b"fence" == await _next(subscription)


async def test_binary_payloads_round_trip(pubsub: PubSub) -> None:
    """Every byte value, and the empty message, arrive unchanged."""
    payloads = [bytes(range(256)), b"", b"\x00\r\n\xff" * 1000]
    async with await pubsub.subscribe("bin") as subscription:
        for payload in payloads:
            await pubsub.publish("bin", payload)

        assert payloads == await _take(subscription, 3)


async def test_unicode_channel_names_work(pubsub: PubSub) -> None:
    """Channel names are any non-empty text, including non-ASCII."""
    async with await pubsub.subscribe("café/ü", "x y") as subscription:
        await pubsub.publish("café/ü", b"1")
        await pubsub.publish("x y", b"2")

        assert [b"1", b"2"] == sorted(await _take(subscription, 2))


# Closing.


async def test_close_stops_delivery_and_leaves_no_task(pubsub: PubSub) -> None:
    """After close the iteration ends, nothing more arrives, and no task remains."""
    tasks_before = asyncio.all_tasks()
    subscription = await pubsub.subscribe("news")
    await pubsub.publish("news", b"before")
    assert b"before" == await _next(subscription)
    await pubsub.publish("news", b"unread")

    await subscription.close()
    await pubsub.publish("news", b"after")

    assert [] == await _drain(subscription)
    assert tasks_before == asyncio.all_tasks()


async def test_close_is_idempotent(pubsub: PubSub) -> None:
    """Closing a subscription twice is harmless."""
    subscription = await pubsub.subscribe("news")
    await subscription.close()
    await subscription.close()

    assert [] == await _drain(subscription)


async def test_close_wakes_a_waiting_reader(pubsub: PubSub) -> None:
    """A reader blocked waiting for a message ends when the subscription closes."""
    subscription = await pubsub.subscribe("news")
    got_first = asyncio.Event()

    async def read() -> list[bytes]:
        received = [await anext(subscription)]
        got_first.set()
        received.extend([message async for message in subscription])
        return received

    reader = asyncio.create_task(read())
    await pubsub.publish("news", b"1")
    async with asyncio.timeout(WAIT):
        await got_first.wait()  # the reader is now waiting for a second message
    await subscription.close()

    async with asyncio.timeout(WAIT):
        assert [b"1"] == await reader


async def test_closing_the_pubsub_ends_subscriptions_and_use(pubsub: PubSub) -> None:
    """Closing the pubsub closes its subscriptions; publish and subscribe then fail."""
    tasks_before = asyncio.all_tasks()
    subscription = await pubsub.subscribe("news")

    await pubsub.close()

    assert [] == await _drain(subscription)
    assert tasks_before == asyncio.all_tasks()
    with pytest.raises(PubSubError):
        await pubsub.publish("news", b"x")
    with pytest.raises(PubSubError):
        await pubsub.subscribe("news")


# The bounded buffer.


async def test_full_buffer_keeps_the_newest_and_counts_the_dropped(pubsub: PubSub) -> None:
    """A reader that falls 5000 behind gets the newest 1000; dropped counts the rest."""
    total = 5 * DEFAULT_BUFFER_SIZE
    async with await pubsub.subscribe("news") as subscription:
        all_buffered = _buffered_event(subscription, str(total - 1).encode())
        for i in range(total):
            await pubsub.publish("news", str(i).encode())
        async with asyncio.timeout(WAIT):
            await all_buffered.wait()

        buffered = await _take(subscription, DEFAULT_BUFFER_SIZE)
        await pubsub.publish("news", b"fence")  # nothing is left before it
        fence = await _next(subscription)

    newest = [str(i).encode() for i in range(total - DEFAULT_BUFFER_SIZE, total)]
    assert (newest, b"fence") == (buffered, fence)
    assert total - DEFAULT_BUFFER_SIZE == subscription.dropped


# Validation.


@pytest.mark.parametrize("channel", ["", 1, None, b"news"])
async def test_invalid_channel_names_are_rejected(pubsub: PubSub, channel: object) -> None:
    """A channel that is not a non-empty string is a ValueError."""
    with pytest.raises(ValueError, match="channel"):
        await pubsub.publish(channel, b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channel"):
        await pubsub.subscribe("ok", channel)  # type: ignore[arg-type]


async def test_subscribe_needs_a_channel(pubsub: PubSub) -> None:
    """subscribe() with no channel is a ValueError."""
    with pytest.raises(ValueError, match="at least one channel"):
        await pubsub.subscribe()


@pytest.mark.parametrize("message", ["text", 1, None, bytearray(b"x")])
async def test_messages_must_be_bytes(pubsub: PubSub, message: object) -> None:
    """A message that is not bytes is a TypeError."""
    with pytest.raises(TypeError, match="bytes"):
        await pubsub.publish("news", message)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "memory",
        "memory://x",
        "http://127.0.0.1:6379",
        "unix:///tmp/redis.sock",
        "redis://127.0.0.1:notaport/0",
        "redis://127.0.0.1:6379/zero",
        "redis://127.0.0.1:6379/0#frag",
        "redis://127.0.0.1:6379/0?prefix=a:&prefix=b:",
        "redis://127.0.0.1:6379/0?decode_responses=true",
        "redis://127.0.0.1:6379/0?no_such_option=1",
        "redis://127.0.0.1:6379/0?health_check_interval=often",
    ],
)
def test_invalid_urls_are_rejected(url: str) -> None:
    """An unsupported or malformed URL is a ValueError, before any connection."""
    with pytest.raises(ValueError):
        open_pubsub(url)


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("redis://127.0.0.1:6379/0", "keel:"),
        ("redis://127.0.0.1", "keel:"),
        ("rediss://user:secret@redis.example:6380/2?prefix=app1:", "app1:"),
        ("redis://127.0.0.1:6379/0?health_check_interval=5&prefix=", ""),
    ],
)
async def test_redis_urls_choose_redis_and_prefix(url: str, prefix: str) -> None:
    """redis:// and rediss:// URLs open a RedisPubSub; ?prefix= sets its prefix."""
    broker = open_pubsub(url)
    try:
        assert (RedisPubSub, prefix) == (type(broker), getattr(broker, "prefix", None))
    finally:
        await broker.close()


def test_memory_url_chooses_memory() -> None:
    """memory:// opens an in-process MemoryPubSub."""
    assert MemoryPubSub is type(open_pubsub("memory://"))


# Redis only: across instances, prefixes, failures.


async def test_two_redis_instances_talk_to_each_other(redis_url: str) -> None:
    """Two RedisPubSub instances (as in two processes) exchange messages both ways."""
    left, right = RedisPubSub(redis_url), RedisPubSub(redis_url)
    try:
        at_left = await left.subscribe("to-left")
        at_right = await right.subscribe("to-right")
        await left.publish("to-right", b"hi right")
        await right.publish("to-left", b"hi left")

        assert (b"hi right", b"hi left") == (await _next(at_right), await _next(at_left))
    finally:
        await left.close()
        await right.close()


async def test_prefixes_isolate_deployments(redis_url: str) -> None:
    """Two prefixes on one Redis never see each other's messages."""
    first, second = RedisPubSub(redis_url), RedisPubSub(_with_params(REDIS_URL, prefix=_prefix()))
    raw = redis.asyncio.from_url(REDIS_URL)
    try:
        at_first = await first.subscribe("news")
        at_second = await second.subscribe("news")
        await first.publish("news", b"one")
        await second.publish("news", b"two")
        await first.publish("news", b"fence one")
        await second.publish("news", b"fence two")

        assert [b"one", b"fence one"] == await _take(at_first, 2)
        assert [b"two", b"fence two"] == await _take(at_second, 2)
        assert [(f"{first.prefix}news".encode(), 1)] == await raw.pubsub_numsub(
            first.prefix + "news"
        )
    finally:
        await raw.aclose()
        await first.close()
        await second.close()


async def test_subscription_survives_a_killed_connection(redis_url: str) -> None:
    """When Redis drops the subscriber's connection it reconnects and resubscribes."""
    name = f"keeltest-{secrets.token_hex(6)}"
    broker = RedisPubSub(_with_params(redis_url, client_name=name))
    raw = redis.asyncio.from_url(REDIS_URL)
    try:
        subscription = await broker.subscribe("news")
        killed = [
            client["id"]
            for client in await raw.client_list()
            if client.get("name") == name and client.get("sub") != "0"
        ]
        for client_id in killed:
            await raw.client_kill_filter(_id=client_id)

        # What is published before the resubscription is lost: repeat until one lands.
        async with asyncio.timeout(WAIT):
            while True:
                await broker.publish("news", b"again")
                try:
                    async with asyncio.timeout(0.2):
                        await anext(subscription)
                    break
                except TimeoutError:
                    continue
        await broker.publish("news", b"fence")
        while (message := await _next(subscription)) == b"again":
            pass

        assert (1, b"fence") == (len(killed), message)
    finally:
        await raw.aclose()
        await broker.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_unreachable_redis_raises_pubsub_error() -> None:
    """With nothing listening, publish and subscribe raise PubSubError and leak no task."""
    tasks_before = asyncio.all_tasks()
    broker = RedisPubSub(f"redis://127.0.0.1:{_free_port()}/0?socket_connect_timeout=1")
    try:
        with pytest.raises(PubSubError, match="publish"):
            await broker.publish("news", b"x")
        with pytest.raises(PubSubError, match="subscribe"):
            await broker.subscribe("news")
    finally:
        await broker.close()

    assert tasks_before == asyncio.all_tasks()


class _Flag(logging.Handler):
    """Sets an asyncio event when a record is logged (from the loop's thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.event.set()


async def _start_redis_server(port: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        "redis-server",
        *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    async with asyncio.timeout(WAIT):
        while b"Ready to accept connections" not in await process.stdout.readline():
            if process.returncode is not None:
                pytest.fail("redis-server did not start")
    return process


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
    await process.communicate()


async def test_subscription_survives_a_server_restart() -> None:
    """After an outage longer than redis-py's retries, the reader still reconnects."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required under CI")
        pytest.skip("redis-server not installed")
    port = _free_port()
    server = await _start_redis_server(port)
    broker = RedisPubSub(f"redis://127.0.0.1:{port}/0")
    flag = _Flag()
    logger = logging.getLogger("keel.storage.pubsub.redis")
    logger.addHandler(flag)
    try:
        subscription = await broker.subscribe("news")
        await _stop(server)
        async with asyncio.timeout(30):  # redis-py retries first, with backoff
            await flag.event.wait()  # the reader gave up on redis-py and backs off
        server = await _start_redis_server(port)

        async with asyncio.timeout(30):
            while True:
                await broker.publish("news", b"again")
                try:
                    async with asyncio.timeout(0.2):
                        await anext(subscription)
                    break
                except TimeoutError:
                    continue

        await _stop(server)
        with pytest.raises(PubSubError):
            await broker.publish("news", b"nobody home")
    finally:
        logger.removeHandler(flag)
        await broker.close()
        await _stop(server)
