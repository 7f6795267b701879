"""The judge pipeline in-process (Celery eager) on real storage, through litellm's real code path
with the simulated provider. References: the simulated world's own bundle (planted truth)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from auditor.services.audits import audit_status
from tests.support.pipeline import (
    assert_same_numbers,
    ledger_lines,
    report_of,
    run_audit,
    world_report,
)
from tests.support.specs import small_spec

# Each test runs a whole audit through litellm's code path: seconds each (scripts/test --fast
# leaves them out; CI runs them).
pytestmark = pytest.mark.slow


def test_rerun_makes_no_provider_call_for_stored_results(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    ledger = tmp_path / "ledger.txt"
    spec = small_spec(provider={"ledger": str(ledger)})
    store, first = run_audit(url, spec)
    calls = len(ledger_lines(ledger))
    _, second = run_audit(url, spec)
    assert len(ledger_lines(ledger)) == calls  # every call was found by its key
    a, b = report_of(store, first), report_of(store, second)
    assert [p.model_dump() for p in a.pairs] == [p.model_dump() for p in b.pairs]


def test_transient_faults_are_retried_to_complete_coverage(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    spec = small_spec(provider={"transient_rate": 0.3, "ledger": str(ledger)})
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec, max_retries=15)
    status = audit_status(store, store.get_audit(audit_id))
    assert status.status == "succeeded"
    assert all(v.failed == 0 and v.pending == 0 for v in status.progress.values())
    attempts = len(ledger_lines(ledger))
    assert attempts > 1.25 * 1680  # about 1 / 0.7 attempts per call were needed
    assert_same_numbers(report_of(store, audit_id), world_report(spec))


def test_permanent_fault_fails_that_model_fast_with_a_clear_reason(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    spec = small_spec(provider={"permanent_models": ["boreal-2"], "ledger": str(ledger)})
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec)
    audit = store.get_audit(audit_id)
    status = audit_status(store, audit)
    assert status.status == "succeeded"
    assert [f["model"] for f in status.failures] == ["boreal-2"]
    assert "AuthenticationError" in status.failures[0]["reason"]
    sent = Counter(line.split("\t")[0] for line in ledger_lines(ledger))
    # 80 MCQ + free-form calls were needed; only a batch's first wave reached the provider
    assert 1 <= sent["boreal-2"] <= 64
    failed = [row for row in store.calls_of(audit_id, status="failed")]
    assert {row.model for row in failed} == {"boreal-2"}
    assert len(failed) == 80
    report = report_of(store, audit_id)
    assert "boreal-2" not in {p.candidate for p in report.pairs if p.judgment_score is not None}
    assert any("boreal-2" in note for note in report.coverage.notes)
    assert report.coverage.failed_calls == {"mcq": 40, "answer": 40}


def test_garbage_judge_output_is_counted_unparseable_and_excluded(tmp_path: Path) -> None:
    spec = small_spec(provider={"garbage_rate": 0.25})
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec)
    report = report_of(store, audit_id)
    judged = [row for row in store.calls_of(audit_id, stage="judge")]
    unparseable = [row for row in judged if row.parsed["verdict"] is None]
    assert 0.15 * len(judged) < len(unparseable) < 0.35 * len(judged)
    assert all(row.parsed["reason"] for row in unparseable)
    assert sum(p.n_invalid for p in report.pairs) == len(unparseable)
    assert report.coverage.n_invalid_verdicts == len(unparseable)
    for pair in report.pairs[:5]:
        rows = [r for r in judged if (r.model, r.candidate) == (pair.judge, pair.candidate)]
        ones = sum(1 for r in rows if r.parsed["verdict"] == 1)
        zeros = sum(1 for r in rows if r.parsed["verdict"] == 0)
        assert pair.n_valid == ones + zeros
        assert pair.judgment_score == pytest.approx(ones / (ones + zeros))


def test_budget_stops_scheduling_and_says_so(tmp_path: Path) -> None:
    spec = small_spec(budget_usd=0.002)
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec, batch_size=16)
    status = audit_status(store, store.get_audit(audit_id))
    assert status.budget_exhausted
    # spending stops within one dispatch round past the budget
    assert 0.002 <= status.cost_usd < 0.002 + 0.01
    reasons = {row.error for row in store.calls_of(audit_id, status="failed")}
    assert reasons == {"not sent: the budget of $0.002 was reached"}
    report = report_of(store, audit_id)
    assert any("budget" in note for note in report.coverage.notes)


def test_planted_affinity_is_recovered_and_zero_affinity_is_not_flagged(tmp_path: Path) -> None:
    spec = small_spec(
        seed=11,
        n_items=80,
        sizes=5,
        families=("atlas", "boreal", "cygnus"),
        affinity={"atlas-1": 0.8, "boreal-1": 0.0, "cygnus-1": 0.0},
        analysis={"min_candidates": 5},
    )
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.sqlite'}", spec)
    judges = {j.judge: j for j in report_of(store, audit_id).judges}
    assert judges["atlas-1"].flagged and judges["atlas-1"].partial_r > 0.4
    assert not judges["boreal-1"].flagged and not judges["cygnus-1"].flagged
