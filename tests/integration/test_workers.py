"""The pipeline on a real Redis broker with real `auditor worker` processes and PostgreSQL.

References: the same audit run in-process (Celery eager, SQLite), and the simulated provider's
ledger of every call it received.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from auditor.schemas.result import AffinityReport
from auditor.schemas.spec import parse_spec
from auditor.services.audits import TERMINAL_STATUSES, audit_status, submit_audit
from auditor.storage.store import Store
from tests.stubs.openai_server import stub_server
from tests.support.pipeline import report_of, run_audit
from tests.support.services import (
    RedisServer,
    beat_process,
    lose_broker_messages,
    postgres_database,
    redis_databases,
    service_env,
    worker_process,
)
from tests.support.specs import small_spec
from tests.support.stub_audits import TRUTHS, bundle_file

IN_FLIGHT = 0.25
"""Seconds a call checked before a model's permanent failure was stored may take to reach the
server (see the test of that failure)."""

pytestmark = pytest.mark.services


class Deployment:
    """A PostgreSQL database, two Redis databases and the environment of worker processes."""

    def __init__(self, database_url: str, broker_url: str, backend_url: str) -> None:
        self.store = Store(database_url)
        self.store.migrate()
        self.env = service_env(
            database_url,
            broker_url,
            backend_url,
            AUDITOR_LEASE_SECONDS="4",
            AUDITOR_VISIBILITY_TIMEOUT="4",
            AUDITOR_SWEEP_INTERVAL="1",
            AUDITOR_BATCH_SIZE="16",
            AUDITOR_RETRY_BASE_DELAY="0.01",
            AUDITOR_RETRY_MAX_DELAY="0.1",
        )
        self.client = Celery(broker=broker_url)
        self.client.conf.broker_connection_retry_on_startup = True

    def submit(self, spec: dict[str, Any]) -> str:
        audit, _ = submit_audit(self.store, parse_spec(spec), tenant="t1")
        self.client.send_task("auditor.start", args=[audit.id])
        return audit.id

    def progress(self, audit_id: str) -> dict[str, Any]:
        return audit_status(self.store, self.store.get_audit(audit_id)).model_dump()

    def wait(
        self,
        audit_id: str,
        until: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 180.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.progress(audit_id)
            if (until or (lambda s: s["status"] in TERMINAL_STATUSES))(status):
                return status
            time.sleep(0.2)
        raise AssertionError(f"audit {audit_id} did not get there in {timeout} s: {status}")


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with redis_databases() as (broker, backend), postgres_database() as database_url:
        yield Deployment(database_url, broker, backend)


def judged(status: dict[str, Any]) -> int:
    judge = status["progress"].get("judge")
    return judge["done"] if judge else 0


def comparable(report: AffinityReport) -> dict[str, Any]:
    document = report.model_dump(mode="json")
    document.pop("provenance")
    return document


def test_audit_through_the_broker_equals_the_in_process_run(
    deployment: Deployment, tmp_path: Path
) -> None:
    spec = small_spec(affinity={"atlas-1": 0.8})
    local_store, local_id = run_audit(f"sqlite:///{tmp_path / 'local.sqlite'}", spec)
    with worker_process(deployment.env) as worker:
        audit_id = deployment.submit(spec)
        status = deployment.wait(audit_id)
    assert status["status"] == "succeeded", worker.log()[-3000:]
    assert comparable(report_of(deployment.store, audit_id)) == comparable(
        report_of(local_store, local_id)
    )


def test_worker_killed_mid_audit_loses_nothing_and_repeats_only_in_flight_calls(
    deployment: Deployment, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    spec = small_spec(provider={"latency": 0.2, "ledger": str(ledger)})
    first = worker_process(deployment.env).start()
    try:
        audit_id = deployment.submit(spec)
        deployment.wait(audit_id, until=lambda s: judged(s) >= 200)
    finally:
        first.kill()  # SIGKILL: no warm shutdown, unacknowledged tasks stay with Redis
    at_kill = len(ledger.read_text().splitlines())
    with worker_process(deployment.env) as second:
        status = deployment.wait(audit_id)
    assert status["status"] == "succeeded", second.log()[-3000:]
    assert {k: (v["done"], v["failed"], v["pending"]) for k, v in status["progress"].items()} == {
        "mcq": (360, 0, 0),
        "answer": (360, 0, 0),
        "judge": (960, 0, 0),
    }
    lines = ledger.read_text().splitlines()
    calls = Counter((line.split("\t")[0], line.split("\t")[1]) for line in lines)
    repeated = sum(count - 1 for count in calls.values())
    print(f"calls repeated after the SIGKILL: {repeated} of {len(lines)} sent")
    # At most the calls in flight at the kill were repeated: 2 worker processes x 16 per batch.
    assert repeated <= 2 * 16, (repeated, at_kill)
    assert len(calls) == 360 + 360 + 960
    local_store, local_id = run_audit(f"sqlite:///{tmp_path / 'local.sqlite'}", spec)
    assert comparable(report_of(deployment.store, audit_id)) == comparable(
        report_of(local_store, local_id)
    )


def test_calls_leased_by_a_dead_batch_are_sent_again_without_beat(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A batch's worker died while its lease still runs, and its messages are gone: the advance
    that comes next finds nothing it may send. It must look again once the lease has run out,
    with no beat process to sweep."""
    spec = small_spec(provider={"latency": 0.2})
    first = worker_process(deployment.env).start()
    try:
        audit_id = deployment.submit(spec)
        try:
            deployment.wait(audit_id, until=lambda s: s["stage"] in ("collect", "judge"))
        except AssertionError as error:
            raise AssertionError(f"{error}\n{first.log()[-6000:]}") from None
    finally:
        first.kill()
    lose_broker_messages(deployment.env["AUDITOR_BROKER_URL"])  # every message lost
    time.sleep(4.5)  # the dead worker's leases (4 s) run out...
    stranded = deployment.store.dispatchable_keys(audit_id)
    assert stranded  # the kill left calls unanswered
    deployment.store.lease(stranded, "dead-batch", 12.0)  # ...but a dying batch renewed its own
    with worker_process(deployment.env) as second:
        deployment.client.send_task("auditor.advance", args=[audit_id])
        try:
            status = deployment.wait(audit_id, timeout=120)
        except AssertionError as error:
            store = deployment.store
            now = store.clock()
            held = [
                (round(r.leased_until - now, 1), r.lease_token, r.claimed)
                for r in store.calls_of(audit_id, status="pending")
            ]
            audit = store.get_audit(audit_id)
            wake = round(audit.wake_at - now, 1) if audit else None
            raise AssertionError(
                f"{error}\nwake {wake} held {held[:20]}\n{second.log()[-1500:]}"
            ) from None
    assert status["status"] == "succeeded", second.log()[-3000:]
    assert {k: (v["done"], v["failed"], v["pending"]) for k, v in status["progress"].items()} == {
        "mcq": (360, 0, 0),
        "answer": (360, 0, 0),
        "judge": (960, 0, 0),
    }


def test_audit_completes_after_redis_restarts_mid_audit(tmp_path: Path) -> None:
    spec = small_spec(provider={"latency": 0.2})
    # The broker restarted here is this test's own Redis on a free port, not the shared one.
    with RedisServer() as own_redis, postgres_database() as database_url:
        deployment = Deployment(database_url, f"{own_redis.url}/0", f"{own_redis.url}/1")
        with worker_process(deployment.env) as worker, beat_process(deployment.env, tmp_path):
            audit_id = deployment.submit(spec)
            deployment.wait(audit_id, until=lambda s: judged(s) >= 100)
            own_redis.restart()  # queued tasks and results are gone (nothing kept on disk)
            status = deployment.wait(audit_id, timeout=240)
    assert status["status"] == "succeeded", worker.log()[-3000:]
    assert status["progress"]["judge"] == {"done": 960, "failed": 0, "pending": 0}


def test_every_worker_rides_out_a_ten_second_broker_outage(tmp_path: Path) -> None:
    # Two workers; this test's own Redis (a free port, never the shared 6379) is stopped for
    # 10 s mid-audit and started again empty. Before: kombu's restore_unacked raised
    # AttributeError('NoneType' ... 'hostname') and 1 or 2 workers exited with code 0.
    spec = small_spec(provider={"latency": 0.2})
    with RedisServer() as own_redis, postgres_database() as database_url:
        deployment = Deployment(database_url, f"{own_redis.url}/0", f"{own_redis.url}/1")
        first, second = worker_process(deployment.env), worker_process(deployment.env)
        with (
            first.start(timeout=240),
            second.start(timeout=240),
            beat_process(deployment.env, tmp_path).start(timeout=240),
        ):
            audit_id = deployment.submit(spec)
            deployment.wait(audit_id, until=lambda s: judged(s) >= 100)
            own_redis.stop()
            time.sleep(10)
            own_redis.start()
            status = deployment.wait(audit_id, timeout=300)
            alive = [w.process is not None and w.process.poll() is None for w in (first, second)]
            logs = first.log() + second.log()
    assert alive == [True, True], logs[-4000:]
    assert "Unrecoverable error" not in logs
    assert status["status"] == "succeeded", logs[-3000:]
    assert status["progress"]["judge"] == {"done": 960, "failed": 0, "pending": 0}


@pytest.mark.parametrize("with_beat", [False, True], ids=["without-beat", "with-beat"])
def test_recovery_from_a_sigkill_is_bounded_by_the_lease(
    deployment: Deployment, tmp_path: Path, with_beat: bool
) -> None:
    """Two workers; one is SIGKILLed mid-audit. Recovery: from the kill until every call held
    at the kill (claimed by a running batch) is answered: the dead batches' calls come back
    when their lease (4 s) runs out, whether or not beat sweeps (every second here). Before
    (issue 14): 90-120 s with beat, 628 s without. (Lost broker messages with no beat at all:
    `test_calls_leased_by_a_dead_batch_are_sent_again_without_beat`.)"""
    lease = float(deployment.env["AUDITOR_LEASE_SECONDS"])
    spec = small_spec(provider={"latency": 0.2})
    beat = beat_process(deployment.env, tmp_path) if with_beat else contextlib.nullcontext()
    with worker_process(deployment.env) as survivor, beat:
        doomed = worker_process(deployment.env).start()
        try:
            audit_id = deployment.submit(spec)
            deployment.wait(audit_id, until=lambda s: judged(s) >= 100)
        finally:
            doomed.kill()
        killed_at = time.monotonic()
        store = deployment.store
        now = store.clock()
        held = {
            row.key
            for row in store.calls_of(audit_id, status="pending")
            if row.claimed and row.leased_until > now
        }
        assert held, "no batch was running at the kill"
        while time.monotonic() - killed_at < 120:
            done = {row.key for row in store.calls_of(audit_id, status="done")}
            if held <= done:
                break
            time.sleep(0.1)
        recovery = time.monotonic() - killed_at
        status = deployment.wait(audit_id, timeout=180)
    print(f"recovery after SIGKILL ({'with' if with_beat else 'without'} beat): {recovery:.1f} s")
    assert held <= done, survivor.log()[-3000:]
    assert status["status"] == "succeeded", survivor.log()[-3000:]
    assert {k: (v["done"], v["failed"], v["pending"]) for k, v in status["progress"].items()} == {
        "mcq": (360, 0, 0),
        "answer": (360, 0, 0),
        "judge": (960, 0, 0),
    }
    # the lease, then one batch of 16 calls of 0.2 s behind whatever the survivor has queued
    assert recovery < lease + 20.0, recovery


def test_a_model_that_fails_permanently_gets_no_call_after_its_first_error_in_any_worker(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Two worker processes (4 pool processes); a judge whose key is revoked after its first
    10 calls (401, permanent). Its other calls are spread over batches in every process; once
    the first 401 is stored, no process may send it another call. Reference: the stub
    server's log of when each request arrived, and the stored time of the first 401."""
    candidates = [f"cand-{i}" for i in range(1, 7)]
    models: dict[str, Any] = {name: {"answer": f"{name}: Paris"} for name in candidates}
    models |= {"judge-a": {"style": "bare"}, "judge-b": {"style": "bare"}}
    revoked = {"status": 401, "message": "Incorrect API key provided: Bearer sk-..."}
    models["judge-gone"] = {"style": "bare", "error": revoked, "error_after": 10}
    config = {"truths": TRUTHS, "latency": 0.3, "models": models}  # calls overlap
    with stub_server(config, tmp_path) as server:

        def model(name: str) -> dict[str, Any]:
            return {"model": f"openai/{name}", "name": name, "api_base": server.url}

        spec = {
            "name": "a key revoked mid-audit",
            "bundle": str(bundle_file(tmp_path / "bundle.json", [])),
            "judges": [model("judge-a"), model("judge-b"), model("judge-gone")],
            "candidates": [model(c) for c in candidates],
            "sampling": {"verdict_max_tokens": 8},
            "analysis": {"n_bootstrap": 50, "n_permutations": 50, "min_candidates": 4},
        }
        with worker_process(deployment.env) as first, worker_process(deployment.env):
            audit_id = deployment.submit(spec)
            status = deployment.wait(audit_id, timeout=240)
        requests = server.requests()
    assert status["status"] == "succeeded", first.log()[-3000:]
    assert [f["model"] for f in status["failures"]] == ["judge-gone"]
    refused = sorted(r["at"] for r in requests if r["model"] == "judge-gone" and r["status"] == 401)
    rows = [r for r in deployment.store.calls_of(audit_id) if r.model == "judge-gone"]
    met = [r for r in rows if r.status == "failed" and (r.error or "").startswith("Authentic")]
    assert refused and len(met) == len(refused)  # every call sent after the 10 met the 401
    # when the first 401 was stored (then its process named the model in the audit's failures)
    known = min(r.updated_at.replace(tzinfo=UTC).timestamp() for r in met)
    # A call whose stop check passed just before the failure was stored (the check reads the
    # failures at most 10 ms old) may still reach the server after it: its time in flight. On
    # a loaded CI machine one arrived 54 ms after; the bug this guards against sent one 0.63 s
    # after (stop check once a second), so calls later than IN_FLIGHT were decided after.
    after = [round(t - known, 3) for t in refused if t > known + IN_FLIGHT]
    print(
        f"judge-gone: {len(refused)} calls met the 401 ({len(rows)} planned), the last "
        f"{refused[-1] - known:+.3f} s from the first 401 stored; {len(after)} after it"
    )
    assert after == [], after
