"""Work registered with ``after_commit`` runs after the commit, and only then."""

from __future__ import annotations

import pytest

from keel.core.app import App
from keel.core.transaction import after_commit, write_transaction


async def test_after_commit_work_runs_once_committed_in_order(app: App) -> None:
    """Registered work runs after the commit, in order."""
    seen: list[str] = []
    async with write_transaction(app) as tx:
        await tx.execute("UPDATE _params SET value = value WHERE id = 'settings'")
        after_commit(lambda: seen.append("first"))
        after_commit(lambda: seen.append("second"))
        assert [] == seen  # nothing runs before the commit
    assert ["first", "second"] == seen


async def test_after_commit_work_never_runs_on_rollback(app: App) -> None:
    """A transaction that fails runs none of its registered work."""
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="gave up"):
        async with write_transaction(app):
            after_commit(lambda: seen.append("never"))
            raise RuntimeError("gave up")
    assert [] == seen
    async with write_transaction(app):
        pass  # a later transaction does not inherit the dropped work
    assert [] == seen


async def test_failed_after_commit_work_neither_skips_the_rest_nor_fails_the_write(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    """A follow-up that raises is logged; the later ones still run and the write stands."""
    seen: list[str] = []

    def broken() -> None:
        raise ValueError("follow-up broke")

    async with write_transaction(app) as tx:
        await tx.execute("UPDATE _params SET value = ? WHERE id = 'version'", ("v-after",))
        after_commit(broken)
        after_commit(lambda: seen.append("after"))
    assert ["after"] == seen
    assert "after-commit work failed" in caplog.text
    assert ("v-after",) == await app.db.fetch_one("SELECT value FROM _params WHERE id = 'version'")


async def test_after_commit_outside_a_transaction_is_refused(app: App) -> None:
    """Registering work with no write transaction open is a programming error."""
    with pytest.raises(RuntimeError, match="write_transaction"):
        after_commit(lambda: None)
