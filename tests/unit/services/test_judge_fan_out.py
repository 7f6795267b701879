"""Judge calls shared by candidates with equal answers: one verdict per planned pair, and no
analysis while a planned verdict is missing without a recorded reason (hand-worked plans)."""

from __future__ import annotations

import pytest

from auditor.schemas.bundle import Bundle, Item
from auditor.schemas.spec import AuditSpec
from auditor.services.planning import CallOutcome, MissingVerdicts, fan_out_verdicts, judge_calls


def _plan() -> list:
    spec = AuditSpec.model_validate(
        {
            "evaluation_id": "e",
            "judges": [{"model": "openai/j", "name": "j"}],
            "candidates": [{"model": f"openai/{c}", "name": c} for c in ("a", "b", "c")],
        }
    )
    base = Bundle.model_construct(
        items=[Item(id="q1", question="Capital of France?", options=["Paris", "Lyon"], gold=0)],
        models=[],
        outputs=[],
        verdicts=[],
    )
    answers = {("a", "q1"): "Paris", ("b", "q1"): "Paris", ("c", "q1"): "Lyon"}
    return judge_calls(spec, "t1", base, answers)


def test_equal_answers_share_one_call_and_each_candidate_gets_its_verdict() -> None:
    planned = _plan()
    assert [c.candidate for c in planned] == ["a", "b", "c"]
    assert planned[0].key == planned[1].key != planned[2].key  # one call for "Paris"
    outcomes = [
        CallOutcome("judge", "j", "q1", "a", "done", "1", {"verdict": 1}, key=planned[0].key),
        CallOutcome("judge", "j", "q1", "c", "done", "0", {"verdict": 0}, key=planned[2].key),
    ]
    fanned = fan_out_verdicts(planned, outcomes)
    assert [(o.candidate, o.parsed["verdict"]) for o in fanned] == [("a", 1), ("b", 1), ("c", 0)]


def test_a_failed_call_is_a_recorded_reason_but_a_missing_or_pending_one_is_not() -> None:
    planned = _plan()
    failed = CallOutcome(
        "judge", "j", "q1", "c", "failed", None, None, key=planned[2].key, error="HTTP 404"
    )
    done = CallOutcome("judge", "j", "q1", "a", "done", "1", {"verdict": 1}, key=planned[0].key)
    assert [o.status for o in fan_out_verdicts(planned, [done, failed])] == [
        "done",
        "done",
        "failed",
    ]
    with pytest.raises(MissingVerdicts, match="1 planned verdicts are missing"):
        fan_out_verdicts(planned, [done])
    pending = CallOutcome("judge", "j", "q1", "c", "pending", None, None, key=planned[2].key)
    with pytest.raises(MissingVerdicts, match="j on c for q1"):
        fan_out_verdicts(planned, [done, pending])
