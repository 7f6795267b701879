"""The API's SSRF check resolves a model's base URL the way litellm will (issue 14, item 4):
every provider litellm knows is asked for its default base (``litellm.get_llm_provider``), and
one that defaults to a loopback or private address must resolve, in `effective_api_base`, to
that very address, so the check and its message are about where the call would go."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import litellm  # tests/conftest.py sets LITELLM_LOCAL_MODEL_COST_MAP (no download at import)

from auditor.services.policy import HOSTED_PROVIDERS, LOCAL_DEFAULT_BASES, effective_api_base


def _litellm_default_base(provider: str) -> str | None:
    try:
        base: str | None = litellm.get_llm_provider(f"{provider}/some-model")[3]
        return base
    except Exception:  # litellm does not route this prefix without more (a key, an api_base)
        return None


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


PROVIDERS = sorted(str(getattr(p, "value", p)) for p in litellm.provider_list)


def test_every_local_default_of_litellm_is_resolved_to_its_address() -> None:
    local = {}
    for provider in PROVIDERS:
        base = _litellm_default_base(provider)
        if base is not None and _is_local(base):
            local[provider] = base
    assert local, "litellm names no local default: the test would check nothing"
    wrong = {
        provider: (base, effective_api_base(f"{provider}/m", None))
        for provider, base in local.items()
        if (effective_api_base(f"{provider}/m", None) or "").rstrip("/") != base.rstrip("/")
    }
    assert wrong == {}, "litellm's default (first) differs from the API's (second)"


def test_hosted_providers_default_to_public_https_in_litellm() -> None:
    for provider in sorted(HOSTED_PROVIDERS - {"sim"}):
        base = _litellm_default_base(provider)
        assert base is None or (base.startswith("https://") and not _is_local(base)), provider
        assert effective_api_base(f"{provider}/m", None) is None


def test_local_providers_and_unknown_ones_always_resolve_to_something_checked() -> None:
    for provider, base in LOCAL_DEFAULT_BASES.items():
        assert effective_api_base(f"{provider}/m", None) == base
    for provider in PROVIDERS:
        if provider not in HOSTED_PROVIDERS:  # never "the public API" by default
            assert effective_api_base(f"{provider}/m", None) is not None, provider
    assert effective_api_base("no-prefix-model", None) == "no-prefix-model/ default"
