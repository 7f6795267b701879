"""The `prompt_stability` probe: hand-worked flips and Cochran's Q (= statsmodels), planted
truth from auditor.ecosystem (models and judges with planted prompt sensitivity are flagged in
>= 90% of seeds; those without never flip), and each judge's affinity partial r per template
(= pingouin's partial_corr on scores from that template, CAPA from lm-sim)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin
import pytest
from lmsim.metrics import CAPA
from statsmodels.stats.contingency_tables import cochrans_q

from auditor.probes.affinity import analyze_affinity
from auditor.schemas.bundle import Bundle, parse_bundle, primary_view
from tests.support.reliability import run, world


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


def test_a_model_seen_under_one_template_only_is_insufficient_data_not_a_crash() -> None:
    # m answers under the primary template and p1; m2 only under p1 (a sparse variant run).
    # Before: "outcomes need at least two templates" raised out of the analysis.
    items = [{"id": f"q{i}", "question": "?", "options": ["x", "y"], "gold": 0} for i in range(4)]
    outputs = [
        {"model": "m", "item": f"q{i}", "choice": c, "variant": v}
        for v, choices in ((None, [0, 0, 0, 1]), ("p1", [0, 1, 1, 1]))
        for i, c in enumerate(choices)
    ] + [{"model": "m2", "item": f"q{i}", "choice": 0, "variant": "p1"} for i in range(4)]
    bundle = parse_bundle(
        {"items": items, "models": [{"name": "m"}, {"name": "m2"}], "outputs": outputs}
    )
    result = run("prompt_stability", bundle)
    rows = {row.name: row for row in result.rows}
    assert rows["m"].n_units == 4 and rows["m"].flips.k == 2
    assert rows["m2"].templates == ["p1"] and rows["m2"].n_units == 0
    finding = {f.judge: f for f in result.findings}["m2"]
    assert finding.status == "insufficient_data" and not finding.flagged
    assert finding.reason == "seen under one template only (p1)"


@pytest.mark.slow
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


def _reference_partial_r(
    bundle: Bundle, judge: str, template: str | None, only_items: set[str] | None = None
) -> float:
    """pingouin's partial r of the judge's score under one template with CAPA (lm-sim, the
    authors' implementation) given accuracy, over its candidates: built here from the records."""
    items = {item.id: item for item in bundle.items}
    gold = [item.gold for item in bundle.items]
    probs = {(o.model, o.item): np.asarray(o.probs) for o in bundle.outputs if o.variant is None}

    def vectors(model: str) -> list[np.ndarray]:
        return [probs[(model, item)] for item in items]

    rows = []
    for candidate in sorted({v.candidate for v in bundle.verdicts if v.judge == judge}):
        if candidate == judge:
            continue
        votes = [
            v.verdict
            for v in bundle.verdicts
            if v.judge == judge
            and v.candidate == candidate
            and v.variant == template
            and v.verdict is not None
            and (only_items is None or v.item in only_items)
        ]
        accuracy = np.mean(
            [np.argmax(p) == g for p, g in zip(vectors(candidate), gold, strict=True)]
        )
        rows.append(
            {
                "score": float(np.mean(votes)),
                "capa": float(CAPA().compute_k(vectors(judge), vectors(candidate), gold)),
                "accuracy": float(accuracy),
            }
        )
    table = pd.DataFrame(rows)
    return float(
        pingouin.partial_corr(table, x="score", y="capa", covar="accuracy", method="pearson")[
            "r"
        ].iloc[0]
    )


def test_affinity_partial_r_per_judge_template_equals_pingouin_and_the_headline() -> None:
    # b-1 is prompt-sensitive: its verdicts differ between the templates, and so its r
    ecosystem = world(
        5,
        families=3,
        size=4,
        n_items=80,
        judges=["a-1", "b-1"],
        affinity_strength=0.6,
        model_prompt_sensitivity={"b-1": 1.0},
    )
    bundle = ecosystem.bundle(with_labels=False, judge_variants=("jp1",))
    result = run("prompt_stability", bundle)
    rows = {r.name: r for r in result.rows if r.role == "judge"}
    headline = {j.judge: j.partial_r for j in analyze_affinity(primary_view(bundle)).judges}
    for judge in ("a-1", "b-1"):
        row = rows[judge]
        assert list(row.affinity_partial_r) == ["primary", "jp1"] and row.affinity_reason == {}
        for template, variant in (("primary", None), ("jp1", "jp1")):
            expected = _reference_partial_r(bundle, judge, variant)
            assert row.affinity_partial_r[template] == pytest.approx(expected, abs=1e-12)
            low, high = row.affinity_ci95[template]
            assert low < row.affinity_partial_r[template] < high
        assert row.affinity_partial_r["primary"] == pytest.approx(headline[judge], abs=1e-12)
        values = list(row.affinity_partial_r.values())
        assert row.affinity_spread == pytest.approx(max(values) - min(values))
    assert rows["a-1"].affinity_spread == 0  # not prompt-sensitive: the same verdicts
    assert rows["b-1"].affinity_spread > 0


def test_affinity_per_template_names_why_it_is_undefined() -> None:
    ecosystem = world(6, families=2, size=2, n_items=40, judges=["a-1"])
    bundle = ecosystem.bundle(with_labels=False, judge_variants=("jp1",))
    (row,) = [r for r in run("prompt_stability", bundle).rows if r.role == "judge"]
    assert row.affinity_partial_r == {"primary": None, "jp1": None}
    assert set(row.affinity_reason) == {"primary", "jp1"}
    assert "candidate" in row.affinity_reason["jp1"]  # 3 candidates: too few for the test
    assert row.affinity_spread is None


def test_templates_are_compared_on_the_items_graded_under_all_of_them() -> None:
    ecosystem = world(
        5,
        families=3,
        size=4,
        n_items=80,
        judges=["b-1"],
        affinity_strength=0.6,
        model_prompt_sensitivity={"b-1": 1.0},
    )
    full = ecosystem.bundle(with_labels=False, judge_variants=("jp1",))
    first = {item.id for item in ecosystem.items[:40]}  # as `prompt_variants.max_items: 40`
    bundle = full.model_copy(
        update={"verdicts": [v for v in full.verdicts if v.variant is None or v.item in first]}
    )
    (row,) = [r for r in run("prompt_stability", bundle).rows if r.role == "judge"]
    assert row.affinity_items == 40 and row.n_units == 40 * 11
    for template, variant in (("primary", None), ("jp1", "jp1")):
        expected = _reference_partial_r(bundle, "b-1", variant, first)
        assert row.affinity_partial_r[template] == pytest.approx(expected, abs=1e-12)
