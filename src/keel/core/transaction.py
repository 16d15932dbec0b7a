"""The transaction of record writes, and the work that waits for its commit.

Every change to records (the REST API, batch, auth flows, realtime client
messages, collection changes) runs in :func:`write_transaction`. Work
registered with :func:`after_commit` inside it runs only once the
transaction has committed, in the order registered (a failure is logged and
the rest still runs); a transaction that rolls back runs none of it. After
every commit, each worker is told that records changed, so realtime reads the
outbox.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from keel.storage.db.database import Executor

log = logging.getLogger("keel.transaction")

if TYPE_CHECKING:
    from keel.core.app import App

#: Work to run once the current write transaction has committed.
_pending: ContextVar[list[Callable[[], object]] | None] = ContextVar(
    "keel_after_commit", default=None
)


def after_commit(work: Callable[[], object]) -> None:
    """Run ``work`` once the open write transaction has committed.

    ``work`` must not block: start background work with ``App.spawn``.

    Raises:
        RuntimeError: no transaction opened by :func:`write_transaction` is open.
    """
    pending = _pending.get()
    if pending is None:
        raise RuntimeError("after-commit work needs a transaction opened by write_transaction")
    pending.append(work)


@asynccontextmanager
async def write_transaction(app: App, joined: Executor | None = None) -> AsyncIterator[Executor]:
    """A write transaction of ``app``'s database; see the module docstring.

    ``joined`` is a transaction the caller already has open (a batch): the
    work then runs in it, and its commit is the one that counts.
    """
    if joined is not None:
        yield joined
        return
    pending: list[Callable[[], object]] = []
    token = _pending.set(pending)
    try:
        async with app.db.transaction() as tx:
            yield tx
    finally:
        _pending.reset(token)
    app.committed()
    for work in pending:
        try:
            work()
        except Exception:
            # The write has committed: one failed follow-up must neither
            # skip the others nor turn the caller's success into an error.
            log.exception("after-commit work failed")
