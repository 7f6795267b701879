"""The first call of a process to a rate-limited provider goes alone: litellm's first call in a
process pays its set-up (0.7 s quiet, over 2 s loaded), and calls the limiter let through
meanwhile would all reach the provider together when it ends."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from auditor.ecosystem import EcosystemConfig, FamilyConfig
from auditor.schemas.spec import SimulatedProvider
from workers.llm import CallRequest, ClientPolicy, complete_all
from workers.ratelimit import LocalBuckets, RateLimiter
from workers.simulated import register_world

LATENCY = 0.3


def _arrivals(ledger: Path, api_base: str, limit_key: str, batch: str) -> list[float]:
    """Run one batch of 5 calls and return when each reached the provider (from its ledger)."""
    requests = [
        CallRequest(
            key=f"{batch}{k}",
            model="a-1",
            provider=limit_key,
            kwargs={
                "model": "sim/a-1",
                "api_base": api_base,
                "messages": [{"role": "user", "content": f"{batch} question {k}"}],
            },
        )
        for k in range(5)
    ]
    limiter = RateLimiter(LocalBuckets(), {limit_key: (60_000, None)})  # never the bottleneck
    before = len(ledger.read_text().splitlines()) if ledger.exists() else 0
    responses = asyncio.run(complete_all(requests, ClientPolicy(), limiter))
    assert all(r.ok for r in responses), [r.error for r in responses]
    lines = ledger.read_text().splitlines()[before:]
    return sorted(float(line.split("\t")[3]) for line in lines)


@pytest.mark.slow  # the provider answers after LATENCY seconds of real time
def test_the_first_call_to_a_limited_key_returns_before_the_others_go(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    api_base = f"sim://first-call-{uuid.uuid4().hex[:8]}"
    register_world(
        api_base,
        EcosystemConfig(seed=1, n_items=3, families=[FamilyConfig(name="a", size=2)]),
        SimulatedProvider(latency=LATENCY, ledger=str(ledger)),
    )
    limit_key = f"limited-{uuid.uuid4().hex[:8]}"  # a key no call of this process has used
    first, *others = _arrivals(ledger, api_base, limit_key, "a")
    assert len(others) == 4
    assert min(others) >= first + LATENCY  # the others went once the first had come back
    # once a call to the key has come back, the process's calls to it go together again
    again = _arrivals(ledger, api_base, limit_key, "b")
    assert max(again) - min(again) < LATENCY
