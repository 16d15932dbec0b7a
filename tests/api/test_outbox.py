"""The event outbox keeps events for the retention window, pruned in id order."""

from __future__ import annotations

import time

import pytest

from keel.core.app import App
from keel.core.outbox import RETENTION_SECONDS, prune

INSERT = (
    "INSERT INTO _keel_events (collection, record, action, data, old, created, stamp) "
    "VALUES ('c', 'r', 'create', '{}', NULL, '', ?)"
)


async def _ids(app: App) -> list[int]:
    return [int(r[0]) for r in await app.db.fetch_all("SELECT id FROM _keel_events ORDER BY id")]


@pytest.mark.parametrize("old", [0, 1, 2, 7, 8])
async def test_prune_deletes_exactly_the_events_past_retention(app: App, old: int) -> None:
    """Events stamped before the window go, the ones inside it stay, whatever the split."""
    await app.db.execute("DELETE FROM _keel_events")
    now = time.time()
    stamps = [now - RETENTION_SECONDS - 100 + n for n in range(old)]
    stamps += [now - RETENTION_SECONDS + 60 + n for n in range(8 - old)]
    for stamp in stamps:
        await app.db.execute(INSERT, (stamp,))
    ids = await _ids(app)
    await prune(app.db)
    assert ids[old:] == await _ids(app)


async def test_prune_bisects_over_gaps_in_the_ids(app: App) -> None:
    """Ids missing in the middle (rolled-back inserts) do not stop the search."""
    await app.db.execute("DELETE FROM _keel_events")
    now = time.time()
    for n in range(40):
        await app.db.execute(INSERT, (now - RETENTION_SECONDS - 1000 + 30 * n,))
    ids = await _ids(app)
    await app.db.execute("DELETE FROM _keel_events WHERE id % 3 = 0")
    kept = [i for i in ids if i % 3 != 0]
    stamps = {i: now - RETENTION_SECONDS - 1000 + 30 * n for n, i in enumerate(ids)}
    await prune(app.db)
    assert [i for i in kept if stamps[i] >= now - RETENTION_SECONDS] == await _ids(app)


async def test_prune_keeps_an_event_whose_clock_was_behind(app: App) -> None:
    """An old stamp among recent events (a node's clock running late) takes none of them along.

    The bisection's first probe lands on the third event, stamped in the past.
    """
    await app.db.execute("DELETE FROM _keel_events")
    now = time.time()
    past = now - RETENTION_SECONDS - 100
    for stamp in [past, now - 10, past + 5, now - 8, now - 5, now - 4]:
        await app.db.execute(INSERT, (stamp,))
    ids = await _ids(app)
    await prune(app.db)
    assert [ids[1], *ids[3:]] == await _ids(app)
