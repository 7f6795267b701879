"""Rate-limit helpers shared by the unit and the integration tests of workers/ratelimit.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from workers.ratelimit import Buckets, RateLimiter, Take


class CountingBuckets:
    """A bucket store that counts how often it is asked (instrumentation, not a stand-in: every
    take goes to the real store)."""

    def __init__(self, inner: Buckets) -> None:
        self.inner = inner
        self.calls = 0

    async def take(self, takes: Sequence[Take]) -> float:
        self.calls += 1
        return await self.inner.take(takes)


async def paced_finish_times(
    buckets: Buckets, provider: str, calls: int
) -> tuple[list[float], RateLimiter]:
    """``calls`` concurrent acquisitions at 600 rpm from a bucket holding one call (burst
    0.1 s): when each was let through (``time.monotonic``), and the limiter (its count of
    turns given up because a call woke too late for them)."""
    limiter = RateLimiter(buckets, {provider: (600, None)}, {provider: 0.1})

    async def one() -> float:
        await limiter.acquire(provider, 1)
        return time.monotonic()

    return list(await asyncio.gather(*(one() for _ in range(calls)))), limiter
