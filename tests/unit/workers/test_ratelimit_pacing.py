"""Calls waiting on a rate limit are paced at its rate, each asking the bucket once: the
bucket reserves a caller's turn instead of letting every waiting call poll it again. A call that
wakes long after its turn (its process stalled) reserves a fresh one instead of going out with
every other late call at once, so the provider's bucket is never overrun.

The clock is injected: nothing here sleeps. (The integration lane paces real calls in real time,
on Redis and in process.)"""

from __future__ import annotations

import asyncio
import math

import pytest

from tests.support.limits import CountingBuckets
from tests.support.virtual_time import ProviderBucket, Stall, VirtualTime, most_in_window
from workers import ratelimit
from workers.ratelimit import LocalBuckets, RateLimiter, Take


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
    limiter = RateLimiter(buckets, {"p": (600, None)}, {"p": 0.1}, sleep=clock.sleep, clock=clock)

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


RPM, BURST = 1800, 1.0  # the bench's provider: 30 calls per second, a bucket of one second's
RATE = RPM / 60.0
# Both worker processes frozen together for a second every six seconds (a loaded machine);
# each runs 32 calls at once, each call taking 50 ms at the provider, 1,800 calls in all.
STALLS: list[Stall] = [(start, start + 1.0) for start in range(2, 60, 6)]


def _audit_under_stalls(stalls: list[Stall]) -> tuple[list[float], list[RateLimiter]]:
    """When each of 1,800 calls reached the provider, from two processes sharing one bucket
    store, paced by their limiters set to the provider's own rpm and burst."""
    clock = VirtualTime()
    buckets = LocalBuckets(clock=clock)
    sends: list[float] = []
    left = [1800]
    limiters: list[RateLimiter] = []

    async def caller(limiter: RateLimiter) -> None:
        while left[0] > 0:
            left[0] -= 1
            await limiter.acquire("p", 1)
            sends.append(clock.now)  # the provider sees the call at once
            await limiter.sleep(0.05)

    async def audit() -> None:
        for _ in range(2):
            sleep = clock.sleeper(stalls)
            limiters.append(
                RateLimiter(buckets, {"p": (RPM, None)}, {"p": BURST}, sleep=sleep, clock=clock)
            )
        await clock.run([caller(limiter) for limiter in limiters for _ in range(32)])

    asyncio.run(audit())
    return sends, limiters


def test_calls_of_stalled_processes_never_overrun_the_providers_bucket_and_keep_the_rate() -> None:
    sends, limiters = _audit_under_stalls(STALLS)
    assert len(sends) == 1800
    # the provider's rule, simulated on its own: not one call would have been answered 429
    assert ProviderBucket(RATE, RATE * BURST).replay(sends) == []
    # at most three quarters of the allowance at one instant (our bucket's quarter and the calls
    # whose turns fell in the last half second of a stall), not the pile of the whole stall
    assert most_in_window(sends, 0.0) <= 0.75 * RATE * BURST
    # the stalls did strand turns (each process gave some up and reserved again) ...
    assert all(limiter.stale_turns > 0 for limiter in limiters)
    # ... and cost less than a tenth of the rate: 1,800 calls at >= 0.9 of 30 per second
    assert len(sends) / max(sends) >= 0.9 * RATE


def test_without_the_lateness_check_the_same_stalls_burst_past_the_providers_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The problem the check solves, reproduced: a call goes on its turn however late it woke
    # (the limiter before), and every call whose turn passed in a stall goes at its end at once.
    monkeypatch.setattr(ratelimit, "LATE_TOLERANCE_SHARE", math.inf)
    sends, limiters = _audit_under_stalls(STALLS)
    assert all(limiter.stale_turns == 0 for limiter in limiters)
    # a whole bucket's worth at one instant when a stall ends, on top of the calls just before
    assert most_in_window(sends, 0.0) >= RATE * BURST
    assert len(ProviderBucket(RATE, RATE * BURST).replay(sends)) >= 10  # answered 429


def test_a_call_that_wakes_late_reserves_a_fresh_turn_and_one_on_time_does_not() -> None:
    clock = VirtualTime()
    buckets = CountingBuckets(LocalBuckets(clock=clock))
    # 600 rpm, burst 1 s: a bucket of 2.5 calls (a quarter of 10), late by up to 0.5 s is on time
    stalls: list[Stall] = [(0.3, 2.0)]
    limiter = RateLimiter(
        buckets, {"p": (600, None)}, {"p": 1.0}, sleep=clock.sleeper(stalls), clock=clock
    )
    went: list[float] = []

    async def call() -> None:
        await limiter.acquire("p", 1)
        went.append(clock.now)

    async def calls() -> None:
        await clock.run([call() for _ in range(8)])

    asyncio.run(calls())
    # turns: 0, 0, 0.05 (the bucket's 2.5 calls), then every 0.1 s: 0.15 ... 0.55. Woken at
    # 2.0 by the stall: the turns at 0.15 and 0.25 (before it) were kept; 0.35 ... 0.55 are more
    # than 0.5 s late and were reserved again, at the rate from 2.0 (the bucket refilled in
    # the meantime holds 2.5 calls: 2.0, 2.0, 2.05)
    assert limiter.stale_turns == 3
    assert buckets.calls == 8 + 3
    assert sorted(went) == pytest.approx([0, 0, 0.05, 0.15, 0.25, 2.0, 2.0, 2.05], abs=1e-9)


def test_a_clock_read_before_another_callers_take_never_refills_the_bucket_twice() -> None:
    # A caller that read the time, then waited (for a connection, for the processor) while
    # another caller took, pays at the bucket's time: 1 per second from a bucket of one call.
    times = iter([10.0, 11.0, 10.5, 12.0])
    buckets = LocalBuckets(clock=lambda: next(times))

    async def takes() -> list[float]:
        return [await buckets.take([Take("p", 1.0, 1.0, 1.0)]) for _ in range(4)]

    waits = asyncio.run(takes())
    # turns 10, 11, then 12 (not 11.5: set back to 10.5, the bucket would refill 10.5..11
    # again and let three calls through within 1.5 s), then 13
    turns = [now + wait for now, wait in zip([10.0, 11.0, 10.5, 12.0], waits, strict=True)]
    assert turns == pytest.approx([10.0, 11.0, 12.0, 13.0])


MIXED_RPM, MIXED_TPM = 600, 60_000  # 10 requests and 1,000 tokens per second, enforced per second


def _mixed_sizes_audit(sizes: list[int]) -> tuple[list[tuple[float, int]], RateLimiter]:
    """When each call (of ``sizes`` tokens, taken in order by 32 concurrent callers) reached a
    provider limiting both requests and tokens, paced by a limiter set to its limits."""
    clock = VirtualTime()
    buckets = LocalBuckets(clock=clock)
    limiter = RateLimiter(
        buckets, {"p": (MIXED_RPM, MIXED_TPM)}, {"p": 1.0}, sleep=clock.sleeper(), clock=clock
    )
    sends: list[tuple[float, int]] = []
    queue = iter(sizes)

    async def caller() -> None:
        for tokens in queue:
            await limiter.acquire("p", tokens)
            sends.append((clock.now, tokens))
            await limiter.sleep(0.05)

    asyncio.run(clock.run([caller() for _ in range(32)]))
    return sends, limiter


@pytest.mark.parametrize(
    "sizes",
    [
        ([400] * 100 + [10] * 200) * 4,  # phases: the token limit binds, then the request limit
        [[10, 10, 10, 400][k % 4] for k in range(1_000)],  # both, call by call
    ],
    ids=["phases", "interleaved"],
)
def test_calls_under_request_and_token_limits_keep_within_both_of_the_providers_buckets(
    sizes: list[int],
) -> None:
    # Each call pays both buckets at its turn, the first moment both hold what it needs, and
    # pays its tokens in full. Paying each bucket at its own turn (before), a request bucket
    # paid while the token bucket still held the call back counted it as sent early, and calls
    # went out together: in the phases 96 above the provider's rpm and 21 above its tpm; and a
    # call larger than our token bucket, charged only the bucket's size, 144 above the tpm.
    sends, limiter = _mixed_sizes_audit(sizes)
    assert len(sends) == len(sizes)
    requests = ProviderBucket(MIXED_RPM / 60, MIXED_RPM / 60)
    assert requests.replay([at for at, _ in sends]) == []
    tokens = ProviderBucket(MIXED_TPM / 60, MIXED_TPM / 60)
    assert tokens.replay([at for at, _ in sends], [size for _, size in sends]) == []
    assert limiter.stale_turns == 0
    # the limits themselves are kept to: the tokens' and the requests' own minimum time
    elapsed = max(at for at, _ in sends)
    assert elapsed >= sum(sizes) / (MIXED_TPM / 60) - 1.0
    assert elapsed >= len(sizes) / (MIXED_RPM / 60) - 1.0
