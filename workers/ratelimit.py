"""Provider rate limits (requests and tokens per minute) that wait instead of rejecting.

A token bucket per (limit key, dimension): capacity = the allowance of `burst` seconds,
refilled continuously at limit/60 per second. With Redis, the bucket lives in Redis and one Lua
script takes from it atomically, so every worker process shares the same limit; without Redis,
the bucket is in this process. ``acquire`` never raises for the limit: a call that finds the
bucket short *reserves* its tokens (the level goes below zero) and sleeps exactly until they
have been refilled. Calls waiting on a bucket are thereby served in the order they came, at the
limit's rate, with one script call each: no call polls the bucket again, and a bucket shared by
hundreds of waiting calls is not asked hundreds of times per refill (which kept an audit at 0.61
of its limit).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

__all__ = ["LocalBuckets", "RateLimiter", "RedisBuckets", "make_buckets"]

# KEYS[1] = bucket key; ARGV = capacity, refill per second, amount, now (seconds)
# Pays `amount` at once, into debt if need be; returns the seconds until the debt is refilled
# (0 when the bucket could pay), as a string to keep the fraction.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
level = math.min(capacity, level + math.max(0, now - at) * rate) - amount
redis.call('HSET', KEYS[1], 'level', level, 'at', now)
local wait = 0
if level < 0 then wait = -level / rate end
redis.call('EXPIRE', KEYS[1], 120 + math.ceil(wait))
return tostring(wait)
"""


class Buckets(Protocol):
    async def take(
        self, key: str, capacity: float, amount: float, rate: float | None = None
    ) -> float:
        """Pay ``amount`` from the bucket (refilled at ``rate`` per second; default
        capacity/60), into debt if it holds less, and return the seconds until that debt is
        refilled: the caller's reserved turn (0 when the bucket could pay at once)."""
        ...


@dataclass
class LocalBuckets:
    """Buckets in this process (used when no Redis is configured)."""

    _state: dict[str, tuple[float, float]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    """Seconds, for the refills (tests give a clock of their own)."""

    async def take(
        self, key: str, capacity: float, amount: float, rate: float | None = None
    ) -> float:
        rate = rate or capacity / 60.0
        now = self.clock()
        level, at = self._state.get(key, (capacity, now))
        level = min(capacity, level + (now - at) * rate) - amount
        self._state[key] = (level, now)
        return max(0.0, -level / rate)


class RedisBuckets:
    """Buckets shared by all workers through Redis.

    The client's connections are bounded (`MAX_CONNECTIONS` per process) by a blocking pool:
    a take that finds every connection busy waits for one (each take is one short script
    call), rather than failing with redis-py's ``MaxConnectionsError`` as its default pool
    does beyond 100. The calls themselves are bounded before they reach the bucket (the
    per-provider concurrency of workers/llm.py)."""

    MAX_CONNECTIONS: Final = 8
    """Connections to the limiter's Redis per process (and event loop)."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis_asyncio

        self._url = url
        self._client: Any = None
        self._script: Any = None
        self._redis = redis_asyncio

    async def take(
        self, key: str, capacity: float, amount: float, rate: float | None = None
    ) -> float:
        if self._client is None:
            pool = self._redis.BlockingConnectionPool.from_url(
                self._url, max_connections=self.MAX_CONNECTIONS, timeout=None
            )
            self._client = self._redis.Redis(connection_pool=pool)
            self._script = self._client.register_script(_TAKE)
        wait = await self._script(
            keys=[f"auditor:ratelimit:{key}"],
            args=[capacity, rate or capacity / 60.0, amount, time.time()],
        )
        return float(wait)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()
            self._client = None


def make_buckets(url: str | None) -> Buckets:
    return RedisBuckets(url) if url and url.startswith("redis") else LocalBuckets()


@dataclass
class RateLimiter:
    """Waits until both the request and the token budgets of a provider allow a call."""

    buckets: Buckets
    limits: dict[str, tuple[int | None, int | None]]  # provider -> (rpm, tpm)
    bursts: dict[str, float] = field(default_factory=dict)
    """provider -> seconds of its allowance that may go out at once (default 60: a minute's)."""
    waited_seconds: float = 0.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """Waits out a reserved turn (tests give one that moves their own clock)."""

    async def acquire(self, provider: str, tokens: int) -> None:
        """Reserve the call's request and tokens in both buckets, then sleep until the later of
        the two reservations is due (at once when both buckets could pay)."""
        rpm, tpm = self.limits.get(provider, (None, None))
        burst = self.bursts.get(provider, 60.0)
        wait = 0.0
        for dimension, limit, amount in (("rpm", rpm, 1), ("tpm", tpm, tokens)):
            if limit is None:
                continue
            # A bucket refilled at limit/60 per second, holding half of `burst` seconds of it:
            # calls paced exactly at the limit reach the provider with some jitter, and the
            # half of its burst allowance that our burst leaves unspent absorbs it (spending
            # all of it left the provider's bucket empty: 25% of calls answered 429).
            capacity = max(limit * burst / 120.0, 1.0)
            # A call larger than the bucket waits for a full one.
            cost = min(float(amount), capacity)
            due = await self.buckets.take(f"{provider}:{dimension}", capacity, cost, limit / 60.0)
            wait = max(wait, due)
        if wait > 0:
            self.waited_seconds += wait
            await self.sleep(wait)
