"""The event outbox: record changes written in the same transaction as the change.

Every create, update and delete inserts one row into ``_keel_events`` inside
the writing transaction, holding the record's values after the change (before
it, for deletes) and, for updates, before it too. Realtime reads the outbox in
id order after commit, so a rolled-back write emits nothing and an
acknowledged write always emits its event. Rows are kept for
:data:`RETENTION_SECONDS` so reconnecting clients can resume from the last id
they saw (SSE ``Last-Event-ID``); pruning goes by id order, so the table needs
no index besides its key (each index is one more page every write changes).

On PostgreSQL, ids come from a sequence and transactions may commit out of id
order; readers therefore treat a missing id as pending for a while before
skipping it (see :class:`Cursor`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from keel.core.collection import Collection
from keel.core.fields.date import now_text
from keel.core.record import Record
from keel.storage.db.database import Database, Executor

#: How long events stay readable for resuming clients.
RETENTION_SECONDS = 600
#: How long a reader waits for an id that a slower transaction may still commit.
GAP_WAIT_SECONDS = 10.0
READ_BATCH = 500


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One committed record change."""

    id: int
    collection_id: str
    record_id: str
    action: str
    data: dict[str, Any]
    old: dict[str, Any] | None
    created: str


async def record_event(
    ex: Executor, coll: Collection, action: str, record: Record, old: Record | None = None
) -> None:
    """Add the event of a change to the open transaction ``ex``."""
    await ex.execute_point(
        "INSERT INTO _keel_events (collection, record, action, data, old, created, stamp) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            coll.id,
            record.id,
            action,
            orjson.dumps(record.data).decode(),
            orjson.dumps(old.data).decode() if old is not None else None,
            now_text(),
            time.time(),
        ),
    )


async def client_message(ex: Executor, topic: str, client_id: str, data: dict[str, Any]) -> None:
    """Add a message for one realtime client (e.g. an OAuth2 redirect) to ``ex``.

    It travels like record events, so it reaches the client on whichever
    worker or node holds its stream.
    """
    await ex.execute_point(
        "INSERT INTO _keel_events (collection, record, action, data, old, created, stamp) "
        "VALUES (?, ?, ?, ?, NULL, ?, ?)",
        (topic, client_id, "message", orjson.dumps(data).decode(), now_text(), time.time()),
    )


def _event(row: tuple[Any, ...]) -> OutboxEvent:
    return OutboxEvent(
        id=int(row[0]),
        collection_id=str(row[1]),
        record_id=str(row[2]),
        action=str(row[3]),
        data=orjson.loads(row[4]),
        old=orjson.loads(row[5]) if row[5] else None,
        created=str(row[6]),
    )


async def last_id(db: Database) -> int:
    """The newest event id (0 when there is none)."""
    row = await db.fetch_one("SELECT MAX(id) FROM _keel_events")
    return int(row[0]) if row and row[0] is not None else 0


async def oldest_id(db: Database) -> int:
    """The oldest event id still kept (0 when there is none)."""
    row = await db.fetch_one("SELECT MIN(id) FROM _keel_events")
    return int(row[0]) if row and row[0] is not None else 0


@dataclass
class Cursor:
    """A reader's position: every id up to ``position`` has been read or given up.

    Ids above it that were read are in ``seen``; ids below the newest read id
    that are missing are gaps, waited for :data:`GAP_WAIT_SECONDS`.
    """

    position: int
    seen: set[int] = field(default_factory=set)
    gaps: dict[int, float] = field(default_factory=dict)

    async def read(self, db: Database) -> list[OutboxEvent]:
        """Events committed since the last read, in id order."""
        rows = await db.fetch_all(
            "SELECT id, collection, record, action, data, old, created FROM _keel_events "
            f"WHERE id > ? ORDER BY id LIMIT {READ_BATCH}",
            (self.position,),
        )
        events = [_event(r) for r in rows if int(r[0]) not in self.seen]
        now = time.monotonic()
        for event in events:
            self.seen.add(event.id)
            self.gaps.pop(event.id, None)
        if rows:
            newest = max(int(r[0]) for r in rows)
            for missing in range(self.position + 1, newest):
                if missing not in self.seen:
                    self.gaps.setdefault(missing, now)
        # Advance over the contiguous prefix of read or abandoned ids.
        while True:
            nxt = self.position + 1
            if nxt in self.seen:
                self.seen.discard(nxt)
                self.position = nxt
            elif nxt in self.gaps and now - self.gaps[nxt] > GAP_WAIT_SECONDS:
                del self.gaps[nxt]
                self.position = nxt
            else:
                break
        return events


async def events_after(db: Database, after: int) -> list[OutboxEvent]:
    """Kept events with ids above ``after`` (for resuming a client), oldest first."""
    rows = await db.fetch_all(
        "SELECT id, collection, record, action, data, old, created FROM _keel_events "
        f"WHERE id > ? ORDER BY id LIMIT {READ_BATCH * 20}",
        (after,),
    )
    return [_event(r) for r in rows]


async def prune(db: Database) -> None:
    """Delete events older than the retention window.

    Ids grow with time (stamps are taken just before the insert that draws
    the id), so the events to delete lie up to the newest id stamped before
    the cutoff, found by bisecting on id: a few primary-key reads. Nodes'
    clocks may disagree, so an event in that range is deleted only if its own
    stamp is past the cutoff too.
    """
    cutoff = time.time() - RETENTION_SECONDS
    low, high = await oldest_id(db), await last_id(db)
    older = 0  # the newest id known to be stamped before the cutoff
    while low <= high:
        middle = (low + high) // 2
        row = await db.fetch_point(
            "SELECT id, stamp FROM _keel_events WHERE id >= ? ORDER BY id LIMIT 1", (middle,)
        )
        if row is None or float(row[1]) >= cutoff:
            high = middle - 1
        else:
            older = int(row[0])
            low = older + 1
    if older:
        async with db.transaction() as tx:
            await tx.execute(
                "DELETE FROM _keel_events WHERE id <= ? AND stamp < ?", (older, cutoff)
            )
