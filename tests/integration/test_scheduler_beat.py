"""Scheduled audits through a real `auditor beat` (workers.scheduler.DatabaseScheduler) and a
real `auditor worker` on Redis and PostgreSQL: schedules created after beat started are run
(read from the database, no restart); a run slower than the interval is never joined by a
second one; slots missed while beat is down are run once when it comes back.

References: the audits' own created/finished times and the schedule's cron slots."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from auditor.schemas.spec import parse_spec
from auditor.services import schedules
from auditor.services.schedules import slots_between
from auditor.services.trail import list_events, verify_store
from auditor.storage.store import Store, utcnow
from auditor.storage.tables import ScheduleRunRow
from tests.support.services import (
    beat_process,
    postgres_database,
    redis_databases,
    service_env,
    worker_process,
)
from tests.support.specs import small_spec

pytestmark = pytest.mark.services

EVERY_SECOND = "* * * * * *"
EVERY_2_S = "* * * * * */2"


def spec(n_items: int, latency: float, ledger: Path) -> dict[str, Any]:
    """3 families of 2 models: 6 models, 3 judges with 5 candidates each."""
    provider = {"latency": latency, "ledger": str(ledger)}
    return parse_spec(small_spec(n_items=n_items, sizes=2, provider=provider)).public_dict()


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, log: Callable[[], str]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s\n{log()[-3000:]}")


def finished_runs(store: Store, schedule_id: str) -> list[tuple[ScheduleRunRow, Any]]:
    done = []
    for run in schedules.runs_of(store, schedule_id):
        audit = store.get_audit(run.audit_id) if run.audit_id else None
        if audit is not None and audit.status in ("succeeded", "failed", "cancelled"):
            done.append((run, audit))
    return done


def active_audits(store: Store, schedule_id: str) -> int:
    count = 0
    for run in schedules.runs_of(store, schedule_id):
        audit = store.get_audit(run.audit_id) if run.audit_id else None
        count += audit is not None and audit.status in ("queued", "running")
    return count


def test_beat_runs_database_schedules_without_overlap_and_catches_up_once(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    with redis_databases() as (broker, backend), postgres_database() as url:
        store = Store(url)
        store.migrate()
        env = service_env(
            url,
            broker,
            backend,
            AUDITOR_SCHEDULE_POLL_INTERVAL="0.3",
            AUDITOR_SCHEDULE_MIN_INTERVAL="1",
            AUDITOR_SWEEP_INTERVAL="2",
            AUDITOR_BATCH_SIZE="16",
            AUDITOR_DRIFT_BOOTSTRAP="200",
            AUDITOR_RETRY_BASE_DELAY="0.01",
        )
        worker, beat = worker_process(env), beat_process(env, tmp_path)
        starting = threading.Thread(target=beat.start)  # both import litellm: start together
        starting.start()
        worker.start()
        starting.join()
        logs = lambda: worker.log()[-2000:] + "\n--- beat ---\n" + beat.log()  # noqa: E731
        try:
            # 1. A schedule created while beat runs (read from the database, no restart), due
            #    every second, whose runs take about 2 s (0.2 s per call, 16 calls per task).
            slow = schedules.create_schedule(
                store, tenant="t1", name="slow", spec=spec(8, 0.2, ledger), cron=EVERY_SECOND
            )
            most_active = 0

            def three_done() -> bool:
                nonlocal most_active
                most_active = max(most_active, active_audits(store, slow.id))
                return len(finished_runs(store, slow.id)) >= 3

            wait_for(three_done, 90, "3 runs of the slow schedule", logs)
            schedules.set_paused(store, slow.id, tenant="t1", paused=True)
            wait_for(lambda: active_audits(store, slow.id) == 0, 30, "the last slow run", logs)
            runs_when_paused = len(schedules.runs_of(store, slow.id))

            # 2. Beat goes down; a schedule due every 2 s is created meanwhile.
            beat.stop()
            stopped_at = utcnow()
            missed = schedules.create_schedule(
                store, tenant="t1", name="missed", spec=spec(8, 0.2, ledger), cron=EVERY_2_S
            )
            time.sleep(3.0)  # slots pass with no beat (and more while it starts again)
            assert schedules.runs_of(store, missed.id) == []
            restarted = beat_process(env, tmp_path).start()
            restarted_at = utcnow()
            try:
                wait_for(
                    lambda: len(schedules.runs_of(store, missed.id)) > 0,
                    30,
                    "the catch-up run",
                    restarted.log,
                )
                time.sleep(1.5)  # several more reads of the schedules: no other run
                after_restart = schedules.runs_of(store, missed.id)
                assert len(schedules.runs_of(store, slow.id)) == runs_when_paused
            finally:
                restarted.stop()
        finally:
            beat.stop()
            worker.kill()  # the catch-up run may still be going; it is not needed any more

        # --- no overlap: each run of the slow schedule started after the last one ended -------
        runs = finished_runs(store, slow.id)
        assert all(audit.status == "succeeded" for _, audit in runs), [a.error for _, a in runs]
        assert most_active == 1
        for (_, earlier), (_, later) in itertools.pairwise(runs):
            assert later.created_at >= earlier.finished_at
        # slots came due while a run was going: each was folded into the next run
        assert all(run.missed_slots >= 1 for run, _ in runs[1:])
        _, slots_elapsed = slots_between(
            EVERY_SECOND, "UTC", runs[0][0].slot_at, runs[-1][0].slot_at
        )
        assert len(runs) < slots_elapsed
        # every run asked the provider afresh (216 calls each), the same world each time: no
        # drift and no alert; what each run used is pinned
        calls = ledger.read_text().splitlines()
        assert len(calls) >= len(runs) * (6 * 8 * 2 + 3 * 5 * 8)
        for run, _ in runs[1:]:
            assert run.drift is not None and run.drift["alerts"] == []
            assert all(j["delta"] == 0.0 for j in run.drift["previous"]["judges"])
        for run, _ in runs:
            assert run.pins is not None
            assert run.pins["models"][0]["provider_reported"] == ["sim/atlas-1"]

        # --- catch-up: the slots missed while beat was down ran once -------------------------
        assert [r.state for r in after_restart] == ["started"], [
            (r.slot_at, r.missed_slots) for r in after_restart
        ]
        catch_up = after_restart[0]
        assert stopped_at < catch_up.slot_at <= restarted_at + timedelta(seconds=2)
        _, folded = slots_between(EVERY_2_S, "UTC", missed.next_due_at, catch_up.slot_at)
        assert folded >= 2 and catch_up.missed_slots == folded - 1
        audit = store.get_audit(catch_up.audit_id or "")
        assert audit is not None and audit.status in ("queued", "running", "succeeded")

        started = [
            e for e in list_events(store, tenant="t1", limit=1000) if e.action == "audit.started"
        ]
        assert len(started) == len(schedules.runs_of(store, slow.id)) + 1
        assert {e.actor for e in started} == {"system:scheduler"}
        assert verify_store(store).ok
