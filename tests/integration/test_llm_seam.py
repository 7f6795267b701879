"""The one litellm seam (workers/llm.py) against a real OpenAI-compatible server process:
credentials, permanent errors, latency (issue 14, defect 7)."""

from __future__ import annotations

import asyncio
import math
import socket
from pathlib import Path
from typing import Any

import litellm
import pytest

from tests.stubs.openai_server import stub_server
from workers.llm import CallRequest, ClientPolicy, complete_all, is_transient
from workers.ratelimit import LocalBuckets, RateLimiter


def _requests(url: str, model: str, n: int, **extra: Any) -> list[CallRequest]:
    return [
        CallRequest(
            key=f"{model}-{i}",
            model=model,
            provider="stub",
            kwargs={
                "model": f"openai/{model}",
                "api_base": url,
                "messages": [{"role": "user", "content": f"Question: q{i}?"}],
                "max_tokens": 8,
            },
            **extra,
        )
        for i in range(n)
    ]


def _run(requests: list[CallRequest], concurrency: int) -> list[Any]:
    policy = ClientPolicy(timeout=10, max_retries=3, base_delay=0.01, max_delay=0.05)
    policy.concurrency = {"stub": concurrency}
    return asyncio.run(complete_all(requests, policy, RateLimiter(LocalBuckets(), {})))


def test_latency_times_the_request_not_the_wait_for_a_slot(tmp_path: Path) -> None:
    # 6 calls, one slot, 0.3 s per reply: the last waits ~1.5 s for its slot. Stored latency
    # must be the ~0.3 s of its own request (before the fix: up to ~1.8 s).
    config = {"models": {"slow": {"latency": 0.3}}}
    with stub_server(config, tmp_path) as server:
        _run(_requests(server.url, "slow", 1), concurrency=1)  # litellm's first-call set-up
        responses = _run(_requests(server.url, "slow", 6), concurrency=1)
    assert all(r.ok for r in responses), [r.error for r in responses]
    latencies = sorted(r.latency_ms for r in responses)
    assert latencies[0] >= 290
    assert latencies[-1] < 1000, latencies


def test_after_a_model_level_error_no_queued_call_is_sent(tmp_path: Path) -> None:
    # Unknown model: 404. With one slot, the first call's 404 stops the 7 queued behind it.
    with stub_server({"models": {}}, tmp_path) as server:
        responses = _run(_requests(server.url, "nope", 8), concurrency=1)
        sent = server.requests()
    assert len(sent) == 1 and sent[0]["status"] == 404
    assert all(not r.ok and r.permanent and r.model_failure for r in responses)
    assert sum(r.attempts for r in responses) == 1
    assert "NotFoundError" in responses[0].error


def test_an_unset_key_variable_is_named_and_nothing_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STUB_UNSET_API_KEY", raising=False)
    with stub_server({"models": {"m": {}}}, tmp_path) as server:
        responses = _run(
            _requests(server.url, "m", 3, api_key_env="STUB_UNSET_API_KEY"), concurrency=4
        )
        assert server.requests() == []
    assert {r.error for r in responses} == {
        "environment variable STUB_UNSET_API_KEY is not set (api_key_env)"
    }


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (litellm.InternalServerError("Missing credentials", "openai", "openai/m"), False),
        (
            litellm.APIError(500, "The api_key client option must be set", "openai", "openai/m"),
            False,
        ),
        (litellm.AuthenticationError("Incorrect API key", "openai", "openai/m"), False),
        (litellm.NotFoundError("no such model", "openai/m", "openai"), False),
        (litellm.InternalServerError("The server had an error", "openai", "openai/m"), True),
        (litellm.RateLimitError("slow down", "openai", "openai/m"), True),
        (litellm.Timeout("timed out", "openai/m", "openai"), True),
    ],
)
def test_model_level_errors_are_permanent_and_only_those(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_transient_faults_are_retried_with_retry_after(tmp_path: Path) -> None:
    # Every distinct request fails twice (429 with retry-after: 0, then 500), then answers.
    config = {"models": {"m": {}}, "faults": {"fail_first": 2, "kinds": [429, 500]}}
    with stub_server(config, tmp_path) as server:
        responses = _run(_requests(server.url, "m", 4), concurrency=4)
        statuses = sorted(r["status"] for r in server.requests())
    assert all(r.ok and r.attempts == 3 for r in responses)
    assert statuses == [200] * 4 + [429] * 4 + [500] * 4
    assert math.isclose(len(statuses), 12)


def test_a_closed_port_and_an_unknown_host_are_unreachable_after_one_attempt() -> None:
    # Nothing listens / no such host: not retried here (before: 4 attempts with max_retries=3);
    # the pipeline decides (a model that never answered fails as unreachable).
    with socket.socket() as probe:  # a free port, closed again
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = _requests(f"http://127.0.0.1:{port}/v1", "m", 2)
    unknown = _requests("http://no-such-host.invalid/v1", "n", 1)
    responses = _run(closed + unknown, concurrency=4)
    assert all(r.unreachable and not r.ok and not r.permanent for r in responses)
    assert [r.attempts for r in responses] == [1, 1, 1]
    assert all("ConnectionRefusedError" in (r.error or "") for r in responses[:2])
    assert "gaierror" in (responses[2].error or ""), responses[2].error
