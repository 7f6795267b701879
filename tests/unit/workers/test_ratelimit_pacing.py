"""Calls waiting on a rate limit are paced at its rate, each asking the bucket once: the
bucket reserves a caller's turn instead of letting every waiting call poll it again.

The clock is injected: nothing here sleeps. (The integration lane paces real calls in real time,
on Redis and in process.)"""

from __future__ import annotations

import asyncio

import pytest

from tests.support.limits import CountingBuckets
from workers.ratelimit import LocalBuckets, RateLimiter


class StoppedClock:
    """Seconds that move only when the test moves them; a sleep on it records the wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_forty_waiting_calls_take_one_turn_each_at_the_rate() -> None:
    clock = StoppedClock()
    buckets = CountingBuckets(LocalBuckets(clock=clock))
    # 600 rpm = 10 per second, from a bucket holding one call (a burst of 0.1 s)
    limiter = RateLimiter(buckets, {"p": (600, None)}, {"p": 0.1}, sleep=clock.sleep)

    async def forty_at_once() -> None:
        await asyncio.gather(*(limiter.acquire("p", 1) for _ in range(40)))

    asyncio.run(forty_at_once())
    assert buckets.calls == 40  # one take per call: nobody polled the bucket again
    # the first goes at once; the k-th waits (k - 1) / 10 s: the 40th 3.9 s, never sooner
    assert sorted(clock.slept) == pytest.approx([k / 10 for k in range(1, 40)], abs=1e-9)
    assert limiter.waited_seconds == pytest.approx(sum(k / 10 for k in range(1, 40)))

    clock.now = 4.0  # every turn has passed and the bucket refilled to its one call
    clock.slept.clear()
    asyncio.run(forty_at_once())
    assert sorted(clock.slept) == pytest.approx([k / 10 for k in range(1, 40)], abs=1e-9)
