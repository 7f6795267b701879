"""The one place that calls models: `litellm.acompletion` with a timeout, retries of transient
errors with backoff (honouring retry-after), fail-fast on permanent errors, shared rate limits
and a per-model concurrency bound. Everything else in the service goes through `complete_all`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network lookup at import

import litellm

from workers.ratelimit import RateLimiter

__all__ = ["CallRequest", "CallResponse", "ClientPolicy", "complete_all", "is_transient"]

litellm.suppress_debug_info = True
litellm.telemetry = False
# litellm logs every call at INFO; under a Celery worker's root logger that is a line per call.
logging.getLogger("LiteLLM").setLevel(logging.WARNING)

_TRANSIENT = (
    litellm.RateLimitError,
    litellm.InternalServerError,
    litellm.ServiceUnavailableError,
    litellm.Timeout,
    litellm.APIConnectionError,
    asyncio.TimeoutError,
    ConnectionError,
)
_PERMANENT = (
    litellm.AuthenticationError,
    litellm.PermissionDeniedError,
    litellm.NotFoundError,
    litellm.BadRequestError,
    litellm.UnprocessableEntityError,
    litellm.ContentPolicyViolationError,
    litellm.ContextWindowExceededError,
)


_MODEL_LEVEL = (litellm.AuthenticationError, litellm.PermissionDeniedError, litellm.NotFoundError)
"""Permanent errors that concern the model, not one prompt: its other calls are not sent."""


def is_transient(error: BaseException) -> bool:
    """Transient: worth retrying (429, 5xx, timeouts, connection resets)."""
    if isinstance(error, _PERMANENT):
        return False
    if isinstance(error, _TRANSIENT):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _retry_after(error: BaseException) -> float | None:
    for source in (
        getattr(error, "response", None),
        getattr(error, "litellm_response_headers", None),
    ):
        headers = getattr(source, "headers", source)
        try:
            value = headers.get("retry-after") if headers is not None else None
        except AttributeError:
            value = None
        if value is not None:
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


@dataclass(frozen=True)
class CallRequest:
    key: str
    model: str  # display name (for grouping and concurrency)
    provider: str  # rate-limit bucket
    kwargs: dict[str, Any]  # litellm keyword arguments, without credentials
    api_key_env: str | None = None


@dataclass(frozen=True)
class CallResponse:
    key: str
    ok: bool
    text: str | None = None
    top_logprobs: list[tuple[str, float]] | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    permanent: bool = False
    model_failure: bool = False  # the model cannot be called at all (auth, unknown model)
    attempts: int = 1
    provider_model: str | None = None  # the model the provider says answered (pinned per call)


@dataclass
class ClientPolicy:
    timeout: float = 60.0
    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    concurrency: dict[str, int] = field(default_factory=dict)  # provider -> calls in flight
    default_concurrency: int = 32


def _read(response: Any) -> tuple[str | None, list[tuple[str, float]] | None]:
    choice = response.choices[0]
    text = choice.message.content
    top = None
    logprobs = getattr(choice, "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if content:
        top = [(t.token, float(t.logprob)) for t in (content[0].top_logprobs or [])]
    return text, top


async def _complete_one(
    request: CallRequest,
    policy: ClientPolicy,
    limiter: RateLimiter,
    semaphore: asyncio.Semaphore,
    should_stop: Callable[[str], bool],
) -> CallResponse:
    kwargs = dict(request.kwargs)
    if request.api_key_env:
        key = os.environ.get(request.api_key_env)
        if key is None:
            return CallResponse(
                request.key,
                ok=False,
                permanent=True,
                model_failure=True,
                attempts=0,
                error=f"environment variable {request.api_key_env} is not set",
            )
        kwargs["api_key"] = key
    estimated_tokens = sum(len(str(m.get("content", ""))) for m in kwargs["messages"]) // 4 + int(
        kwargs.get("max_tokens") or 0
    )
    attempt = 0
    while True:
        if should_stop(request.model):
            return CallResponse(
                request.key,
                ok=False,
                permanent=True,
                model_failure=True,
                attempts=attempt,
                error="not sent: the model failed permanently in this batch",
            )
        attempt += 1
        await limiter.acquire(request.provider, estimated_tokens)
        started = time.perf_counter()
        try:
            async with semaphore:
                response = await asyncio.wait_for(
                    litellm.acompletion(**kwargs, timeout=policy.timeout, num_retries=0),
                    timeout=policy.timeout + 1.0,
                )
        except Exception as error:  # classified below; nothing is swallowed
            message = f"{type(error).__name__}: {error}"[:500]
            if not is_transient(error):
                return CallResponse(
                    request.key,
                    ok=False,
                    permanent=True,
                    error=message,
                    model_failure=isinstance(error, _MODEL_LEVEL),
                    attempts=attempt,
                )
            if attempt > policy.max_retries:
                return CallResponse(
                    request.key,
                    ok=False,
                    error=f"gave up after {attempt} attempts: {message}",
                    attempts=attempt,
                )
            delay = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
            delay = _retry_after(error) or delay * (0.5 + random.random() / 2)
            await asyncio.sleep(min(delay, policy.max_delay))
            continue
        text, top = _read(response)
        usage = getattr(response, "usage", None)
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
        return CallResponse(
            request.key,
            ok=True,
            text=text,
            top_logprobs=top,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=float(cost) if cost is not None else None,
            attempts=attempt,
            provider_model=getattr(response, "model", None),
        )


async def complete_all(
    requests: Sequence[CallRequest], policy: ClientPolicy, limiter: RateLimiter
) -> list[CallResponse]:
    """Run calls concurrently (bounded per provider); a model that cannot be called (auth,
    unknown model) stops its remaining calls in this batch, which come back as failed."""
    semaphores = {
        provider: asyncio.Semaphore(policy.concurrency.get(provider, policy.default_concurrency))
        for provider in {r.provider for r in requests}
    }
    failed_models: set[str] = set()

    async def run(request: CallRequest) -> CallResponse:
        response = await _complete_one(
            request,
            policy,
            limiter,
            semaphores[request.provider],
            lambda model: model in failed_models,
        )
        if response.model_failure:
            failed_models.add(request.model)
        return response

    return list(await asyncio.gather(*(run(r) for r in requests)))
