"""The `reliability` probe: hand-worked outcome rates (Wilson = statsmodels, Kendall = scipy),
the difficulty source and label precedence, and planted truth from auditor.ecosystem: avoidance
that falls with size while failures become errors is reported in >= 90% of seeds; with
nothing planted it is reported in <= alpha of seeds."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from auditor.probes import REGISTRY
from auditor.schemas.bundle import parse_bundle
from auditor.schemas.result import AnalysisSettings
from auditor.stats.difficulty import DEFAULT_BINS
from tests.support.reliability import ALPHA, run, world

OUTCOMES = ["correct", "correct", "incorrect", "avoidant", "incorrect", "correct"]
DIFFICULTY = [0.1, 0.2, 0.3, 0.5, 0.8, 0.9]


def _document(difficulty: bool = True) -> dict:
    items = [
        {"id": f"q{i}", "question": f"Q{i}?", "options": ["x", "y"], "gold": 0}
        | ({"difficulty": d} if difficulty else {})
        for i, d in enumerate(DIFFICULTY)
    ]
    labels = [
        {"item": f"q{i}", "candidate": "m", "outcome": o, "annotator": "ann"}
        for i, o in enumerate(OUTCOMES)
    ]
    return {"items": items, "models": [{"name": "m"}, {"name": "o"}], "labels": labels}


def test_registered() -> None:
    assert "reliability" in [p.name for p in REGISTRY]


def test_hand_worked_rates_wilson_and_kendall_equal_statsmodels_and_scipy() -> None:
    result = run("reliability", parse_bundle(_document()))
    assert (result.truth_source, result.difficulty_source) == ("human", "item")
    (row,) = result.models
    assert (row.overall.correct.k, row.overall.avoidant.k, row.overall.incorrect.k) == (3, 1, 2)
    assert row.overall.incorrect.ci95 == pytest.approx(
        proportion_confint(2, 6, method="wilson"), abs=1e-12
    )
    expected = stats.kendalltau(DIFFICULTY, [o == "incorrect" for o in OUTCOMES])
    assert row.kendall_tau == pytest.approx(expected.statistic, abs=1e-12)
    assert row.kendall_p == pytest.approx(expected.pvalue, abs=1e-12)
    # Quintile edges of six items (linear interpolation) at 0.2, 0.3, 0.5, 0.8, right-closed:
    # bins 0, 0, 1, 2, 3, 4.
    assert [b.n_items for b in result.bins] == [2, 1, 1, 1, 1]
    assert [r.n for r in row.by_bin] == [2, 1, 1, 1, 1]
    assert [r.incorrect.k for r in row.by_bin] == [0, 1, 0, 1, 0]
    assert row.easiest_bin_error.k == 0 and row.easiest_bin_error.n == 2
    assert result.findings[0].judge == "m" and result.findings[0].estimate == 0.0
    assert result.scale is None  # no sizes


def test_difficulty_proxy_is_the_share_of_models_wrong_on_the_mcq() -> None:
    document = _document(difficulty=False)
    # q0..q5 answered by m and o: both right on q0-q1, one wrong on q2-q3, both wrong on q4-q5
    wrong = {"m": [0, 0, 1, 0, 1, 1], "o": [0, 0, 0, 1, 1, 1]}
    document["outputs"] = [
        {"model": model, "item": f"q{i}", "choice": w}
        for model, ws in wrong.items()
        for i, w in enumerate(ws)
    ]
    result = run("reliability", parse_bundle(document))
    assert result.difficulty_source == "mcq_error_share"
    # Shares 0, 0, .5, .5, 1, 1: quintile edges collapse to two bins, {0, .5} and {1}.
    assert [(b.low, b.high, b.n_items) for b in result.bins] == [(0.0, 0.5, 4), (1.0, 1.0, 2)]


def test_human_labels_take_precedence_and_ties_are_left_out() -> None:
    document = _document()
    document["labels"] += [
        {
            "item": "q0",
            "candidate": "m",
            "outcome": "incorrect",
            "annotator": "g",
            "source": "grader",
        },
        {"item": "q1", "candidate": "m", "outcome": "incorrect", "annotator": "ann-2"},
    ]
    result = run("reliability", parse_bundle(document))
    assert result.truth_source == "human"
    assert result.unlabelled_conflicts == 1  # q1: correct vs incorrect, one vote each
    assert result.models[0].overall.n == 5


def _scale_flag(seed: int, **planted: float) -> bool:
    ecosystem = world(seed, families=3, size=4, n_items=100, **planted)
    result = run("reliability", ecosystem.bundle(with_verdicts=False, with_labels=True))
    assert result.difficulty_source == "item" and result.truth_source == "planted"
    return result.scale.flagged


def test_planted_avoidance_falling_with_size_is_reported() -> None:
    seeds = range(10)
    flags = [_scale_flag(seed, avoidance=0.5, avoidance_scale_slope=1.5) for seed in seeds]
    assert np.mean(flags) >= 0.9


@pytest.mark.slow
def test_nothing_planted_is_reported_at_most_at_alpha() -> None:
    seeds = range(40)
    flags = [
        _scale_flag(seed, avoidance=0.5, avoidance_scale_slope=0.0, avoidance_difficulty_slope=0.0)
        for seed in seeds
    ]
    assert np.mean(flags) <= ALPHA


def test_the_bins_are_a_setting_defaulting_to_quintiles() -> None:
    assert AnalysisSettings().difficulty_bins == DEFAULT_BINS == 5
    result = run("reliability", parse_bundle(_document()), difficulty_bins=2)
    # six items in two bins at the median 0.4: {0.1, 0.2, 0.3} and {0.5, 0.8, 0.9}
    assert result.difficulty_bins == 2
    assert [(b.low, b.high, b.n_items) for b in result.bins] == [(0.1, 0.3, 3), (0.5, 0.9, 3)]
    assert [r.incorrect.k for r in result.models[0].by_bin] == [1, 1]
    with pytest.raises(ValidationError, match="difficulty_bins"):
        AnalysisSettings(difficulty_bins=1)
