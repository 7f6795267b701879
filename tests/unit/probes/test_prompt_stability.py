"""The `prompt_stability` probe: hand-worked flips and Cochran's Q (= statsmodels), and
planted truth from auditor.ecosystem: models and judges with planted prompt sensitivity are
flagged in >= 90% of seeds; those without never flip."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import cochrans_q

from auditor.schemas.bundle import parse_bundle
from tests.unit.probes.reliability_world import run, world


def test_hand_worked_models_and_judges() -> None:
    items = [{"id": f"q{i}", "question": "?", "options": ["x", "y"], "gold": 0} for i in range(4)]
    primary, variant = [0, 0, 0, 1], [0, 1, 1, 1]  # choices: correct = choice 0
    outputs = [{"model": "m", "item": f"q{i}", "choice": c} for i, c in enumerate(primary)] + [
        {"model": "m", "item": f"q{i}", "choice": c, "variant": "p1"} for i, c in enumerate(variant)
    ]
    outputs.append({"model": "m", "item": "q0", "probs": [0.2, 0.8], "variant": "p2"})
    verdicts = [
        {"judge": "j", "candidate": "m", "item": f"q{i}", "verdict": v, "variant": t}
        for t, values in ((None, [1, 1, None, 0]), ("jp", [1, 0, 1, 0]))
        for i, v in enumerate(values)
    ]
    bundle = parse_bundle(
        {
            "items": items,
            "models": [{"name": "m"}, {"name": "j"}],
            "outputs": outputs,
            "verdicts": verdicts,
        }
    )
    result = run("prompt_stability", bundle)
    model, judge = result.rows
    # the model has three templates; only q0 was answered under all three (argmax of p2 = 1)
    assert model.templates == ["primary", "p1", "p2"] and model.n_units == 1
    assert (model.flips.k, model.flips.n) == (1, 1)
    assert judge.templates == ["primary", "jp"]
    assert judge.n_units == 3  # q2's primary verdict is unparseable: left out
    assert (judge.flips.k, judge.rates) == (1, {"primary": 2 / 3, "jp": 1 / 3})
    expected = cochrans_q(np.array([[1, 1], [1, 0], [0, 0]]))
    assert judge.cochran_q == pytest.approx(expected.statistic)
    assert judge.p_value == pytest.approx(expected.pvalue)
    assert [f.role for f in result.findings] == ["model", "judge"]


def test_planted_prompt_sensitivity_is_flagged_and_insensitive_models_never_flip() -> None:
    flagged_model, flagged_judge = [], []
    for seed in range(10):
        ecosystem = world(
            seed,
            n_items=100,
            judges=["a-1", "b-1"],
            model_prompt_sensitivity={"a-2": 1.0, "b-1": 1.0},
        )
        bundle = ecosystem.bundle(
            with_labels=False, mcq_variants=("p1", "p2"), judge_variants=("jp1",)
        )
        result = run("prompt_stability", bundle)
        rows = {(r.role, r.name): r for r in result.rows}
        findings = {(f.role, f.judge): f for f in result.findings}
        flagged_model.append(findings[("model", "a-2")].flagged)
        flagged_judge.append(findings[("judge", "b-1")].flagged)
        sensitive = {("model", "a-2"), ("model", "b-1"), ("judge", "b-1")}
        assert all(row.flips.k == 0 for key, row in rows.items() if key not in sensitive)
        assert not any(f.flagged for key, f in findings.items() if key not in sensitive)
    assert np.mean(flagged_model) >= 0.9 and np.mean(flagged_judge) >= 0.9
