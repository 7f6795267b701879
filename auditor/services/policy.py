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
from auditor.schemas.providers import HOSTED_PROVIDERS, LOCAL_DEFAULT_BASES, effective_api_base
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
