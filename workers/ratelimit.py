"""Provider rate limits (requests and tokens per minute) that wait instead of rejecting.

A token bucket per (limit key, dimension), refilled continuously at limit/60 per second. With
Redis, the bucket lives in Redis and one Lua script takes from it atomically, so every worker
process shares the same limit; without Redis, the bucket is in this process. ``acquire`` never
raises for the limit: a call that finds a bucket short *reserves* its turn, the first moment its
request and token buckets both hold what it needs (each bucket pays at that turn), and sleeps
exactly until then. Calls waiting on a bucket are thereby served in the order they came, at the
limit's rate, with one script call each: no call polls the bucket again, and a bucket shared by
hundreds of waiting calls is not asked hundreds of times per refill (which kept an audit at
0.61 of its limit).

A reserved turn is good only for a short while. A process the machine does not schedule (load,
a long pause) wakes every call whose turn passed during its stall at once; sent, they would
reach the provider together, a burst its bucket cannot absorb (14% of calls answered 429 on a
loaded machine). So a call that wakes later than its turn by more than half of the burst
allowance (`LATE_TOLERANCE_SHARE`) does not go: it reserves a fresh turn (a second script call,
only then). Every call therefore goes out within that tolerance of a turn of its own, and the
turns hold at most a quarter of the allowance at once (`OWN_BURST_SHARE`): in any window the
calls let through exceed the rate by at most three quarters of the provider's allowance (when it
holds four calls or more), and the last quarter is left for the way from here to the provider.
A stale turn is not given back (giving it back would let the late calls go together again): a
stall costs the limit's rate for its length less the tolerance, never a 429.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, Protocol

__all__ = ["LocalBuckets", "RateLimiter", "RedisBuckets", "Take", "make_buckets"]

# KEYS = the call's buckets (its request and its token bucket); ARGV = now (seconds), then per
# bucket: capacity, refill per second, amount. The call's turn is the first moment every bucket
# holds its amount (a bucket smaller than the amount: is full); each bucket pays it, into debt
# if need be, at that turn (its time moves there), so no bucket counts the call as sent before
# it is: paid earlier, a bucket waiting on the other would refill the same seconds for the next
# calls and let them go together with this one (a request bucket paid at its own turn while the
# token bucket held the call back let 96 of 1,200 calls, in phases of large and small ones,
# through above the provider's rpm, simulated). Returns the seconds from `now` to the turn, as a
# string to keep the fraction. A `now` earlier than a bucket's time (read by a caller
# that then waited for a connection, or by another process) pays at the bucket's time: set back,
# the bucket would refill the same seconds twice and let more than the rate through.
_TAKE = """
local now = tonumber(ARGV[1])
local turn = now
local levels, times = {}, {}
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[3 * i - 1])
  local rate = tonumber(ARGV[3 * i])
  local amount = tonumber(ARGV[3 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'level', 'at')
  local last = tonumber(state[2]) or now
  local at = math.max(last, now)
  local level = math.min(capacity, (tonumber(state[1]) or capacity) + (at - last) * rate)
  levels[i], times[i] = level, at
  local short = math.min(amount, capacity) - level  -- a call larger than the bucket: a full one
  if short > 1e-9 then  -- a refill short by rounding alone counts as full
    turn = math.max(turn, at + short / rate)
  else
    turn = math.max(turn, at)
  end
end
for i = 1, #KEYS do
  local capacity = tonumber(ARGV[3 * i - 1])
  local rate = tonumber(ARGV[3 * i])
  local amount = tonumber(ARGV[3 * i + 1])
  local level = math.min(capacity, levels[i] + (turn - times[i]) * rate) - amount
  redis.call('HSET', KEYS[i], 'level', level, 'at', turn)
  redis.call('EXPIRE', KEYS[i], 120 + math.ceil(turn - now))
end
return tostring(turn - now)
"""


class Take(NamedTuple):
    """What a call pays from one bucket."""

    key: str
    capacity: float
    amount: float
    rate: float
    """Refill per second."""


class Buckets(Protocol):
    async def take(self, takes: Sequence[Take]) -> float:
        """Pay each ``amount`` from its bucket at the call's turn, the first moment every
        bucket holds its amount (see `_TAKE`), and return the seconds until that turn (0 when
        every bucket could pay at once)."""
        ...


@dataclass
class LocalBuckets:
    """Buckets in this process (used when no Redis is configured): `_TAKE`'s rule."""

    _state: dict[str, tuple[float, float]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    """Seconds, for the refills (tests give a clock of their own)."""

    async def take(self, takes: Sequence[Take]) -> float:
        now = self.clock()
        turn = now
        refilled = []
        for take in takes:
            level, last = self._state.get(take.key, (take.capacity, now))
            at = max(last, now)  # a clock read late never refills twice
            level = min(take.capacity, level + (at - last) * take.rate)
            refilled.append((level, at))
            # a call larger than the bucket waits for a full one; a refill short by rounding
            # alone counts as full
            short = min(take.amount, take.capacity) - level
            ready = at + (short / take.rate if short > 1e-9 else 0.0)
            turn = max(turn, ready)
        for take, (level, at) in zip(takes, refilled, strict=True):
            level = min(take.capacity, level + (turn - at) * take.rate) - take.amount
            self._state[take.key] = (level, turn)
        return turn - now


class RedisBuckets:
    """Buckets shared by all workers through Redis.

    The client's connections are bounded (`MAX_CONNECTIONS` per process) by a blocking pool:
    a take that finds every connection busy waits for one (each take is one short script
    call), rather than failing with redis-py's ``MaxConnectionsError`` as its default pool
    does beyond 100. The calls themselves are bounded before they reach the bucket (the
    per-provider concurrency of workers/llm.py)."""

    MAX_CONNECTIONS: Final = 8
    """Connections to the limiter's Redis per process (and event loop)."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        import redis.asyncio as redis_asyncio

        self.clock = clock
        """Seconds since the epoch, the same in every process (tests give their own)."""
        self._url = url
        self._client: Any = None
        self._script: Any = None
        self._redis = redis_asyncio

    async def take(self, takes: Sequence[Take]) -> float:
        if self._client is None:
            pool = self._redis.BlockingConnectionPool.from_url(
                self._url, max_connections=self.MAX_CONNECTIONS, timeout=None
            )
            self._client = self._redis.Redis(connection_pool=pool)
            self._script = self._client.register_script(_TAKE)
        args: list[float] = [self.clock()]
        for take in takes:
            args += [take.capacity, take.rate, take.amount]
        wait = await self._script(
            keys=[f"auditor:ratelimit:{take.key}" for take in takes], args=args
        )
        return float(wait)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            await self._client.connection_pool.disconnect()
            self._client = None


def make_buckets(url: str | None) -> Buckets:
    return RedisBuckets(url) if url and url.startswith("redis") else LocalBuckets()


OWN_BURST_SHARE: Final = 0.25
"""The share of a provider's burst allowance our own bucket spends at once."""
LATE_TOLERANCE_SHARE: Final = 0.5
"""How late a call may wake after its turn and still go on it, as a share of the burst
seconds (a quarter gave up about twice as many turns in simulated stalls of a second)."""
MAX_TURNS: Final = 4
"""Turns a call reserves at most: one that woke late on every one of them goes anyway (its
provider's 429 and our retry handle it) rather than wait on a process that cannot keep time."""


@dataclass
class RateLimiter:
    """Waits until both the request and the token budgets of a provider allow a call."""

    buckets: Buckets
    limits: dict[str, tuple[int | None, int | None]]  # provider -> (rpm, tpm)
    bursts: dict[str, float] = field(default_factory=dict)
    """provider -> seconds of its allowance that may go out at once (default 60: a minute's)."""
    waited_seconds: float = 0.0
    stale_turns: int = 0
    """Turns given up because the call woke too late for them (each reserved again)."""
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """Waits out a reserved turn (tests give one that moves their own clock)."""
    clock: Callable[[], float] = time.monotonic
    """Seconds, to tell how late a call woke after its turn (tests give their own)."""

    def limits_calls(self, provider: str) -> bool:
        """Whether ``provider`` has a request or a token limit."""
        return any(limit is not None for limit in self.limits.get(provider, (None, None)))

    async def acquire(self, provider: str, tokens: int) -> None:
        """Reserve the call's turn in its request and token buckets together and sleep until
        it (at once when both buckets could pay); if the call woke later than that
        by more than the tolerance, reserve again (see the module's docstring)."""
        burst = self.bursts.get(provider, 60.0)
        for _ in range(MAX_TURNS):
            asked = self.clock()
            wait = await self._reserve(provider, tokens, burst)
            turn = asked + wait
            if wait > 0:
                self.waited_seconds += wait
                await self.sleep(turn - self.clock())
            if self.clock() - turn <= burst * LATE_TOLERANCE_SHARE:
                return
            self.stale_turns += 1

    async def _reserve(self, provider: str, tokens: int, burst: float) -> float:
        """Seconds until the call's turn in both of its buckets (one script call)."""
        rpm, tpm = self.limits.get(provider, (None, None))
        takes = []
        for dimension, limit, amount in (("rpm", rpm, 1), ("tpm", tpm, tokens)):
            if limit is None:
                continue
            # A bucket refilled at limit/60 per second holding a quarter of `burst` seconds of
            # it; with the half a call may wake late, a quarter of the provider's allowance is
            # left for the way from here to the provider (spending all of it, with no check on
            # lateness, left the provider's bucket empty: 25% of calls answered 429). A call
            # larger than the bucket goes when it is full and pays in full, into debt that the
            # calls after it wait out (charged only the bucket's size, calls larger than it
            # went above the provider's tpm: 4x with a minute's burst, where a quarter of the
            # limit fits the bucket).
            capacity = max(limit / 60.0 * burst * OWN_BURST_SHARE, 1.0)
            takes.append(Take(f"{provider}:{dimension}", capacity, float(amount), limit / 60.0))
        return await self.buckets.take(takes) if takes else 0.0
