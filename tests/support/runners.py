"""A pipeline driven step by step: a runner that records what the pipeline asks for (batches
to run, advances now or later) instead of doing it, so a test decides what runs, what dies
and when the clock moves. The model client is the real one (litellm, simulated provider)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.schemas.spec import parse_spec
from auditor.services.audits import submit_audit
from auditor.services.pipeline import Batch, Pipeline
from auditor.storage.store import Store
from tests.support.settings import make_settings


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether ``condition`` became true within ``timeout`` seconds (polled)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


class Clock:
    """Seconds since the epoch that move only when the test says so. They start at the time the
    clock is built: an audit's age (its deadline) counts from its `created_at`, which the store
    stamps with the real time (a fixed start weeks ahead put every audit past its deadline)."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingRunner:
    batches: list[Batch] = field(default_factory=list)
    advances: int = 0
    wakes: list[float] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)

    def send_batches(self, audit_id: str, batches: Sequence[Batch]) -> None:
        self.batches.extend(batches)

    def advance_soon(self, audit_id: str) -> None:
        self.advances += 1

    def advance_later(self, audit_id: str, delay: float) -> None:
        self.wakes.append(delay)

    def deliver(self, delivery_ids: Sequence[str]) -> None:
        self.deliveries.extend(delivery_ids)

    def take(self) -> list[Batch]:
        batches, self.batches = self.batches, []
        return batches


def stepped_pipeline(
    tmp_path: Path, spec: dict[str, Any], clock: Clock | None = None, **settings: Any
) -> tuple[Pipeline, RecordingRunner, str]:
    """A submitted audit and a pipeline over it whose runner only records."""
    from workers.runtime import audit_inputs, model_client

    url = f"sqlite:///{tmp_path / 'stepped.sqlite'}"
    store = Store(url, clock=clock) if clock is not None else Store(url)
    store.migrate()
    audit, _ = submit_audit(store, parse_spec(spec), tenant="t1")
    options = {
        "database_url": url,
        "batch_size": 64,
        "retry_base_delay": 0.001,
        "retry_max_delay": 0.01,
        **settings,
    }
    built = make_settings(**options)
    runner = RecordingRunner()
    pipeline = Pipeline(store, built, runner, model_client(built.worker, None), inputs=audit_inputs)
    return pipeline, runner, audit.id
