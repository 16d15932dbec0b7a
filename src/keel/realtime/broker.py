"""The realtime broker of one worker process: its SSE clients and the event fan-out.

Events come from the outbox (:mod:`keel.core.outbox`), never from memory, so
every worker and node delivers the same committed changes. A worker learns
that something changed from the ``PubSub`` (a message on ``events``), and, as
a fallback that needs no shared channel, by polling: SQLite's data version is
checked every few milliseconds, PostgreSQL is polled at ``poll_interval``.

A client's subscriptions live in ``_keel_realtime`` (so ``POST
/api/realtime`` may land on any worker); the worker holding the client's
stream reloads them when they change.

Each client has a bounded queue. A client that cannot keep up is
disconnected (it reconnects and resumes from its last event id); nobody else
waits for it, and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from keel.core.actions.records import find_record
from keel.core.app import App
from keel.core.collection import Collection
from keel.core.errors import BadRequestError, ForbiddenError, KeelError, NotFoundError
from keel.core.outbox import Cursor, OutboxEvent, events_after, last_id, oldest_id, prune
from keel.core.presentation import present, projection_of
from keel.core.record import Record
from keel.core.request import ANONYMOUS, Auth, RequestInfo
from keel.core.rule import ALL_ROWS
from keel.realtime.access import condition, matches
from keel.storage.pubsub.pubsub import PubSubError

log = logging.getLogger("keel.realtime")

EVENTS_CHANNEL = "events"
CLIENTS_CHANNEL = "realtime-clients"
#: Messages a client may have waiting before it is disconnected.
CLIENT_BUFFER = 1000
MAX_SUBSCRIPTIONS = 1000
MAX_TOPIC_LENGTH = 2500
#: How far back subscription changes are read again for ones that committed
#: late. Note: it must exceed commit delays plus the clock skew between nodes.
CLIENTS_LOOKBACK_SECONDS = 10.0
#: How often a worker with clients looks back when no event makes it.
RECHECK_SECONDS = 1.0
#: Event names (SSE ``event:``) Keel sends besides the subscription topics.
CONNECT_EVENT = "PB_CONNECT"
#: The topic of the SDKs' all-in-one OAuth2 flow: the provider's redirect
#: (``/api/oauth2-redirect``) is handed to the client whose id is the ``state``.
OAUTH2_TOPIC = "@oauth2"
RESYNC_EVENT = "KEEL_RESYNC"


@dataclass
class Topic:
    """One subscription: ``collection/*`` or ``collection/recordId``, with options."""

    name: str
    collection: str
    record_id: str
    query: dict[str, str]
    headers: dict[str, str]


def parse_topic(text: Any) -> Topic:
    """Parse a subscription string, with the SDKs' ``?options={query,headers}`` suffix.

    Raises:
        BadRequestError: not a ``collection/*`` or ``collection/id`` topic.
    """
    if not isinstance(text, str) or not text or len(text) > MAX_TOPIC_LENGTH:
        raise BadRequestError("Invalid subscription topic.")
    if text == OAUTH2_TOPIC:
        return Topic(text, OAUTH2_TOPIC, "", {}, {})
    parts = urlsplit(text)
    path = parts.path
    collection, _, record_id = path.partition("/")
    if not collection or not record_id or "/" in record_id:
        raise BadRequestError(f"Invalid subscription topic {text!r}.")
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    raw = parse_qs(parts.query).get("options")
    if raw:
        try:
            options = orjson.loads(raw[0])
        except orjson.JSONDecodeError:
            raise BadRequestError(f"Invalid subscription options in {text!r}.") from None
        if not isinstance(options, dict):
            raise BadRequestError(f"Invalid subscription options in {text!r}.")
        for target, key in ((query, "query"), (headers, "headers")):
            section = options.get(key) or {}
            if not isinstance(section, dict):
                raise BadRequestError(f"Invalid subscription options in {text!r}.")
            target.update({str(k): str(v) for k, v in section.items()})
    return Topic(text, collection, record_id, query, {k.lower(): v for k, v in headers.items()})


def sse(event: str, data: Any, event_id: str | int | None = None) -> bytes:
    """One server-sent event."""
    head = f"id:{event_id}\n" if event_id is not None else ""
    return f"{head}event:{event}\ndata:".encode() + orjson.dumps(data) + b"\n\n"


@dataclass
class Client:
    """One SSE connection held by this worker."""

    id: str
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(CLIENT_BUFFER))
    auth: Auth = ANONYMOUS
    topics: list[Topic] = field(default_factory=list)
    #: Set when the client reconnected with ``Last-Event-ID``: events after it
    #: are replayed once the first subscriptions arrive.
    resume_from: int | None = None
    #: Events up to here were delivered (live or replayed).
    delivered: int = 0
    closed: bool = False
    version: float = 0.0

    def push(self, chunk: bytes) -> None:
        """Queue a message; a full queue disconnects the client (it is too slow)."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(chunk)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


def auth_json(auth: Auth) -> dict[str, Any]:
    return {
        "collection": auth.collection.id if auth.collection else "",
        "record": auth.id,
        "apiKey": auth.api_key,
        "scopes": sorted(auth.scopes) if auth.scopes is not None else None,
    }


class Broker:
    """Clients of this worker and the loop that fans events out to them."""

    def __init__(self, app: App, poll_interval: float = 0.5) -> None:
        self.app = app
        self.clients: dict[str, Client] = {}
        self.poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._cursor = Cursor(0)
        self._clients_seen = 0.0
        self._last_prune = 0.0
        self._last_recheck = 0.0

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        self._cursor = Cursor(await last_id(self.app.db))
        self._clients_seen = time.time()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        for client in list(self.clients.values()):
            client.close()
        if self._task is not None:
            self._task.cancel()
            # Unlike awaiting the task under ``suppress(CancelledError)``, this
            # still passes on a cancellation of the caller itself.
            (outcome,) = await asyncio.gather(self._task, return_exceptions=True)
            if isinstance(outcome, Exception):
                log.error("realtime loop had failed", exc_info=outcome)

    def wake(self) -> None:
        self._wake.set()

    # -- clients ----------------------------------------------------------------

    async def connect(self, last_event_id: str = "") -> Client:
        """Register a new client; it resumes after ``last_event_id`` when given."""
        client = Client(id=secrets.token_urlsafe(30)[:40])
        newest = await last_id(self.app.db)
        if not self.clients:
            # The outbox was not read while nobody listened here: start from now.
            self._cursor = Cursor(max(self._cursor.position, newest))
        if last_event_id.isdigit():
            client.resume_from = int(last_event_id)
        else:
            # Changes committed before the connection are not the client's,
            # even when this worker reads them after its subscription.
            client.delivered = newest
        now = time.time()
        client.version = now
        await self.app.db.execute(
            "INSERT INTO _keel_realtime (id, auth, subscriptions, updated) VALUES (?, ?, ?, ?)",
            (client.id, orjson.dumps(auth_json(ANONYMOUS)).decode(), "[]", now),
        )
        self.clients[client.id] = client
        client.push(sse(CONNECT_EVENT, {"clientId": client.id}, client.id))
        return client

    async def disconnect(self, client: Client) -> None:
        client.close()
        self.clients.pop(client.id, None)
        with contextlib.suppress(KeelError, Exception):
            await self.app.db.execute("DELETE FROM _keel_realtime WHERE id = ?", (client.id,))

    # -- the loop ---------------------------------------------------------------

    async def _run(self) -> None:
        listener = asyncio.get_running_loop().create_task(self._listen())
        version = self.app.db.data_version()
        try:
            while True:
                timeout = 0.02 if version is not None else self.poll_interval
                # Note: not ``asyncio.wait_for``, which on Python 3.11 swallows a
                # cancellation that arrives as the wait ends (a write woke us
                # while the server stops): the loop then never ended.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
                woken = self._wake.is_set()
                self._wake.clear()
                current = self.app.db.data_version()
                if not woken and current is not None and current == version:
                    continue
                version = current
                try:
                    await self._step()
                except Exception:  # keep serving: the next step retries
                    log.exception("realtime dispatch failed")
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self) -> None:
        while True:
            try:
                sub = await self.app.pubsub.subscribe(EVENTS_CHANNEL, CLIENTS_CHANNEL)
                try:
                    async for _ in sub:
                        self._wake.set()
                finally:
                    await sub.close()
            except PubSubError:
                log.warning("realtime pubsub unavailable; falling back to polling")
                await asyncio.sleep(self.poll_interval)  # back off before resubscribing

    async def _step(self) -> None:
        now = time.time()
        if not self.clients:
            # Nobody to deliver to: no outbox read per write (the cursor jumps
            # ahead when the next client connects).
            await self._prune(now)
            return
        # Events first, subscriptions second: a subscription committed before
        # an event is then always in place when that event is dispatched.
        events = await self._cursor.read(self.app.db)
        if self.clients:
            # Steps that dispatch look back for late-committed changes (the
            # guarantee above needs it); the others do now and then, so a late
            # change still applies without waiting for an event.
            recheck = bool(events) or now - self._last_recheck > RECHECK_SECONDS
            if recheck:
                self._last_recheck = now
            await self._reload_clients(recheck)
        for event in events:
            await self._dispatch(event)
        await self._prune(now)

    async def _prune(self, now: float) -> None:
        if now - self._last_prune > 60:
            self._last_prune = now
            await prune(self.app.db)

    async def _reload_clients(self, recheck: bool) -> None:
        """Apply subscription changes of this worker's clients.

        A change is stamped with the writer's clock *before* it commits, so
        one stamped earlier may commit after a later one was read (another
        worker or node, a slower transaction): ``recheck`` reads the last
        :data:`CLIENTS_LOOKBACK_SECONDS` again. A change applies when its
        stamp differs from the client's (not "is newer": clocks of nodes
        differ).
        """
        since = self._clients_seen - (CLIENTS_LOOKBACK_SECONDS if recheck else 0.0)
        rows = await self.app.db.fetch_all(
            "SELECT id, updated FROM _keel_realtime WHERE updated > ?", (since,)
        )
        changed: list[Client] = []
        for row in rows:
            stamp = float(row[1])
            self._clients_seen = max(self._clients_seen, stamp)
            client = self.clients.get(str(row[0]))
            if client is not None and stamp != client.version:
                changed.append(client)
        for client in changed:
            full = await self.app.db.fetch_one(
                "SELECT auth, subscriptions, updated FROM _keel_realtime WHERE id = ?",
                (client.id,),
            )
            if full is not None and float(full[2]) != client.version:
                await self._apply(
                    client, orjson.loads(full[0]), orjson.loads(full[1]), float(full[2])
                )

    async def _apply(
        self, client: Client, auth: dict[str, Any], topics: list[str], version: float
    ) -> None:
        client.version = version
        client.auth = await load_auth(self.app, auth)
        if auth.get("record") and client.auth.record is None:
            # Bound to a record deleted meanwhile: as if its delete came after.
            client.close()
            return
        client.topics = [parse_topic(t) for t in topics]
        if client.resume_from is not None and client.topics:
            start, client.resume_from = client.resume_from, None
            await self._replay(client, start)

    async def _replay(self, client: Client, after: int) -> None:
        oldest = await oldest_id(self.app.db)
        if oldest and after + 1 < oldest:
            client.push(sse(RESYNC_EVENT, {"reason": "events past the retention window"}))
        for event in await events_after(self.app.db, after):
            if event.id <= self._cursor.position or event.id in self._cursor.seen:
                await self._deliver(client, event)

    async def _dispatch(self, event: OutboxEvent) -> None:
        self._follow_auth(event)
        for client in list(self.clients.values()):
            if client.closed:
                continue
            await self._deliver(client, event)

    def _follow_auth(self, event: OutboxEvent) -> None:
        """Apply a change of an auth record to the clients bound to it, as PocketBase does.

        An update replaces the record the client's rules see (a new role applies
        from this event on); a delete disconnects the client.
        """
        coll = self.app.find_collection(event.collection_id)
        if coll is None or not coll.is_auth or event.action not in ("update", "delete"):
            return
        for client in list(self.clients.values()):
            auth = client.auth
            if auth.collection is None or auth.collection.id != coll.id:
                continue
            if auth.id != event.record_id:
                continue
            if event.action == "delete":
                client.close()
            else:
                client.auth = replace(auth, record=Record(coll, dict(event.data)), collection=coll)

    async def _deliver(self, client: Client, event: OutboxEvent) -> None:
        # A client without topics skips nothing: a resuming one gets these
        # events replayed once its subscriptions arrive.
        if event.id <= client.delivered or not client.topics:
            return
        if event.collection_id == OAUTH2_TOPIC:
            if event.record_id == client.id and any(t.name == OAUTH2_TOPIC for t in client.topics):
                client.push(sse(OAUTH2_TOPIC, event.data, event.id))
            client.delivered = max(client.delivered, event.id)
            return
        coll = self.app.find_collection(event.collection_id)
        if coll is None:
            return
        for topic in client.topics:
            if topic.record_id not in ("*", event.record_id):
                continue
            if self.app.find_collection(topic.collection) is not coll:
                continue
            try:
                message = await self._message(client, coll, topic, event)
            except KeelError:
                continue  # e.g. an invalid filter: nothing to send for this topic
            if message is not None:
                client.push(sse(topic.name, message, event.id))
        client.delivered = max(client.delivered, event.id)

    async def _message(
        self, client: Client, coll: Collection, topic: Topic, event: OutboxEvent
    ) -> dict[str, Any] | None:
        info = RequestInfo(
            auth=client.auth,
            method="GET",
            query=topic.query,
            headers=topic.headers,
            context="realtime",
        )
        rule_name = "listRule" if topic.record_id == "*" else "viewRule"
        cond = condition(self.app, coll, rule_name, info, topic.query.get("filter", ""))
        if cond is None:
            return None
        now_visible = await matches(self.app, coll, event.data, cond)
        action = event.action
        change = ""
        if action == "update" and event.old is not None:
            was_visible = await matches(self.app, coll, event.old, cond)
            if was_visible and not now_visible:
                action, change = "delete", "leave"
            elif now_visible and not was_visible:
                action, change = "create", "enter"
            elif not now_visible:
                return None
        elif not now_visible:
            return None
        data = event.old if change == "leave" and event.old is not None else event.data
        record = Record(coll, dict(data))
        body: dict[str, Any] = {
            "action": action,
            "record": await present(self.app, coll, record, info, projection_of(info)),
        }
        if change:
            body["change"] = change
        return body


async def load_auth(app: App, data: dict[str, Any]) -> Auth:
    """The auth a client was bound with, read afresh (anonymous if it is gone)."""
    coll = app.find_collection(str(data.get("collection") or ""))
    if coll is None or not data.get("record"):
        return ANONYMOUS
    record = await find_record(app.db, coll, str(data["record"]), ALL_ROWS)
    if record is None:
        return ANONYMOUS
    scopes = data.get("scopes")
    return Auth(
        record=record,
        collection=coll,
        scopes=frozenset(scopes) if isinstance(scopes, list) else None,
        api_key=str(data.get("apiKey") or ""),
    )


async def set_subscriptions(app: App, client_id: Any, topics: Any, auth: Auth) -> None:
    """Bind ``auth`` to a client and replace its subscriptions (any worker may call it).

    Raises:
        NotFoundError: no such client.
        ForbiddenError: the client is bound to another auth.
        BadRequestError: invalid topics.
    """
    if not isinstance(client_id, str) or not client_id:
        raise BadRequestError(
            "An error occurred while validating the submitted data.",
            {"clientId": {"code": "validation_required", "message": "Cannot be blank."}},
        )
    if topics is None:
        topics = []
    if not isinstance(topics, list) or len(topics) > MAX_SUBSCRIPTIONS:
        raise BadRequestError("Invalid subscriptions: expected a list of topics.")
    for topic in topics:
        parse_topic(topic)
    row = await app.db.fetch_one("SELECT auth FROM _keel_realtime WHERE id = ?", (client_id,))
    if row is None:
        raise NotFoundError("Missing or invalid client id.")
    bound = orjson.loads(row[0])
    new = auth_json(auth)
    if bound["record"] and (bound["record"], bound["collection"]) != (
        new["record"],
        new["collection"],
    ):
        raise ForbiddenError("The current and the previous request authorization don't match.")
    await app.db.execute(
        "UPDATE _keel_realtime SET auth = ?, subscriptions = ?, updated = ? WHERE id = ?",
        (
            orjson.dumps(new).decode(),
            orjson.dumps(list(dict.fromkeys(topics))).decode(),
            time.time(),
            client_id,
        ),
    )
    try:
        await app.pubsub.publish(CLIENTS_CHANNEL, client_id.encode())
    except PubSubError:
        log.warning("could not signal the subscription change; the holder polls for it")
