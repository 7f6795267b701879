"""Provider rate limits wait instead of rejecting, and are shared through Redis."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
import redis

from tests.support.services import redis_databases
from workers.ratelimit import LocalBuckets, RateLimiter, RedisBuckets

pytestmark = pytest.mark.services


def test_local_bucket_waits_for_tokens() -> None:
    # 600 tokens per minute = 10 per second: after the bucket is emptied, 20 tokens take ~2 s.
    limiter = RateLimiter(LocalBuckets(), {"p": (None, 600)})

    async def run() -> float:
        await limiter.acquire("p", 600)
        started = time.monotonic()
        await limiter.acquire("p", 20)
        return time.monotonic() - started

    waited = asyncio.run(run())
    assert 1.8 <= waited <= 3.0
    assert limiter.waited_seconds >= 1.8


def test_redis_bucket_is_shared_by_separate_limiters_and_waits() -> None:
    with redis_databases() as (broker, _):
        provider = f"p-{uuid.uuid4().hex[:8]}"  # a fresh bucket
        limits = {provider: (None, 600)}
        results: dict[str, float] = {}

        def worker(name: str, tokens: int, delay: float) -> None:
            async def run() -> None:
                buckets = RedisBuckets(broker)
                try:
                    await asyncio.sleep(delay)
                    started = time.monotonic()
                    await RateLimiter(buckets, limits).acquire(provider, tokens)
                    results[name] = time.monotonic() - started
                finally:
                    await buckets.close()

            asyncio.run(run())

        first = threading.Thread(target=worker, args=("first", 600, 0.0))
        second = threading.Thread(target=worker, args=("second", 20, 0.3))
        first.start()
        second.start()
        first.join()
        second.join()
    assert results["first"] < 0.5  # a full bucket pays at once
    # the second limiter saw the bucket the first emptied, and waited (it did not fail)
    assert 1.4 <= results["second"] <= 3.0


def test_requests_per_minute_are_limited_too() -> None:
    limiter = RateLimiter(LocalBuckets(), {"p": (60, None)})  # one request per second

    async def run() -> float:
        for _ in range(60):
            await limiter.acquire("p", 1)
        started = time.monotonic()
        await limiter.acquire("p", 1)
        return time.monotonic() - started

    assert 0.8 <= asyncio.run(run()) <= 2.0


def test_many_concurrent_takes_share_a_bounded_pool_and_none_fails() -> None:
    # 400 calls take from one Redis bucket at once (more than redis-py's default pool of 100
    # connections): every take waits for a connection instead of raising MaxConnectionsError,
    # and the process never opens more than MAX_CONNECTIONS connections to the limiter.
    with redis_databases() as (broker, _):
        provider = f"p-{uuid.uuid4().hex[:8]}"
        client = redis.Redis.from_url(broker)
        before = len(client.client_list())

        async def run() -> tuple[int, int]:
            buckets = RedisBuckets(broker)
            limiter = RateLimiter(buckets, {provider: (100_000, None)})
            peak = 0

            async def take() -> None:
                nonlocal peak
                await limiter.acquire(provider, 1)
                peak = max(peak, len(client.client_list()) - before)

            try:
                await asyncio.gather(*(take() for _ in range(400)))
                return peak, len(client.client_list()) - before
            finally:
                await buckets.close()

        peak, _ = asyncio.run(run())
    assert 1 <= peak <= RedisBuckets.MAX_CONNECTIONS
