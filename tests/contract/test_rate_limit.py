"""The ``RateLimiter`` contract, run unchanged against every implementation."""

from __future__ import annotations

import asyncio

import pytest

from keel.security.rate_limit import MemoryRateLimiter, RateLimiter, RateLimitResult

ALLOWED = RateLimitResult(allowed=True, retry_after=0)


@pytest.fixture(params=["memory"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    """A fresh limiter of each implementation (Redis joins this list later)."""
    assert "memory" == request.param
    return MemoryRateLimiter()


async def test_allows_up_to_the_limit_then_refuses(limiter: RateLimiter) -> None:
    """N hits are allowed; the next is refused with 1 <= retry_after <= window."""
    results = [await limiter.hit("ip:1", 3, 60) for _ in range(3)]
    refused = await limiter.hit("ip:1", 3, 60)

    assert [ALLOWED] * 3 == results
    assert False is refused.allowed
    assert 1 <= refused.retry_after <= 60


async def test_refusal_persists_within_the_window(limiter: RateLimiter) -> None:
    """Once the limit is reached, further hits in the window stay refused."""
    await limiter.hit("ip:1", 1, 60)

    results = [(await limiter.hit("ip:1", 1, 60)).allowed for _ in range(3)]

    assert [False, False, False] == results


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    """Exhausting one key leaves other keys untouched."""
    await limiter.hit("ip:1", 1, 60)

    assert False is (await limiter.hit("ip:1", 1, 60)).allowed
    assert ALLOWED == await limiter.hit("ip:2", 1, 60)


async def test_different_limits_on_one_key_are_counted_separately(limiter: RateLimiter) -> None:
    """A key exhausted under one limit is still allowed under another limit."""
    await limiter.hit("auth:a", 1, 60)

    assert False is (await limiter.hit("auth:a", 1, 60)).allowed
    assert ALLOWED == await limiter.hit("auth:a", 2, 60)


async def test_limit_frees_up_after_the_window(limiter: RateLimiter) -> None:
    """After window_seconds have passed, the key is allowed again."""
    assert ALLOWED == await limiter.hit("ip:1", 1, 1)
    refused = await limiter.hit("ip:1", 1, 1)
    assert RateLimitResult(allowed=False, retry_after=1) == refused

    # Waits for the 1-second window to pass (real time is the limiter's clock,
    # also for the Redis implementation); this is not synchronisation.
    await asyncio.sleep(1.1)

    assert ALLOWED == await limiter.hit("ip:1", 1, 1)


@pytest.mark.parametrize(("max_requests", "window_seconds"), [(0, 60), (5, 0), (-1, -1)])
async def test_invalid_limits_are_rejected(
    limiter: RateLimiter, max_requests: int, window_seconds: int
) -> None:
    """A limit below one request or one second is a ValueError."""
    with pytest.raises(ValueError, match="max_requests"):
        await limiter.hit("ip:1", max_requests, window_seconds)
