"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

from auditor.services.audits import audit_status
from tests.support.pipeline import (
    assert_same_numbers,
    ledger_lines,
    report_of,
    run_audit,
    world_report,
)
from tests.support.specs import small_spec


def test_audit_reproduces_the_simulated_world_on_sqlite_and_postgresql(
    database_url: str, tmp_path: Path
) -> None:
    spec = small_spec(affinity={"atlas-1": 0.8}, provider={"ledger": str(tmp_path / "ledger.txt")})
    store, audit_id = run_audit(database_url, spec)
    status = audit_status(store, store.get_audit(audit_id))
    assert status.status == "succeeded" and status.stage == "done"
    # 9 models x 40 items MCQ and free-form; 3 judges x 8 other models x 40 items verdicts
    assert {k: (v.done, v.failed, v.pending) for k, v in status.progress.items()} == {
        "mcq": (360, 0, 0),
        "answer": (360, 0, 0),
        "judge": (960, 0, 0),
    }
    assert status.cost_usd > 0
    assert len(ledger_lines(tmp_path / "ledger.txt")) == 360 + 360 + 960
    assert_same_numbers(report_of(store, audit_id), world_report(spec))
