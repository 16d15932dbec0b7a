"""Request rate limits: a moving window of at most N hits per key.

``RateLimiter`` is the role; :class:`MemoryRateLimiter` keeps the windows in
process memory (the embedded default). A Redis implementation for scale-out
sits behind the same protocol. Both build on the ``limits`` library's async
moving-window strategy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class RateLimitResult:
    """The outcome of one hit.

    Attributes:
        allowed: The hit was counted and the request may proceed.
        retry_after: When refused, whole seconds (at least 1) until a request
            would be allowed again; 0 when allowed.
    """

    allowed: bool
    retry_after: int


class RateLimiter(Protocol):
    """Counts hits per key in a moving window."""

    async def hit(self, key: str, max_requests: int, window_seconds: int) -> RateLimitResult:
        """Count one request for ``key`` unless it would exceed the limit.

        A request is allowed while fewer than ``max_requests`` allowed hits for
        the same ``key`` and limit happened in the last ``window_seconds``.
        Refused hits are not counted. Limits with different ``max_requests`` or
        ``window_seconds`` on the same key are counted separately.

        Raises:
            ValueError: ``max_requests`` or ``window_seconds`` is below 1.
        """
        ...


class _LimitsRateLimiter:
    """A :class:`RateLimiter` over any ``limits`` async storage with moving windows."""

    def __init__(self, storage: Storage) -> None:
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, key: str, max_requests: int, window_seconds: int) -> RateLimitResult:
        """See :meth:`RateLimiter.hit`."""
        if max_requests < 1 or window_seconds < 1:
            raise ValueError(
                f"rate limit needs max_requests >= 1 and window_seconds >= 1, "
                f"got {max_requests} per {window_seconds}s"
            )
        item = RateLimitItemPerSecond(max_requests, window_seconds)
        if await self._limiter.hit(item, key):
            return RateLimitResult(allowed=True, retry_after=0)
        stats = await self._limiter.get_window_stats(item, key)
        # reset_time is when the oldest hit in the window leaves it (epoch seconds).
        wait = math.ceil(stats.reset_time - time.time())
        return RateLimitResult(allowed=False, retry_after=min(max(wait, 1), window_seconds))


class MemoryRateLimiter(_LimitsRateLimiter):
    """Rate limits kept in this process's memory (one node, one process).

    Note:
        Windows are not shared between processes; a multi-worker or
        multi-node deployment needs the Redis implementation.
    """

    def __init__(self) -> None:
        super().__init__(MemoryStorage())
