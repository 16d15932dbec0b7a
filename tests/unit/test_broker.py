"""The realtime broker's loop: it starts and stops with the App."""

from __future__ import annotations

import asyncio

from keel.core.app import App
from keel.realtime.broker import Broker


async def test_stop_right_after_a_wake_ends_the_loop(app: App) -> None:
    """A broker stopped in the turn it was woken (a write just committed) still stops."""
    for _ in range(5):
        broker = Broker(app)
        await broker.start()
        for _ in range(3):
            await asyncio.sleep(0)  # let the loop reach its wait
        broker.wake()
        stop = asyncio.get_running_loop().create_task(broker.stop())
        # A bound, so a loop that swallowed its cancellation fails the test
        # instead of hanging it.
        done, _ = await asyncio.wait([stop], timeout=10)
        assert {stop} == done
