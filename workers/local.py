"""Run an audit inside this process (the embedded default of `auditor demo` and `auditor run`):
the same `auditor.services.pipeline.Pipeline` a deployment's workers run, with batches on a
few threads instead of Celery workers and advances on this thread instead of messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from auditor.services.pipeline import Batch, Pipeline
from auditor.settings import Settings
from auditor.storage.store import Store

__all__ = ["LocalRunner", "run_local"]

BATCH_THREADS = 4
"""Batches running at once (each runs its calls concurrently, bounded per provider)."""


class LocalRunner:
    """Batches on a thread pool; every advance on the thread that called `run`."""

    def __init__(self, threads: int = BATCH_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="auditor-batch")
        self._events: queue.Queue[str] = queue.Queue()
        self._wakes: list[float] = []
        self._running: set[Future[int]] = set()
        self.pipeline: Pipeline | None = None
        self.errors: list[BaseException] = []

    def send_batches(self, audit_id: str, batches: Sequence[Batch]) -> None:
        assert self.pipeline is not None
        for batch in batches:
            future = self._pool.submit(self.pipeline.run_batch, audit_id, batch.keys, batch.token)
            self._running.add(future)
            future.add_done_callback(self._batch_done)

    def _batch_done(self, future: Future[int]) -> None:
        error = future.exception()
        if error is not None:
            self.errors.append(error)
            self._events.put("")  # wake the loop to raise it

    def advance_soon(self, audit_id: str) -> None:
        self._events.put(audit_id)

    def advance_later(self, audit_id: str, delay: float) -> None:
        self._wakes.append(time.monotonic() + delay)

    def deliver(self, delivery_ids: Sequence[str]) -> None:
        from workers.webhooks import deliver_webhook

        for delivery_id in delivery_ids:
            deliver_webhook(delivery_id)

    def run(self, audit_id: str) -> None:
        """Advance the audit until it is no longer active."""
        pipeline = self.pipeline
        assert pipeline is not None
        try:
            pipeline.advance(audit_id)
            while self._active(pipeline.store, audit_id):
                if self.errors:
                    raise self.errors[0]
                now = time.monotonic()
                due = [w for w in self._wakes if w <= now]
                if due:
                    self._wakes = [w for w in self._wakes if w > now]
                else:
                    self._running = {f for f in self._running if not f.done()}
                    timeout = min(self._wakes, default=now + 1.0) - now
                    # until an event, a due wake, or a second (then look again anyway)
                    with contextlib.suppress(queue.Empty):
                        self._events.get(timeout=max(0.0, timeout))
                    while not self._events.empty():  # one advance for every waiting event
                        self._events.get_nowait()
                if self.errors:
                    raise self.errors[0]
                pipeline.advance(audit_id)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _active(store: Store, audit_id: str) -> bool:
        audit = store.get_audit(audit_id)
        return audit is not None and audit.status in ("queued", "running")


def run_local(settings: Settings, audit_id: str) -> None:
    """Run an audit to its end in this process (returns when it has succeeded or failed)."""
    from workers.app import configure

    # Webhook deliveries (workers.webhooks) read the settings from the app and run inline.
    configure(settings, eager=True)
    from workers.runtime import audit_inputs, model_client

    # One event loop for every batch's calls (litellm binds its logging worker to one loop).
    loop = asyncio.new_event_loop()
    calls = threading.Thread(target=loop.run_forever, name="auditor-calls", daemon=True)
    calls.start()
    runner = LocalRunner()
    worker = settings.worker
    runner.pipeline = Pipeline(
        Store(settings.database.url),
        settings,
        runner,
        model_client(worker, worker.rate_limit_url, loop),
        inputs=audit_inputs,
    )
    try:
        runner.run(audit_id)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        calls.join()
        loop.close()
