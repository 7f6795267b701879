"""Where a model's calls go: the provider defaults litellm applies when a spec names no
``api_base``, and which servers are on this machine or its private network.

Used by the API's policy (a tenant may only reach allowed bases) and by the call limits (each
server has its own concurrency budget; a local server's starts low).
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import urlsplit

__all__ = ["HOSTED_PROVIDERS", "LOCAL_DEFAULT_BASES", "effective_api_base", "is_local_base"]


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


_LOCAL_SUFFIXES: Final = (".local", ".internal", ".localhost", ".lan", ".home.arpa")


def is_local_base(url: str | None) -> bool:
    """Whether ``url`` names a server on this machine or a private network: a loopback,
    private or link-local address, ``localhost``, a single-label host name (a compose or
    cluster service such as ``http://vllm:8000/v1``) or a host under a local-only suffix.

    >>> is_local_base("http://127.0.0.1:8080/v1"), is_local_base("http://vllm:8000/v1")
    (True, True)
    >>> is_local_base("https://api.openai.com/v1"), is_local_base(None)
    (False, False)
    """
    if not url:
        return False
    try:
        host = urlsplit(url if "://" in url else f"//{url}").hostname
    except ValueError:
        return False
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith(_LOCAL_SUFFIXES)
    return address.is_loopback or address.is_private or address.is_link_local
