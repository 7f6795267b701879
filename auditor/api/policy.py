"""What an audit spec submitted over the API may ask for, beyond being a valid spec.

A spec from the command line is trusted: it comes from the operator. A spec from the API
comes from a tenant, so it may not read the server's files (``bundle``), write them
(``simulated_provider.ledger``), send the server's provider keys elsewhere (an ``api_base``
the operator did not allow, or completion parameters that redirect or authenticate a call),
or read environment variables that are not provider keys (``api_key_env``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

from auditor.schemas.bundle import Problem
from auditor.schemas.spec import AuditSpec

__all__ = [
    "ALLOWED_MODEL_PARAMS",
    "API_KEY_ENV_PATTERN",
    "HOSTED_PROVIDERS",
    "LOCAL_DEFAULT_BASES",
    "effective_api_base",
    "spec_problems",
]

ALLOWED_MODEL_PARAMS: Final = frozenset(
    {
        "top_p",
        "top_k",
        "min_p",
        "seed",
        "stop",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "reasoning_effort",
    }
)
"""Completion parameters a spec may set over the API: sampling only. Anything else could
change where a call goes or which credentials it carries (api_base, base_url, headers, ...)."""

API_KEY_ENV_PATTERN: Final = re.compile(r"(?!AUDITOR_)[A-Z][A-Z0-9_]{0,62}_API_KEY")
"""Environment variables a spec may name for a provider key: ``<PROVIDER>_API_KEY``, never the
service's own ``AUDITOR_*`` settings (they hold database and broker URLs)."""


HOSTED_PROVIDERS: Final = frozenset(
    {
        "openai",
        "anthropic",
        "gemini",
        "mistral",
        "groq",
        "cohere",
        "cohere_chat",
        "deepseek",
        "xai",
        "together_ai",
        "fireworks_ai",
        "openrouter",
        "perplexity",
        "deepinfra",
        "anyscale",
        "cerebras",
        "sim",
    }
)
"""Providers whose litellm default base URL is the provider's public API: a model of one of
these may omit ``api_base`` over the API. (The operator may point them elsewhere through the
environment, e.g. OPENAI_API_BASE: that is the operator's choice, not the tenant's.)"""

LOCAL_DEFAULT_BASES: Final = {
    "ollama": "http://localhost:11434",
    "ollama_chat": "http://localhost:11434",
    "llamafile": "http://127.0.0.1:8080/v1",
    "lemonade": "http://localhost:8000/api/v1",
    "xinference": "http://127.0.0.1:9997/v1",
    "lm_studio": "http://localhost:1234/v1",
    "hosted_vllm": "http://localhost:8000/v1",
    "vllm": "http://localhost:8000/v1",
    "llamacpp": "http://localhost:8080/v1",
    "oobabooga": "http://localhost:5000",
    "triton": "http://localhost:8000",
    "docker_model_runner": "http://localhost:22088/engines/llama.cpp",
    "langgraph": "http://localhost:2024",
}
"""Where litellm sends a model of these providers when no ``api_base`` is given: a server on
the API's own machine. Over the API such a model must name an allowed ``api_base``. A unit test
asks litellm itself (``get_llm_provider``) for every provider it knows: each one whose default
is a loopback or private address must be here, with that address."""


def effective_api_base(model: str, api_base: str | None) -> str | None:
    """The base URL litellm will call for ``model``: its ``api_base`` if given, else its
    provider's local default (`LOCAL_DEFAULT_BASES`), else ``None`` for a hosted provider's
    public API (`HOSTED_PROVIDERS`). An unknown provider without ``api_base`` resolves to the
    string ``"<provider>/ default"``, which no operator lists, so it is refused.

    >>> effective_api_base("ollama_chat/llama3", None)
    'http://localhost:11434'
    >>> effective_api_base("openai/gpt-4o-mini", None) is None
    True
    """
    if api_base is not None:
        return api_base
    provider = model.split("/", 1)[0] if "/" in model else ""
    if provider in HOSTED_PROVIDERS:
        return None
    return LOCAL_DEFAULT_BASES.get(provider, f"{provider or model}/ default")


def spec_problems(spec: AuditSpec, *, allowed_api_bases: Collection[str]) -> list[Problem]:
    """Every reason the API refuses an otherwise valid spec (empty if none)."""
    problems: list[Problem] = []
    if spec.bundle is not None:
        problems.append(
            Problem(
                "bundle",
                "file paths are not accepted over the API; upload the evaluation "
                "(POST /v1/evaluations) and give its evaluation_id",
            )
        )
    if spec.simulated_provider.ledger is not None:
        problems.append(
            Problem("simulated_provider.ledger", "a ledger file cannot be set over the API")
        )
    for section, models in (("judges", spec.judges), ("candidates", spec.candidates)):
        for index, model in enumerate(models):
            at = f"{section}[{index}]"
            base = effective_api_base(model.model, model.api_base)
            if base is not None and base not in allowed_api_bases:
                implied = "" if model.api_base is not None else f" (implied by {model.model!r})"
                problems.append(
                    Problem(
                        f"{at}.api_base",
                        f"{base!r}{implied} is not an API base this server allows (the "
                        "operator lists them in AUDITOR_ALLOWED_API_BASES)",
                    )
                )
            if model.api_key_env is not None and not API_KEY_ENV_PATTERN.fullmatch(
                model.api_key_env
            ):
                problems.append(
                    Problem(
                        f"{at}.api_key_env",
                        "must name a provider key variable such as OPENAI_API_KEY "
                        f"(<PROVIDER>_API_KEY, not AUDITOR_*); got {model.api_key_env!r}",
                    )
                )
            for name in sorted(set(model.params) - ALLOWED_MODEL_PARAMS):
                problems.append(
                    Problem(
                        f"{at}.params.{name}",
                        "not allowed over the API; allowed: "
                        + ", ".join(sorted(ALLOWED_MODEL_PARAMS)),
                    )
                )
    return problems
