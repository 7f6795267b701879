"""Provider rate limits wait instead of rejecting, and are shared through Redis."""

from __future__ import annotations

import asyncio
import bisect
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
from celery import Celery

from auditor.schemas.spec import parse_spec
from auditor.services.audits import TERMINAL_STATUSES, audit_status, submit_audit
from auditor.storage.store import Store
from tests.support.limits import CountingBuckets, paced_finish_times
from tests.support.services import (
    postgres_database,
    redis_databases,
    service_env,
    worker_process,
)
from tests.support.specs import small_spec
from workers.ratelimit import LocalBuckets, RateLimiter, RedisBuckets, Take

pytestmark = pytest.mark.services


def test_local_bucket_waits_for_tokens() -> None:
    # 600 tokens per minute = 10 per second, from a bucket of 150 (a quarter of a minute's):
    # after the bucket is emptied, 20 tokens take ~2 s.
    limiter = RateLimiter(LocalBuckets(), {"p": (None, 600)})

    async def run() -> float:
        await limiter.acquire("p", 150)
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

        first = threading.Thread(target=worker, args=("first", 150, 0.0))  # the whole bucket
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


def test_an_audit_under_an_rpm_limit_with_256_calls_in_flight_fails_no_batch(
    tmp_path: Path,
) -> None:
    # Issue 14, 2c: with an rpm limit, every call takes from the shared Redis bucket; with
    # 128-call batches in two worker processes, 60 of 61 batches once failed with redis-py's
    # MaxConnectionsError and calls were sent again (4,876 provider calls for 871 distinct).
    latency = 2.0  # long enough for a whole batch to start within it, even under load
    ledger = tmp_path / "ledger.txt"
    spec = small_spec(
        provider={"latency": latency, "ledger": str(ledger)},
        limits={"sim": {"rpm": 60_000, "max_concurrency": 128}},
    )
    with redis_databases() as (broker, backend), postgres_database() as database_url:
        store = Store(database_url)
        store.migrate()
        env = service_env(
            database_url,
            broker,
            backend,
            AUDITOR_BATCH_SIZE="128",
            AUDITOR_LEASE_SECONDS="10",
            AUDITOR_VISIBILITY_TIMEOUT="10",
        )
        first, second = worker_process(env, concurrency=1), worker_process(env, concurrency=1)
        with first, second:
            audit, _ = submit_audit(store, parse_spec(spec), tenant="t1")
            Celery(broker=broker).send_task("auditor.start", args=[audit.id])
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                row = store.get_audit(audit.id)
                assert row is not None
                if row.status in TERMINAL_STATUSES:
                    break
                time.sleep(0.2)
            logs = first.log() + second.log()
        status = audit_status(store, store.get_audit(audit.id))
    assert status.status == "succeeded", (status.error, status.failures, logs[-3000:])
    assert {k: (v.done, v.failed, v.pending) for k, v in status.progress.items()} == {
        "mcq": (360, 0, 0),
        "answer": (360, 0, 0),
        "judge": (960, 0, 0),
    }
    # no batch failed: no task raised, no connection error, no call sent twice
    assert "MaxConnectionsError" not in logs
    assert " raised unexpected" not in logs, logs[-3000:]
    lines = [line.split("\t") for line in ledger.read_text().splitlines()]
    assert len({(model, digest) for model, digest, *_ in lines}) == len(lines) == 1680
    # both processes called, and more than 128 calls were in flight at once: each call lasts
    # at least `latency`, so the calls started within any `latency`-long window overlap
    assert len({pid for _, _, pid, _ in lines}) == 2
    starts = sorted(float(at) for *_, at in lines)
    in_flight = max(
        bisect.bisect_left(starts, start + latency) - i for i, start in enumerate(starts)
    )
    assert in_flight > 128, in_flight


def test_calls_waiting_on_the_shared_bucket_take_one_turn_each_at_the_rate() -> None:
    with redis_databases() as (broker, _):
        provider = f"p-{uuid.uuid4().hex[:8]}"
        redis_buckets = RedisBuckets(broker)
        buckets = CountingBuckets(redis_buckets)

        async def run() -> tuple[list[float], RateLimiter]:
            try:
                return await paced_finish_times(buckets, provider, calls=40)
            finally:
                await redis_buckets.close()

        started = time.monotonic()
        finished, limiter = asyncio.run(run())
    # one script call per call, and one more per turn a call woke too late for (more than
    # 0.05 s after it, which a loaded machine does): nobody polled the bucket again
    assert buckets.calls == 40 + limiter.stale_turns
    assert max(finished) - started >= 3.8  # 40 calls at 10 per second, one held at once


def test_a_clock_read_before_another_processs_take_never_refills_the_shared_bucket_twice() -> None:
    # Two processes read the time, then take in the other order (one waited for a connection or
    # the processor): the late one pays at the bucket's time, as in LocalBuckets. 1 call per
    # second from a bucket of one call; the times are the callers' own readings.
    with redis_databases() as (broker, _):
        provider = f"p-{uuid.uuid4().hex[:8]}"
        readings = [10.0, 11.0, 10.5, 12.0]
        times = iter(readings)
        buckets = RedisBuckets(broker, clock=lambda: next(times))

        async def takes() -> list[float]:
            try:
                return [await buckets.take([Take(provider, 1.0, 1.0, 1.0)]) for _ in readings]
            finally:
                await buckets.close()

        waits = asyncio.run(takes())
    turns = [now + wait for now, wait in zip(readings, waits, strict=True)]
    # 10, 11, then 12 (not 11.5: set back to 10.5, the bucket would refill 10.5..11 again and
    # let three calls through within 1.5 s), then 13
    assert turns == pytest.approx([10.0, 11.0, 12.0, 13.0])


def test_the_shared_buckets_give_the_turns_of_the_local_rule_for_calls_paying_two_buckets() -> None:
    # The Lua script and LocalBuckets are one rule written twice: the same takes at the same
    # clock readings (a request bucket and a token bucket, calls of mixed sizes, a reading that
    # arrives late) get the same turns from both.
    readings = [0.0, 0.0, 0.1, 0.05, 0.4, 2.0, 2.0, 2.1, 5.0, 5.0]
    sizes = [10, 400, 10, 250, 10, 10, 900, 10, 10, 300]

    def takes(provider: str, tokens: int) -> list[Take]:
        return [
            Take(f"{provider}:rpm", 2.5, 1.0, 10.0),
            Take(f"{provider}:tpm", 250.0, float(tokens), 1000.0),
        ]

    local_times = iter(readings)
    local = LocalBuckets(clock=lambda: next(local_times))

    async def local_waits() -> list[float]:
        return [await local.take(takes("p", size)) for size in sizes]

    expected = asyncio.run(local_waits())
    with redis_databases() as (broker, _):
        provider = f"p-{uuid.uuid4().hex[:8]}"
        shared_times = iter(readings)
        shared = RedisBuckets(broker, clock=lambda: next(shared_times))

        async def shared_waits() -> list[float]:
            try:
                return [await shared.take(takes(provider, size)) for size in sizes]
            finally:
                await shared.close()

        waits = asyncio.run(shared_waits())
    assert waits == pytest.approx(expected, abs=1e-9)
    # and the rule itself, by hand for the first calls: 10 tokens at 0 (both buckets full); 400
    # tokens, more than the token bucket's 250, waits for it to be full (240 held: 0.01 s) and
    # leaves it 150 in debt; the next 10 tokens at 0.1 s find -150 + 90 and wait 0.07 s more
    assert expected[:3] == pytest.approx([0.0, 0.01, 0.07])
