"""Celery tasks: thin. Each takes ids and calls `auditor.services.pipeline.Pipeline`, which
holds the audit's state machine and the rules of its calls; this module only supplies the
Celery side of its runner (batches as a group of tasks, advances as messages).

``sweep`` (beat) nudges every active audit, for audits whose messages were lost (a broker
restart); a dead worker's calls come back when its lease runs out, with or without beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from celery import group

from auditor.schemas.tasks import ADVANCE_AUDIT, RUN_CALLS, START_AUDIT, SWEEP_AUDITS
from auditor.services.pipeline import Batch, Pipeline
from auditor.settings import Settings
from auditor.storage.store import Store
from workers.app import app
from workers.runtime import audit_inputs, model_client
from workers.webhooks import deliver_webhook

__all__ = ["advance", "pipeline", "run_calls", "start_audit", "sweep"]


class CeleryRunner:
    def send_batches(self, audit_id: str, batches: Sequence[Batch]) -> None:
        group(run_calls.si(audit_id, b.keys, b.token) for b in batches).apply_async()

    def advance_soon(self, audit_id: str) -> None:
        advance.delay(audit_id)

    def advance_later(self, audit_id: str, delay: float) -> None:
        advance.apply_async((audit_id,), countdown=delay)

    def deliver(self, delivery_ids: Sequence[str]) -> None:
        for delivery_id in delivery_ids:
            deliver_webhook.delay(delivery_id)


_built: list[tuple[Settings, Pipeline]] = []


def pipeline() -> Pipeline:
    """This process's pipeline, built once for the app's settings."""
    settings = cast(Settings, app.conf.auditor_settings)
    if not _built or _built[0][0] is not settings:
        worker = settings.worker
        _built[:] = [
            (
                settings,
                Pipeline(
                    Store(settings.database.url),
                    settings,
                    CeleryRunner(),
                    model_client(worker, worker.rate_limit_url or worker.broker_url),
                    inputs=audit_inputs,
                ),
            )
        ]
    return _built[0][1]


@app.task(name=START_AUDIT)
def start_audit(audit_id: str) -> None:
    pipeline().advance(audit_id)


@app.task(name=ADVANCE_AUDIT)
def advance(audit_id: str) -> None:
    pipeline().advance(audit_id)


@app.task(name=RUN_CALLS)
def run_calls(audit_id: str, keys: list[str], token: str) -> int:
    return pipeline().run_batch(audit_id, keys, token)


@app.task(name=SWEEP_AUDITS)
def sweep() -> int:
    return pipeline().sweep()
