"""Run an audit inside this process, on a deployment's code path.

An in-process Celery worker (a thread pool) consumes an in-memory broker (kombu's ``memory://``
transport): the tasks, their JSON messages, batches, leases, countdowns and retries are exactly
those of a deployment on Redis; only the transport differs. This is how `auditor demo` and
`auditor run` work with no services, and how the pipeline tests run audits.
"""

from __future__ import annotations

import time

from celery.contrib.testing.worker import start_worker

from auditor.settings import Settings
from auditor.storage.store import Store

__all__ = ["LOCAL_BROKER", "local_settings", "run_local"]

LOCAL_BROKER = "memory://"
LOCAL_CONCURRENCY = 1
"""One worker thread, like a worker with one process: litellm keeps per-process async state
(its logging worker) that event loops in several threads would share."""
TERMINAL = ("succeeded", "failed", "cancelled")


def local_settings(settings: Settings) -> Settings:
    """``settings`` with the in-memory broker (and no result backend: tasks keep no results)."""
    worker = settings.worker.model_copy(
        update={"broker_url": LOCAL_BROKER, "result_backend": "cache+memory://"}
    )
    return settings.model_copy(update={"worker": worker})


def run_local(settings: Settings, audit_id: str, *, poll_interval: float = 0.02) -> None:
    """Run an audit to its end in this process (returns when it has succeeded, failed or
    been cancelled)."""
    from auditor.schemas.tasks import START_AUDIT
    from workers.app import app, configure

    configure(local_settings(settings))
    store = Store(settings.database.url)
    # celery.contrib.testing's worker thread is Celery's own in-process worker (no signal
    # handlers, no remote control); the ping check needs the testing tasks, not loaded here.
    with start_worker(
        app,
        pool="threads",
        concurrency=LOCAL_CONCURRENCY,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=60.0,
    ):
        app.send_task(START_AUDIT, args=[audit_id])
        while True:
            audit = store.get_audit(audit_id)
            if audit is None or audit.status in TERMINAL:
                break
            time.sleep(poll_interval)
    store.engine.dispose()
