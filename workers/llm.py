"""The one place that calls models: `litellm.acompletion` with a timeout, retries of transient
errors with backoff (honouring retry-after), fail-fast on permanent errors, shared rate limits
and a per-model concurrency bound. Everything else in the service goes through `complete_all`.

Credentials: a model gets exactly the key its spec names (``api_key_env``) or none: without
one, `NO_CREDENTIAL` is sent so that litellm cannot fall back to the operator's environment
(``OPENAI_API_KEY`` and the like). Secrets: every error text and reply leaves this module
redacted (`workers.redaction`), and so does every log record of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import re
import socket
import time
from collections.abc import Callable, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Final

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network lookup at import

import litellm

from workers.ratelimit import RateLimiter
from workers.redaction import install_log_redaction, redact, redact_optional

__all__ = [
    "NO_CREDENTIAL",
    "CallRequest",
    "CallResponse",
    "ClientPolicy",
    "complete_all",
    "is_transient",
    "missing_credentials",
]

NO_CREDENTIAL: Final = "no-key"
"""Sent as the key of a model whose spec names no ``api_key_env`` (local servers ignore it);
an empty key would make litellm read the provider's variable from the environment."""

litellm.suppress_debug_info = True
litellm.telemetry = False
install_log_redaction()
# litellm logs every call at INFO; under a Celery worker's root logger that is a line per call.
logging.getLogger("LiteLLM").setLevel(logging.WARNING)


def _without_litellm_logging() -> AbstractContextManager[Any]:
    """The context a call runs in: without litellm's success and failure logging when no litellm
    callback is configured (this service registers none).

    litellm builds a logging payload for every call and queues it to its logging worker whether
    or not anyone reads it: about a quarter of its per-call time. Its way to skip that for a
    call is to run it as an "internal" call (``litellm._internal_context.internal_sub_call``),
    which changes logging and proxy budget bookkeeping only: the response, its cost and the
    exceptions raised are the same. Where that hook does not exist (another litellm version) or
    an operator configured callbacks, calls run as litellm makes them."""
    if any(
        getattr(litellm, name, None)
        for name in (
            "callbacks",
            "success_callback",
            "failure_callback",
            "_async_success_callback",
            "_async_failure_callback",
            "input_callback",
            "service_callback",
        )
    ):
        return contextlib.nullcontext()
    try:
        from litellm._internal_context import internal_sub_call
    except ImportError:
        return contextlib.nullcontext()
    return internal_sub_call()


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

_MODEL_LEVEL_STATUS = frozenset({401, 403, 404})
_MISSING_CREDENTIALS = re.compile(
    r"missing credentials|api_key client option must be set|no api key|api key not (?:found|set)",
    re.IGNORECASE,
)
"""litellm raises a missing key as a 500 (InternalServerError/APIError): permanent all the same."""


def _is_model_level(error: BaseException) -> bool:
    status = getattr(error, "status_code", None)
    return (
        isinstance(error, _MODEL_LEVEL)
        or status in _MODEL_LEVEL_STATUS
        or bool(_MISSING_CREDENTIALS.search(str(error)))
    )


def _causes(error: BaseException) -> list[BaseException]:
    """The error and every error it was raised from or during (litellm wraps the client's)."""
    seen: list[BaseException] = []
    stack: list[BaseException | None] = [error]
    while stack and len(seen) < 16:
        current = stack.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        stack += [
            current.__cause__,
            current.__context__,
            getattr(current, "original_exception", None),
        ]
    return seen


_UNREACHABLE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})


def _cannot_connect(error: BaseException) -> str | None:
    """Why nothing answered at all, if so: the connection was refused or the host has no
    address (litellm reports both as a 500 "Connection error."). A timeout is not this."""
    found = [
        cause
        for cause in _causes(error)
        if isinstance(cause, socket.gaierror)
        or (isinstance(cause, OSError) and cause.errno in _UNREACHABLE_ERRNOS)
    ]
    if not found:
        return None
    root = found[-1]  # the innermost: the socket's own error, not a client's wrapping of it
    return f"{type(root).__name__}: {root}"


def is_transient(error: BaseException) -> bool:
    """Transient: worth retrying (429, 5xx, timeouts, connection resets), unless the error
    concerns the model itself (no or a wrong credential, an unknown model)."""
    if isinstance(error, _PERMANENT) or _is_model_level(error):
        return False
    if isinstance(error, _TRANSIENT):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def missing_credentials(names: list[str | None]) -> list[str]:
    """The ``api_key_env`` variables among ``names`` that this process does not hold."""
    return sorted({name for name in names if name and not os.environ.get(name)})


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
    unreachable: bool = False  # transient, but nothing answered at its address at all
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
    should_stop: Callable[[str], str | None],
) -> CallResponse:
    kwargs = dict(request.kwargs)
    if request.api_key_env:
        key = os.environ.get(request.api_key_env)
        if not key:
            return CallResponse(
                request.key,
                ok=False,
                permanent=True,
                model_failure=True,
                attempts=0,
                error=f"environment variable {request.api_key_env} is not set (api_key_env)",
            )
        kwargs["api_key"] = key
    else:
        kwargs["api_key"] = NO_CREDENTIAL
    estimated_tokens = sum(len(str(m.get("content", ""))) for m in kwargs["messages"]) // 4 + int(
        kwargs.get("max_tokens") or 0
    )
    attempt = 0
    while True:
        # The concurrency slot first, then the rate-limit bucket: calls waiting for a slot hold
        # no bucket tokens and no connection to the limiter.
        async with semaphore:
            stopped = should_stop(request.model)
            if stopped is None:
                await limiter.acquire(request.provider, estimated_tokens)
                stopped = should_stop(request.model)  # and again after the limiter's wait
            if stopped is not None:  # checked after the waits: nothing queued is sent
                return CallResponse(
                    request.key,
                    ok=False,
                    permanent=True,
                    model_failure=True,
                    attempts=attempt,
                    error=f"not sent: the model failed for good: {stopped}",
                )
            attempt += 1
            started = time.perf_counter()  # the request alone, not the wait for a slot
            try:
                with _without_litellm_logging():
                    call = litellm.acompletion(
                        **kwargs, timeout=policy.timeout, num_retries=0, drop_params=True
                    )
                    response = await asyncio.wait_for(call, timeout=policy.timeout + 1.0)
                error = None
            except Exception as caught:  # classified below; nothing is swallowed
                error = caught
            latency_ms = (time.perf_counter() - started) * 1000.0
        if error is not None:
            message = redact(f"{type(error).__name__}: {error}")[:500]
            if not is_transient(error):
                return CallResponse(
                    request.key,
                    ok=False,
                    permanent=True,
                    error=message,
                    model_failure=_is_model_level(error),
                    attempts=attempt,
                )
            refused = _cannot_connect(error)
            if refused is not None:
                # Not retried here: whether it is worth retrying is the pipeline's call (a
                # model that never answered is unreachable; one that did is retried later).
                return CallResponse(
                    request.key,
                    ok=False,
                    error=redact(f"{message} ({refused})")[:600],
                    unreachable=True,
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
            text=redact_optional(text),
            top_logprobs=top,
            latency_ms=latency_ms,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=float(cost) if cost is not None else None,
            attempts=attempt,
            provider_model=getattr(response, "model", None),
        )


_ANSWERED_KEYS: set[str] = set()
"""Rate-limited keys a call of this process has come back from. Until one has, a key's calls
wait for its first call, which pays litellm's first-call set-up in this process (0.7 s of
imports on a quiet machine, over 2 s loaded; a real provider adds its first connection): calls
the limiter let through meanwhile would reach the provider together when it ends, a burst
beyond its bucket (the first 16 calls of a bench run answered 429)."""


async def complete_all(
    requests: Sequence[CallRequest],
    policy: ClientPolicy,
    limiter: RateLimiter,
    *,
    on_response: Callable[[CallResponse], None] | None = None,
    stopped: Callable[[str], str | None] | None = None,
    slots: MutableMapping[tuple[str, int], asyncio.Semaphore] | None = None,
) -> list[CallResponse]:
    """Run calls concurrently (bounded per provider); a model that cannot be called (auth,
    unknown model, missing credentials) stops its remaining calls in this batch at once: none
    waiting for a slot is sent, they come back as failed. ``on_response`` sees each response
    as it arrives (to store it at once); ``stopped`` names models that failed elsewhere (another
    batch): their calls not yet sent are not sent. The first call of this process to a
    rate-limited key goes alone (see `_ANSWERED_KEYS`).

    ``slots`` holds the calls in flight of other batches running on the same event loop (per
    limit key and bound): given, a key's bound holds for all of them together, not for each
    batch (each of the four batches of `auditor run` had its own: up to four calls at once to a
    server limited to one)."""

    def slot(provider: str) -> asyncio.Semaphore:
        bound = policy.concurrency.get(provider, policy.default_concurrency)
        if slots is None:
            return asyncio.Semaphore(bound)
        semaphore = slots.get((provider, bound))
        if semaphore is None:
            semaphore = slots[(provider, bound)] = asyncio.Semaphore(bound)
        return semaphore

    semaphores = {provider: slot(provider) for provider in {r.provider for r in requests}}
    failed_models: dict[str, str] = {}

    def should_stop(model: str) -> str | None:
        reason = failed_models.get(model)
        if reason is None and stopped is not None:
            reason = stopped(model)
        return reason

    first_calls: dict[str, asyncio.Future[None]] = {}

    async def run(request: CallRequest) -> CallResponse:
        key = request.provider
        if limiter.limits_calls(key) and key not in _ANSWERED_KEYS:
            first = first_calls.get(key)
            if first is None:  # this call goes first, alone
                first_calls[key] = asyncio.get_running_loop().create_future()
                try:
                    return await finish(request)
                finally:
                    _ANSWERED_KEYS.add(key)
                    first_calls[key].set_result(None)
            await first
        return await finish(request)

    async def finish(request: CallRequest) -> CallResponse:
        response = await _complete_one(
            request,
            policy,
            limiter,
            semaphores[request.provider],
            should_stop,
        )
        if response.model_failure:
            failed_models.setdefault(request.model, response.error or "failed")
        if on_response is not None:
            on_response(response)
        return response

    return list(await asyncio.gather(*(run(r) for r in requests)))
