"""Storage on SQLite and PostgreSQL: call leases and claims, bulk results, progress."""

from __future__ import annotations

import time

from auditor.storage.store import CallResult, PlannedCall, Store


def planned(n: int) -> list[PlannedCall]:
    return [
        PlannedCall(f"k{i:03d}", "judge", "judge-a", f"q{i}", "cand", {"i": i}) for i in range(n)
    ]


def new_store(url: str) -> tuple[Store, str]:
    store = Store(url)
    store.migrate()
    audit, _ = store.create_audit({}, tenant="t", name="a", evaluation_id=None, budget_usd=None)
    store.plan_calls(audit.id, "t", planned(4))
    return store, audit.id


def test_a_redelivered_copy_of_a_running_batch_claims_nothing(database_url: str) -> None:
    store, audit_id = new_store(database_url)
    keys = store.dispatchable_keys(audit_id)
    assert keys == ["k000", "k001", "k002", "k003"]
    store.lease(keys, "dispatch-1", seconds=60)
    assert store.dispatchable_keys(audit_id) == []  # leased: not dispatched again
    assert [r.key for r in store.claim(keys, "dispatch-1", seconds=60)] == keys
    # the broker re-delivers the same message while the first run still works: no claim
    assert store.claim(keys, "dispatch-1", seconds=60) == []
    # nor can another dispatch take live calls
    assert store.claim(keys, "dispatch-2", seconds=60) == []


def test_expired_claims_can_be_taken_over_and_renewal_keeps_them(database_url: str) -> None:
    store, audit_id = new_store(database_url)
    keys = store.dispatchable_keys(audit_id)
    store.lease(keys, "d1", seconds=60)
    store.claim(keys, "d1", seconds=0.3)
    store.lease(keys[:2], "d1", seconds=60, renew=True)  # the heartbeat of a live run
    time.sleep(0.4)
    assert store.dispatchable_keys(audit_id) == keys[2:]  # the rest expired: its run died
    assert [r.key for r in store.claim(keys, "d2", seconds=60)] == keys[2:]


def test_results_are_written_once_and_counted_in_progress(database_url: str) -> None:
    store, audit_id = new_store(database_url)
    keys = store.dispatchable_keys(audit_id)
    store.record_results(
        [CallResult(key=keys[0], status="done", text="1", parsed={"verdict": 1}, cost_usd=0.5)]
    )
    store.record_results([CallResult(key=keys[0], status="failed", error="late duplicate")])
    store.record_results([CallResult(key=keys[1], status="failed", error="auth")])
    assert store.progress(audit_id) == {"judge": {"done": 1, "failed": 1, "pending": 2}}
    [done] = list(store.calls_of(audit_id, status="done"))
    assert (done.key, done.text, done.parsed, done.error) == ("k000", "1", {"verdict": 1}, None)
    assert store.fail_pending(audit_id, model="judge-a", reason="budget") == 2
    assert store.progress(audit_id) == {"judge": {"done": 1, "failed": 3, "pending": 0}}
