"""Provider rate limits (requests and tokens per minute) that wait instead of rejecting.

A token bucket per (provider, dimension): capacity = the per-minute limit, refilled
continuously at limit/60 per second. With Redis, the bucket lives in Redis and one Lua script
takes from it atomically, so every worker process shares the same limit; without Redis, the
bucket is in this process. ``acquire`` sleeps until the bucket can pay, never raises for it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

__all__ = ["LocalBuckets", "RateLimiter", "RedisBuckets", "make_buckets"]

# KEYS[1] = bucket key; ARGV = capacity, refill per second, amount, now (seconds)
# Returns 0 when paid, else the seconds to wait (as a string, to keep the fraction).
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
level = math.min(capacity, level + math.max(0, now - at) * rate)
if level >= amount then
  redis.call('HSET', KEYS[1], 'level', level - amount, 'at', now)
  redis.call('EXPIRE', KEYS[1], 120)
  return '0'
end
redis.call('HSET', KEYS[1], 'level', level, 'at', now)
redis.call('EXPIRE', KEYS[1], 120)
return tostring((amount - level) / rate)
"""


class Buckets(Protocol):
    async def take(
        self, key: str, capacity: float, amount: float, rate: float | None = None
    ) -> float:
        """Pay ``amount`` from the bucket or return the seconds to wait before trying again
        (refilled at ``rate`` per second; default capacity/60)."""
        ...


@dataclass
class LocalBuckets:
    """Buckets in this process (used when no Redis is configured)."""

    _state: dict[str, tuple[float, float]] = field(default_factory=dict)

    async def take(
        self, key: str, capacity: float, amount: float, rate: float | None = None
    ) -> float:
        rate = rate or capacity / 60.0
        now = time.monotonic()
        level, at = self._state.get(key, (capacity, now))
        level = min(capacity, level + (now - at) * rate)
        if level >= amount:
            self._state[key] = (level - amount, now)
            return 0.0
        self._state[key] = (level, now)
        return (amount - level) / rate


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

    async def acquire(self, provider: str, tokens: int) -> None:
        rpm, tpm = self.limits.get(provider, (None, None))
        burst = self.bursts.get(provider, 60.0)
        for dimension, limit, amount in (("rpm", rpm, 1), ("tpm", tpm, tokens)):
            if limit is None:
                continue
            # A bucket refilled at limit/60 per second, holding `burst` seconds of it.
            capacity = max(limit * burst / 60.0, 1.0)
            # A call larger than the bucket waits for a full one.
            cost = min(float(amount), capacity)
            while (
                wait := await self.buckets.take(
                    f"{provider}:{dimension}", capacity, cost, limit / 60.0
                )
            ) > 0:
                self.waited_seconds += wait
                await asyncio.sleep(wait)
