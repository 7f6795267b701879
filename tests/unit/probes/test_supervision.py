"""The `supervision` probe: hand-worked counts (trend = Cochran–Armitage, difference =
Newcombe), and planted truth from auditor.ecosystem: a judge whose false approval rises on
easy items is flagged in >= 90% of seeds; judges with nothing planted at <= alpha."""

from __future__ import annotations

import numpy as np
import pytest

from auditor.schemas.bundle import parse_bundle
from auditor.stats.difficulty import cochran_armitage_trend
from auditor.stats.proportions import newcombe_difference
from tests.support.reliability import ALPHA, run, world


def _document() -> dict:
    # Ten items, difficulty 0..9 (two per quintile bin); candidate "c" answers every item,
    # correct on the even ones, incorrect on odd ones except q9, which it avoids.
    items = [
        {"id": f"q{i}", "question": f"Q{i}?", "options": ["x", "y"], "gold": 0, "difficulty": i}
        for i in range(10)
    ]
    outcome = {i: "correct" if i % 2 == 0 else "incorrect" for i in range(10)} | {9: "avoidant"}
    # The judge approves every answer on the easy half, none on the hard half, and its verdict
    # on q3 could not be parsed.
    verdicts = [
        {"judge": "j", "candidate": "c", "item": f"q{i}", "verdict": None if i == 3 else int(i < 5)}
        for i in range(10)
    ] + [{"judge": "j", "candidate": "j", "item": "q1", "verdict": 1}]  # self: left out
    labels = [
        {"item": f"q{i}", "candidate": c, "outcome": outcome[i], "annotator": "a"}
        for i in range(10)
        for c in ("c", "j")
    ]
    return {
        "items": items,
        "models": [{"name": "j"}, {"name": "c"}],
        "verdicts": verdicts,
        "labels": labels,
    }


def test_hand_worked() -> None:
    result = run("supervision", parse_bundle(_document()))
    (row,) = result.judges
    assert (row.n_verdicts, row.invalid_verdicts) == (9, 1)
    # incorrect answers: q1 (approved), q5, q7 (rejected); q3 unparseable
    assert (row.false_approval.k, row.false_approval.n) == (1, 3)
    # correct answers: q0, q2, q4 approved; q6, q8 rejected
    assert (row.false_rejection.k, row.false_rejection.n) == (2, 5)
    assert (row.avoidant_approval.k, row.avoidant_approval.n) == (0, 1)
    per_bin = [(b.false_approval.k, b.false_approval.n) for b in row.by_bin]
    assert per_bin == [(1, 1), (0, 0), (0, 1), (0, 1), (0, 0)]
    expected = cochran_armitage_trend([1, 0, 0, 0, 0], [1, 0, 1, 1, 0])
    assert row.trend_z == pytest.approx(expected.z) and row.trend_z < 0
    # the hardest bin has no incorrect answer: no easy-minus-hard difference
    assert row.easy_minus_hard is None
    assert result.findings[0].status == "insufficient_data"


def test_easy_minus_hard_is_newcombe() -> None:
    document = _document()
    document["labels"] = [
        label if label["item"] != "q8" else {**label, "outcome": "incorrect"}
        for label in document["labels"]
    ]
    (row,) = run("supervision", parse_bundle(document)).judges
    assert row.easy_minus_hard == 1.0
    assert row.easy_minus_hard_ci95 == pytest.approx(newcombe_difference(1, 1, 0, 1))


def test_planted_false_approval_rising_on_easy_items_is_flagged() -> None:
    flagged = []
    for seed in range(10):
        ecosystem = world(seed, judges=["a-1", "b-1"], judge_false_approval_slope={"a-1": 1.0})
        result = run("supervision", ecosystem.bundle(with_labels=True))
        by_judge = {f.judge: f for f in result.findings}
        flagged.append(by_judge["a-1"].flagged)
        assert by_judge["a-1"].estimate > 0
    assert np.mean(flagged) >= 0.9


@pytest.mark.slow
def test_judges_with_nothing_planted_are_flagged_at_most_at_alpha() -> None:
    flagged = []
    for seed in range(12):
        # every model judges; none has a planted slope (affinity 0: grading by truth + noise)
        ecosystem = world(100 + seed, n_items=120)
        ecosystem = world(100 + seed, n_items=120, judges=list(ecosystem.model_names))
        result = run("supervision", ecosystem.bundle(with_labels=True))
        flagged += [f.flagged for f in result.findings if f.status == "ok"]
    assert len(flagged) >= 100
    assert np.mean(flagged) <= ALPHA


def test_vectorized_verdicts_equal_the_scalar_verdicts_with_planted_reliability() -> None:
    ecosystem = world(
        3,
        n_items=60,
        avoidance=0.5,
        judges=["a-1", "b-1", "c-2"],
        judge_false_approval_slope={"a-1": 1.0},
        affinity_strength=0.3,
    )
    judges, candidates = list(ecosystem.judge_names), list(ecosystem.model_names)
    scalar = [
        [
            [
                ecosystem.verdict(j, item.id, ecosystem.answer_text(c, item.id))
                for item in ecosystem.items
            ]
            for c in candidates
        ]
        for j in judges
    ]
    assert ecosystem.verdict_array(judges, candidates).tolist() == scalar
