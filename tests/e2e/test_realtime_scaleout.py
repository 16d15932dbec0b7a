"""Realtime across nodes: two ``keel serve`` processes sharing one database and Redis.

Each node runs one worker on its own port; both use the same database (a
PostgreSQL schema, or one SQLite data folder) and ``KEEL_REDIS_URL`` with a
channel prefix of the test's own. A stream held by node A gets the events of
writes made through node B, and ``POST /api/realtime`` for A's client may
land on B (the subscription table is shared), also when many land at once
on both nodes. A client resuming on the other node with ``Last-Event-ID``
gets what it missed. A subscriber that stops reading is disconnected while
one that reads on the same node gets every event.

Redis must answer at ``KEEL_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``); without it these tests skip, except under
``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.exceptions import RedisError

from tests.e2e.conftest import (
    Server,
    create_superuser,
    keel_env,
    public_collection,
    start_server,
    superuser_headers,
)
from tests.sse import SSEClient

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NOTES = public_collection(
    "notes", {"name": "title", "type": "text"}, {"name": "payload", "type": "text"}
)
#: Events produced while the slow subscriber reads nothing; each carries
#: PAYLOAD bytes, so together they overflow any socket buffer and the
#: per-client queue (1000 messages).
BURST = 3000
BATCH = 100
PAYLOAD = 2000
SETTLE_SECONDS = 60.0


@dataclass(frozen=True)
class Cluster:
    """Two single-worker nodes of one deployment."""

    a: Server
    b: Server
    #: The Redis channel prefix the nodes use.
    prefix: str


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client of the test Redis (asked first: skips, or fails under CI, when it is down)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2.0, socket_timeout=5.0)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        client.close()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI but unreachable: {exc}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def cluster(tmp_path: Path, database_url: str, redis_client: redis.Redis) -> Iterator[Cluster]:
    """Nodes A and B: one database (one SQLite folder, or one PostgreSQL schema), one Redis."""
    data_dir = tmp_path / "keel_data"
    prefix = f"keel-test-{secrets.token_hex(4)}:"
    env = keel_env(database_url)
    env["KEEL_REDIS_URL"] = f"{REDIS_URL}?prefix={prefix}"
    create_superuser(data_dir, env)
    # One after the other: the second node starts on a database already set up.
    with (
        start_server(data_dir, env, tmp_path / "server-a.log", workers=1) as a,
        start_server(data_dir, env, tmp_path / "server-b.log", workers=1) as b,
    ):
        yield Cluster(a, b, prefix)


@pytest.fixture
async def b_http(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    """A client of node B."""
    async with httpx.AsyncClient(base_url=cluster.b.base_url, timeout=60.0) as client:
        yield client


@pytest.fixture
async def b_su(b_http: httpx.AsyncClient) -> dict[str, str]:
    """Superuser headers, from a login through node B."""
    return await superuser_headers(b_http)


@pytest.fixture
async def notes(b_http: httpx.AsyncClient, b_su: dict[str, str]) -> None:
    created = await b_http.post("/api/collections", json=NOTES, headers=b_su)
    assert 200 == created.status_code, created.text


async def test_stream_on_a_gets_writes_through_b(
    cluster: Cluster, b_http: httpx.AsyncClient, redis_client: redis.Redis, notes: None
) -> None:
    """Subscriptions set through B apply to A's client; B's writes reach A's stream."""
    async with SSEClient(cluster.a.base_url) as sse:
        listening = dict(redis_client.pubsub_numsub(f"{cluster.prefix}events"))
        assert 2 == listening[f"{cluster.prefix}events".encode()]  # both nodes, on Redis
        subscribed = await b_http.post(
            "/api/realtime", json={"clientId": sse.client_id, "subscriptions": ["notes/*"]}
        )
        assert 204 == subscribed.status_code, subscribed.text
        record = (await b_http.post("/api/collections/notes/records", json={"title": "a"})).json()
        url = f"/api/collections/notes/records/{record['id']}"
        assert 200 == (await b_http.patch(url, json={"title": "b"})).status_code
        assert 204 == (await b_http.delete(url)).status_code
        got = [await sse.next(SETTLE_SECONDS) for _ in range(3)]
        assert [
            ("notes/*", "create", record["id"]),
            ("notes/*", "update", record["id"]),
            ("notes/*", "delete", record["id"]),
        ] == [(e.name, e.data["action"], e.data["record"]["id"]) for e in got]

        # Narrowed through B again: only the watched record's events come.
        kept = (await b_http.post("/api/collections/notes/records", json={"title": "k"})).json()
        assert "create" == (await sse.next(SETTLE_SECONDS)).data["action"]
        topic = f"notes/{kept['id']}"
        narrowed = await b_http.post(
            "/api/realtime", json={"clientId": sse.client_id, "subscriptions": [topic]}
        )
        assert 204 == narrowed.status_code, narrowed.text
        await b_http.post("/api/collections/notes/records", json={"title": "other"})
        await b_http.patch(f"/api/collections/notes/records/{kept['id']}", json={"title": "k2"})
        event = await sse.next(SETTLE_SECONDS)
        assert (topic, "update", "k2") == (
            event.name,
            event.data["action"],
            event.data["record"]["title"],
        )
        assert [] == await sse.none_within(0.5)


class StalledStream:
    """A raw ``GET /api/realtime`` with a tiny receive buffer, read only when asked."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received = b""

    @classmethod
    async def open(cls, base_url: str) -> StalledStream:
        host, _, port = base_url.removeprefix("http://").partition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        # limit: asyncio stops reading the socket once 2 * limit bytes wait.
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        writer.write(
            f"GET /api/realtime HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Accept: text/event-stream\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        return cls(reader, writer)

    async def client_id(self) -> str:
        async with asyncio.timeout(10.0):
            while (found := re.search(rb'"clientId":"([^"]+)"', self.received)) is None:
                chunk = await self.reader.read(4096)
                assert chunk, "the stream ended before PB_CONNECT"
                self.received += chunk
        return found.group(1).decode()

    async def read_to_end(self, seconds: float) -> bool:
        """Read what is left; whether the response ended (its last chunk, or EOF) in time."""
        try:
            async with asyncio.timeout(seconds):
                while not self.received.endswith(b"\r\n0\r\n\r\n"):
                    chunk = await self.reader.read(65536)
                    if not chunk:
                        return True
                    self.received += chunk
                return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.writer.close()


async def produce(http: httpx.AsyncClient, su: dict[str, str]) -> list[str]:
    """BURST records created through ``/api/batch``; their ids in order."""
    enabled = await http.patch(
        "/api/settings",
        json={"batch": {"enabled": True, "maxRequests": BATCH, "timeout": 60}},
        headers=su,
    )
    assert 200 == enabled.status_code, enabled.text
    ids: list[str] = []
    for start in range(0, BURST, BATCH):
        requests: list[dict[str, Any]] = [
            {
                "method": "POST",
                "url": "/api/collections/notes/records",
                "body": {"title": str(n), "payload": "x" * PAYLOAD},
            }
            for n in range(start, start + BATCH)
        ]
        response = await http.post("/api/batch", json={"requests": requests}, headers=su)
        assert 200 == response.status_code, response.text
        ids.extend(item["body"]["id"] for item in response.json())
    return ids


async def test_slow_consumer_is_disconnected_and_others_get_everything(
    cluster: Cluster, b_http: httpx.AsyncClient, b_su: dict[str, str], notes: None
) -> None:
    """A subscriber that stops reading loses its stream; a reading one on its node gets all."""
    stalled = await StalledStream.open(cluster.a.base_url)
    try:
        async with SSEClient(cluster.a.base_url) as reading:
            client_id = await stalled.client_id()
            for cid in (client_id, reading.client_id):
                subscribed = await b_http.post(
                    "/api/realtime", json={"clientId": cid, "subscriptions": ["notes/*"]}
                )
                assert 204 == subscribed.status_code, subscribed.text
            created = await produce(b_http, b_su)
            assert BURST == len(created)
            got: list[str] = []
            async with asyncio.timeout(SETTLE_SECONDS):
                while len(got) < BURST:
                    event = await reading.next(SETTLE_SECONDS)
                    assert "create" == event.data["action"]
                    got.append(event.data["record"]["id"])
            assert created == got
        assert await stalled.read_to_end(SETTLE_SECONDS), "the stalled stream was not ended"
        delivered = stalled.received.count(b"event:notes/*")
        assert delivered < BURST, delivered
    finally:
        stalled.close()


async def test_concurrent_subscriptions_all_take_effect(
    cluster: Cluster, b_http: httpx.AsyncClient, notes: None
) -> None:
    """Many clients of A subscribing at once, through A and B, all get the next event."""
    count = 120
    async with (
        contextlib.AsyncExitStack() as stack,
        httpx.AsyncClient(base_url=cluster.a.base_url, timeout=60.0) as a_http,
    ):
        clients = [
            await stack.enter_async_context(SSEClient(cluster.a.base_url)) for _ in range(count)
        ]
        # Subscription changes committed out of stamp order (two nodes race
        # for the database) must all apply before the write's event.
        responses = await asyncio.gather(
            *(
                (a_http, b_http)[n % 2].post(
                    "/api/realtime", json={"clientId": c.client_id, "subscriptions": ["notes/*"]}
                )
                for n, c in enumerate(clients)
            )
        )
        assert [204] * count == [r.status_code for r in responses]
        record = (await b_http.post("/api/collections/notes/records", json={"title": "a"})).json()

        async def first_id(client: SSEClient) -> str | None:
            try:
                event = await client.next(SETTLE_SECONDS / 4)
            except TimeoutError:
                return None
            record_id: str = event.data["record"]["id"]
            return record_id

        got = await asyncio.gather(*(first_id(c) for c in clients))
        assert [] == [n for n, record_id in enumerate(got) if record_id != record["id"]]


async def test_resume_on_the_other_node_while_events_flow(
    cluster: Cluster, b_http: httpx.AsyncClient, notes: None
) -> None:
    """A client resuming on B with Last-Event-ID gets what it missed, other events meanwhile too."""
    async with SSEClient(cluster.a.base_url) as first:
        await first.subscribe(["notes/*"])
        seen = (await b_http.post("/api/collections/notes/records", json={"title": "0"})).json()
        last = await first.next(SETTLE_SECONDS)
        assert seen["id"] == last.data["record"]["id"]
    missed = [
        (await b_http.post("/api/collections/notes/records", json={"title": str(n)})).json()["id"]
        for n in range(1, 4)
    ]
    async with (
        SSEClient(cluster.b.base_url) as observer,
        SSEClient(cluster.b.base_url, {"Last-Event-ID": last.id}) as again,
    ):
        await observer.subscribe(["notes/*"])
        # Events B dispatches between the reconnect and the subscription.
        between = [
            (await b_http.post("/api/collections/notes/records", json={"title": t})).json()["id"]
            for t in ("between-1", "between-2")
        ]
        assert between == [
            (await observer.next(SETTLE_SECONDS)).data["record"]["id"] for _ in between
        ]
        await again.subscribe(["notes/*"])
        expected = [*missed, *between]
        got = [(await again.next(SETTLE_SECONDS)).data["record"]["id"] for _ in expected]
        assert expected == got
        assert [] == await again.none_within(0.5)
