"""What the per-call savings of the model seam keep: the cost of a simulated call (stamped by the
provider instead of looked up by litellm), operator-configured litellm callbacks (still called),
and the masking of a credential set after start-up (the environment's secrets are cached)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

from auditor.ecosystem import EcosystemConfig, FamilyConfig
from workers.llm import CallRequest, ClientPolicy, complete_all
from workers.ratelimit import LocalBuckets, RateLimiter
from workers.redaction import MASK, redact
from workers.simulated import PRICE_PER_TOKEN, register_world

API_BASE = "sim://seam-overhead-test"


def _call() -> Any:
    register_world(
        API_BASE, EcosystemConfig(seed=1, n_items=3, families=[FamilyConfig(name="a", size=2)])
    )
    request = CallRequest(
        key="k1",
        model="a-1",
        provider="sim",
        kwargs={
            "model": "sim/a-1",
            "api_base": API_BASE,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        },
    )
    limiter = RateLimiter(LocalBuckets(), {})
    [response] = asyncio.run(complete_all([request], ClientPolicy(), limiter))
    assert response.ok, response.error
    return response


def test_a_simulated_call_costs_its_tokens_at_the_simulated_price() -> None:
    response = _call()
    expected = (
        response.prompt_tokens * PRICE_PER_TOKEN[0]
        + response.completion_tokens * PRICE_PER_TOKEN[1]
    )
    assert response.prompt_tokens > 0 and response.completion_tokens > 0
    assert response.cost_usd == pytest.approx(expected, rel=1e-12)


class _Recorder(CustomLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.successes: list[str] = []

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.successes.append(str(kwargs.get("model")))


def test_callbacks_an_operator_configured_are_still_called() -> None:
    recorder = _Recorder()
    before = litellm.callbacks
    litellm.callbacks = [recorder]
    try:
        _call()
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        asyncio.run(GLOBAL_LOGGING_WORKER.flush())  # litellm logs from a background queue
    finally:
        litellm.callbacks = before
    assert recorder.successes == ["a-1"]


def test_a_credential_set_after_a_first_redaction_is_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "late-secret-value-1234"
    assert redact(f"echo {secret}") == f"echo {secret}"  # not yet a credential of the process
    monkeypatch.setenv("LATE_SERVICE_TOKEN", secret)
    assert redact(f"echo {secret}") == f"echo {MASK}"
    monkeypatch.setenv("LATE_SERVICE_TOKEN", "another-secret-5678")
    assert redact("echo another-secret-5678") == f"echo {MASK}"
    monkeypatch.delenv("LATE_SERVICE_TOKEN")
    assert os.environ.get("LATE_SERVICE_TOKEN") is None
