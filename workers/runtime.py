"""What a process needs to drive audits through `auditor.services.pipeline`: the model client
(the one litellm seam, `workers.llm.complete_all`, with the shared rate limiter and a batch's
heartbeat) and the per-process cache of an audit's immutable inputs. The runners are in
`workers.tasks` (Celery) and `workers.local` (threads in this process)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import lru_cache

from auditor.schemas.bundle import Bundle
from auditor.schemas.spec import AuditSpec
from auditor.services.audits import load_base
from auditor.services.pipeline import CallOrder, ModelClient, Reply
from auditor.services.planning import simulation_api_base
from auditor.settings import WorkerSettings
from auditor.storage.store import AuditRow, Store
from workers.llm import CallRequest, ClientPolicy, complete_all
from workers.ratelimit import LocalBuckets, RateLimiter, make_buckets
from workers.simulated import register_world

__all__ = ["audit_inputs", "model_client"]


@lru_cache(maxsize=32)
def _inputs(url: str, audit_id: str, store: Store) -> tuple[AuditSpec, Bundle]:
    audit = store.get_audit(audit_id)
    if audit is None:
        raise KeyError(f"audit {audit_id!r} not found")
    spec, base = load_base(store, audit)
    if spec.simulation is not None:
        register_world(simulation_api_base(spec) or "", spec.simulation, spec.simulated_provider)
    return spec, base


def audit_inputs(store: Store, audit: AuditRow) -> tuple[AuditSpec, Bundle]:
    """The spec and base bundle of an audit (immutable once created; cached per process),
    with a simulated world registered for the simulated provider."""
    return _inputs(store.url, audit.id, store)


def model_client(
    settings: WorkerSettings,
    rate_limit_url: str | None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> ModelClient:
    """Calls through litellm; the rate limiter's buckets live in Redis at ``rate_limit_url``
    (shared by every process) or, without one, in this process (shared by its batches).

    Each batch runs its calls on an event loop of its own, or with ``loop`` (running in
    another thread) on that one: batches running at once in one process's threads must share
    a loop, because litellm's logging worker is bound to the loop it first ran on. Batches on
    that loop share their calls in flight: each limit key's ``max_concurrency`` bounds the
    process, as it bounds a Celery worker process (one task at a time)."""
    local = make_buckets(rate_limit_url)
    shared = local if isinstance(local, LocalBuckets) else None
    slots: dict[tuple[str, int], asyncio.Semaphore] | None = {} if loop is not None else None

    def call(
        spec: AuditSpec,
        orders: Sequence[CallOrder],
        *,
        renew: Callable[[], None],
        on_reply: Callable[[Reply], None],
        stopped: Callable[[str], str | None],
    ) -> None:
        buckets = shared if shared is not None else make_buckets(rate_limit_url)
        requests = [
            CallRequest(o.key, o.model, o.provider, o.kwargs, api_key_env=o.api_key_env)
            for o in orders
        ]
        call_limits = spec.call_limits()  # per limit key: the api_base, else the provider
        policy = ClientPolicy(
            timeout=settings.call_timeout,
            max_retries=settings.max_retries,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
            concurrency={
                key: lim.max_concurrency
                for key, lim in call_limits.items()
                if lim.max_concurrency is not None
            },
        )
        limiter = RateLimiter(
            buckets,
            {key: (lim.rpm, lim.tpm) for key, lim in call_limits.items()},
            {key: lim.burst_seconds for key, lim in call_limits.items()},
        )

        async def run() -> None:
            heartbeat = asyncio.create_task(_heartbeat(renew, settings.lease_seconds / 3))
            try:
                await complete_all(
                    requests, policy, limiter, on_response=on_reply, stopped=stopped, slots=slots
                )
            finally:
                heartbeat.cancel()
                close = getattr(buckets, "close", None)
                if close is not None and buckets is not shared:
                    await close()

        if loop is None:
            asyncio.run(run())
        else:
            asyncio.run_coroutine_threadsafe(run(), loop).result()

    return call


async def _heartbeat(renew: Callable[[], None], interval: float) -> None:
    """Keep a running batch's lease alive, so nobody takes its calls over while it works."""
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(renew)
