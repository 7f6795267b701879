"""Which limits a model's calls share: one budget per OpenAI-compatible server (keyed by its
api_base), per provider otherwise; a local server's calls in flight start low."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.schemas.providers import is_local_base
from auditor.schemas.spec import HOSTED_CONCURRENCY, LOCAL_CONCURRENCY, SpecError, parse_spec


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
    keys = {m.display_name: spec.limit_key(m) for m in spec.all_models}
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
    # the openai server without limits of its own: openai's, a budget of its own
    server = "openai at http://10.0.0.7:8000/v1"
    assert (limits[server].rpm, limits[server].max_concurrency) == (600, LOCAL_CONCURRENCY)
    assert set(limits) == {"http://vllm:8000/v1", server, "ollama_chat", "anthropic"}
    assert limits["ollama_chat"].max_concurrency == LOCAL_CONCURRENCY
    assert limits["anthropic"].max_concurrency == HOSTED_CONCURRENCY


def test_a_providers_limits_hold_for_its_models_on_a_server_shared_with_other_providers() -> None:
    # a proxy serving two providers: before, the first model of the server decided the
    # server's limits, so the second provider's max_concurrency of 1 was silently dropped
    proxy = "http://127.0.0.1:4000/v1"
    spec = _spec(
        [
            {"model": "openai/gpt", "name": "gpt", "api_base": proxy},
            {"model": "openai/claude", "name": "claude", "api_base": proxy, "provider": "anthr"},
            {"model": "openai/gemini", "name": "gemini", "api_base": proxy, "provider": "goog"},
            {"model": "openai/gpt-mini", "name": "gpt-mini", "api_base": proxy + "/"},
        ],
        limits={"anthr": {"max_concurrency": 1, "rpm": 50}, "goog": {"tpm": 9000}},
    )
    keys = {m.display_name: spec.limit_key(m) for m in spec.all_models}
    assert keys == {
        "gpt": proxy,  # no limits under openai: the server's budget, shared
        "gpt-mini": proxy,
        "claude": f"anthr at {proxy}",
        "gemini": f"goog at {proxy}",
    }
    limits = spec.call_limits()
    assert (limits[f"anthr at {proxy}"].max_concurrency, limits[f"anthr at {proxy}"].rpm) == (1, 50)
    assert (limits[f"goog at {proxy}"].tpm, limits[f"goog at {proxy}"].max_concurrency) == (
        9000,
        LOCAL_CONCURRENCY,
    )
    assert (limits[proxy].rpm, limits[proxy].max_concurrency) == (None, LOCAL_CONCURRENCY)
    # limits of the server's own hold for every model on it, whatever its provider
    own = _spec(
        [
            {"model": "openai/gpt", "name": "gpt", "api_base": proxy},
            {"model": "openai/claude", "name": "claude", "api_base": proxy, "provider": "anthr"},
        ],
        limits={proxy: {"max_concurrency": 2}, "anthr": {"max_concurrency": 1}},
    )
    assert {own.limit_key(m) for m in own.all_models} == {proxy}
    assert own.call_limits()[proxy].max_concurrency == 2


def test_a_servers_limits_hold_whether_or_not_either_side_ends_in_a_slash() -> None:
    for given, named in (
        ("http://vllm:8000/v1/", "http://vllm:8000/v1"),
        ("http://vllm:8000/v1", "http://vllm:8000/v1/"),
    ):
        spec = _spec(
            [
                {"model": "openai/a", "name": "a", "api_base": named},
                {"model": "openai/b", "name": "b", "api_base": "http://10.0.0.7:8000/v1"},
            ],
            limits={given: {"max_concurrency": 16}},
        )
        # before, limits under "…/v1/" were not found for the server "…/v1": 4 in flight
        assert spec.call_limits()["http://vllm:8000/v1"].max_concurrency == 16
    with pytest.raises(SpecError) as caught:
        _spec(
            [
                {"model": "openai/a", "name": "a", "api_base": "http://vllm:8000/v1"},
                {"model": "openai/b", "name": "b"},
            ],
            limits={"http://vllm:8000/v1": {"rpm": 1}, "http://vllm:8000/v1/": {"rpm": 2}},
        )
    assert caught.value.problems[0].path == "limits"
    assert "'http://vllm:8000/v1/' names the same server" in caught.value.problems[0].message


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
