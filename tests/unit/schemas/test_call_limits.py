"""Which limits a model's calls share: one budget per OpenAI-compatible server (keyed by its
api_base), per provider otherwise; a local server's calls in flight start low."""

from __future__ import annotations

from typing import Any

from auditor.schemas.providers import is_local_base
from auditor.schemas.spec import HOSTED_CONCURRENCY, LOCAL_CONCURRENCY, parse_spec


def _spec(models: list[dict[str, Any]], limits: dict[str, Any] | None = None) -> Any:
    return parse_spec(
        {
            "name": "limits",
            "simulation": {"seed": 1, "n_items": 3},
            "judges": models[:1],
            "candidates": models[1:],
            "limits": limits or {},
        }
    )


def test_two_local_servers_of_one_provider_get_a_budget_each_and_start_low() -> None:
    spec = _spec(
        [
            {"model": "openai/gemma", "name": "a", "api_base": "http://127.0.0.1:8081/v1"},
            {"model": "openai/smollm", "name": "b", "api_base": "http://127.0.0.1:8082/v1/"},
            {"model": "openai/gpt-4o-mini", "name": "c"},
        ]
    )
    keys = {m.display_name: m.limit_key for m in spec.all_models}
    assert keys == {
        "a": "http://127.0.0.1:8081/v1",
        "b": "http://127.0.0.1:8082/v1",
        "c": "openai",
    }
    concurrency = {k: lim.max_concurrency for k, lim in spec.call_limits().items()}
    assert concurrency == {
        "http://127.0.0.1:8081/v1": LOCAL_CONCURRENCY,
        "http://127.0.0.1:8082/v1": LOCAL_CONCURRENCY,
        "openai": HOSTED_CONCURRENCY,
    }
    assert LOCAL_CONCURRENCY < HOSTED_CONCURRENCY


def test_limits_given_per_server_per_provider_or_not_at_all() -> None:
    spec = _spec(
        [
            {"model": "openai/a", "name": "a", "api_base": "http://vllm:8000/v1"},
            {"model": "openai/b", "name": "b", "api_base": "http://10.0.0.7:8000/v1"},
            {"model": "ollama_chat/llama3", "name": "c"},  # litellm's default: localhost
            {"model": "anthropic/claude", "name": "d"},
        ],
        limits={
            "http://vllm:8000/v1": {"max_concurrency": 16},
            "openai": {"rpm": 600},  # for each openai server without limits of its own
        },
    )
    limits = spec.call_limits()
    assert limits["http://vllm:8000/v1"].max_concurrency == 16
    assert limits["http://vllm:8000/v1"].rpm is None
    assert (
        limits["http://10.0.0.7:8000/v1"].rpm,
        limits["http://10.0.0.7:8000/v1"].max_concurrency,
    ) == (
        600,
        LOCAL_CONCURRENCY,
    )
    assert limits["ollama_chat"].max_concurrency == LOCAL_CONCURRENCY
    assert limits["anthropic"].max_concurrency == HOSTED_CONCURRENCY


def test_local_servers_are_recognized_by_their_address_or_name() -> None:
    local = [
        "http://localhost:11434",
        "http://127.0.0.1:8080/v1",
        "http://[::1]:8000/v1",
        "http://192.168.1.20:8000/v1",
        "http://172.17.0.3:8000",
        "http://vllm:8000/v1",
        "http://gpu-box.local:8000/v1",
    ]
    hosted = [
        "https://api.openai.com/v1",
        "https://my-resource.openai.azure.com",
        "http://8.8.8.8:8000/v1",
        None,
    ]
    assert [is_local_base(u) for u in local] == [True] * len(local)
    assert [is_local_base(u) for u in hosted] == [False] * len(hosted)
