"""Calls waiting on a rate limit are paced at its rate, each asking the bucket once: the
bucket reserves a caller's turn instead of letting every waiting call poll it again."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.limits import CountingBuckets, paced_finish_times
from workers.ratelimit import LocalBuckets


@pytest.mark.slow  # waits ~3.9 s of real time by design
def test_forty_waiting_calls_take_one_turn_each_at_the_rate() -> None:
    buckets = CountingBuckets(LocalBuckets())
    started = time.monotonic()
    finished = asyncio.run(paced_finish_times(buckets, "p", calls=40))
    span = max(finished) - started
    assert buckets.calls == 40  # one take per call: nobody polled the bucket again
    # 600 rpm = 10 per second from a bucket holding one call: the 40th goes after ~3.9 s,
    # never sooner (an upper bound would only measure how busy the machine is)
    assert span >= 3.8
