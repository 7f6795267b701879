"""The simulated provider's rate-limit mode: above its rpm it answers 429 with a retry-after
that says when the next call will be served, and serves again once that time has passed."""

from __future__ import annotations

import time

import litellm
import pytest

from auditor.ecosystem import EcosystemConfig, FamilyConfig
from auditor.schemas.spec import SimulatedProvider
from workers.llm import _retry_after
from workers.simulated import register_world


@pytest.mark.slow  # waits for the bucket in real time (up to 2 s)
def test_calls_above_the_rpm_get_429_with_the_wait_until_the_next_one_is_served() -> None:
    api_base = "sim://rate-limit-test"
    config = EcosystemConfig(seed=1, n_items=3, families=[FamilyConfig(name="a", size=2)])
    # 30 rpm = 0.5 per second and a bucket of two seconds' worth: one call passes, the next
    # is told to wait until the bucket holds a call again (at most 2 s).
    register_world(api_base, config, SimulatedProvider(rpm=30, burst_seconds=2.0))
    request = {
        "model": "sim/a-1",
        "api_base": api_base,
        "messages": [{"role": "user", "content": "hello"}],
        "num_retries": 0,
    }
    litellm.completion(**request)
    with pytest.raises(litellm.RateLimitError) as caught:
        litellm.completion(**request)
    wait = _retry_after(caught.value)
    assert wait is not None and 0.0 < wait <= 2.0
    time.sleep(wait + 0.05)
    litellm.completion(**request)  # served again once the bucket refilled
