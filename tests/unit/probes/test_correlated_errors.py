"""The correlated-errors probe: hand-worked counts, insufficient data, planted judge inflation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig
from auditor.probes import REGISTRY, probe_named
from auditor.probes.correlated_errors import analyze_correlated_errors
from auditor.schemas.bundle import Bundle, Item, ModelInfo, Output, Verdict
from auditor.schemas.correlated_errors import CorrelatedErrorsSettings
from auditor.stats.inflation import judge_inflation

FAST = CorrelatedErrorsSettings(n_bootstrap=200, n_permutations=500)

# Hand-worked: 5 four-option items, gold 0 everywhere; rows are each model's chosen options.
CHOICES = {
    "a": [0, 1, 2, 3, 1],
    "b": [0, 1, 2, 0, 2],
    "c": [1, 1, 0, 3, 3],
    "d": [0, 0, 3, 3, 1],
}


def _hand_bundle(providers: dict[str, str | None] | None = None, verdicts: bool = False) -> Bundle:
    providers = providers or {"a": "p", "b": "p", "c": "q", "d": "q"}
    items = [Item(id=f"x{i}", question="?", options=list("ABCD"), gold=0) for i in range(5)]
    models = [ModelInfo(name=m, provider=providers[m], family=m) for m in CHOICES]
    outputs = [
        Output(model=m, item=f"x{i}", choice=c)
        for m, row in CHOICES.items()
        for i, c in enumerate(row)
    ]
    judged = []
    if verdicts:
        for j in ("a", "c"):
            for cand in CHOICES:
                for i in range(5):
                    judged.append(
                        Verdict(
                            judge=j,
                            candidate=cand,
                            item=f"x{i}",
                            verdict=int(CHOICES[cand][i] in (0, 1)),
                        )
                    )
    return Bundle(items=items, models=models, outputs=outputs, verdicts=judged)


def test_agreement_and_monoculture_equal_direct_counts() -> None:
    result = analyze_correlated_errors(_hand_bundle(), FAST)
    agreement = result.agreement
    assert agreement is not None
    # Wrong answers: a x1..x4 = (1, 2, 3, 1); b x1, x2, x4 = (1, 2, 2); c x0, x1, x3, x4 =
    # (1, 1, 3, 3); d x2, x3, x4 = (3, 3, 1).
    # a, b: both wrong on x1, x2, x4; same option on x1, x2 -> 2/3.
    assert agreement.n_both_wrong[0][1] == 3
    assert agreement.matrix[0][1] == pytest.approx(2 / 3)
    # a, d: both wrong on x2 (2 vs 3), x3 (3, 3), x4 (1, 1) -> 2/3.
    assert agreement.n_both_wrong[0][3] == 3 and agreement.matrix[0][3] == pytest.approx(2 / 3)
    # b, d: both wrong on x2 (2 vs 3), x4 (2 vs 1) -> 0.
    assert agreement.n_both_wrong[1][3] == 2 and agreement.matrix[1][3] == pytest.approx(0.0)
    # a, c: both wrong on x1 (1, 1), x3 (3, 3), x4 (1 vs 3) -> 2/3.
    assert agreement.n_both_wrong[0][2] == 3 and agreement.matrix[0][2] == pytest.approx(2 / 3)
    assert agreement.chance_level == pytest.approx(1 / 3)
    wrong = np.array([[c != 0 for c in row] for row in CHOICES.values()])
    mono = result.monoculture
    assert mono is not None
    assert mono.n_all_fail == int(wrong.all(axis=0).sum()) == 1  # x4 only
    # Error rates 4/5, 3/5, 4/5, 3/5: baseline 144/625, observed 1/5.
    assert mono.baseline == pytest.approx(144 / 625)
    assert mono.ratio == pytest.approx((1 / 5) / (144 / 625))
    json.dumps(result.model_dump(mode="json"), allow_nan=False)


def test_panel_parts_from_verdicts() -> None:
    result = analyze_correlated_errors(_hand_bundle(verdicts=True), FAST)
    assert result.judge_monoculture is not None and result.effective_judges is not None
    # Both judges accept exactly the answers naming option 0 or 1, so they reject the same ones.
    rejected = np.array([[c not in (0, 1) for row in CHOICES.values() for c in row]] * 2)
    assert result.judge_monoculture.n_all_fail == int(rejected[0].sum())
    assert result.effective_judges.n_eff == pytest.approx(1.0)
    assert [f.judge for f in result.findings] == ["a", "c"]
    json.dumps(result.model_dump(mode="json"), allow_nan=False)


def test_too_few_models_is_insufficient_data_naming_it() -> None:
    bundle = _hand_bundle()
    two = Bundle(
        items=bundle.items,
        models=bundle.models[:2],
        outputs=[o for o in bundle.outputs if o.model in ("a", "b")],
    )
    result = analyze_correlated_errors(two, FAST)
    assert result.status == "insufficient_data"
    assert "at least 3 models" in (result.reason or "")
    assert probe_named("correlated_errors").missing_inputs(two) is not None


def test_no_provider_metadata_is_named() -> None:
    result = analyze_correlated_errors(_hand_bundle(dict.fromkeys(CHOICES)), FAST)
    assert result.status == "insufficient_data"
    assert result.regression is not None and result.regression.status == "insufficient_data"
    assert "provider" in (result.regression.reason or "")
    assert any("provider" in m for m in result.missing)
    assert result.agreement is not None  # what can be computed still is
    json.dumps(result.model_dump(mode="json"), allow_nan=False)


def test_no_both_wrong_item_is_named() -> None:
    bundle = _hand_bundle()
    right = Bundle(
        items=bundle.items,
        models=bundle.models,
        outputs=[
            o.model_copy(update={"choice": 0 if o.model != "a" else o.choice})
            for o in bundle.outputs
        ],
    )
    result = analyze_correlated_errors(right, FAST)
    assert result.status == "insufficient_data"
    assert "both got wrong" in (result.reason or "")
    json.dumps(result.model_dump(mode="json"), allow_nan=False)


def test_registered() -> None:
    assert probe_named("correlated_errors") in REGISTRY


# --- planted judge inflation (auditor.ecosystem) --------------------------------------------------

FAMILIES = [
    FamilyConfig(name=name, size=3, provider=provider)
    for name, provider in (
        ("a", "P1"),
        ("b", "P1"),
        ("c", "P2"),
        ("d", "P2"),
        ("e", "P3"),
        ("f", "P3"),
    )
]


def test_verdict_array_equals_verdict_calls() -> None:
    world = Ecosystem(
        EcosystemConfig(
            seed=2,
            n_items=10,
            families=FAMILIES,
            same_provider_inflation=0.4,
            affinity_strength=0.2,
        )
    )
    judges, candidates = list(world.judge_names), list(world.model_names)
    array = world.verdict_array(judges, candidates)
    for j, judge in enumerate(judges):
        for c, candidate in enumerate(candidates):
            for x, item in enumerate(world.items):
                expected = world.verdict(judge, item.id, world.answer_text(candidate, item.id))
                assert array[j, c, x] == expected


def test_planted_inflation_is_flagged_by_the_probe() -> None:
    # Families of 3: each judge has 5 same-provider candidates among 17, enough distinct
    # labelings for a permutation p that survives Holm across 6 judges.
    world = Ecosystem(
        EcosystemConfig(seed=5, n_items=120, families=FAMILIES, same_provider_inflation=0.5)
    )
    result = analyze_correlated_errors(world.bundle(), FAST)
    assert len(result.findings) == 6
    assert all(f.estimate is not None and f.estimate > 0 for f in result.findings)
    assert sum(f.flagged for f in result.findings) >= 5


def _inflation_p_values(seed: int, inflation: float) -> list[tuple[float, float]]:
    world = Ecosystem(
        EcosystemConfig(
            seed=seed, n_items=100, families=FAMILIES, same_provider_inflation=inflation
        )
    )
    judges, candidates = list(world.judge_names), list(world.model_names)
    scores = world.verdict_array(judges, candidates).mean(axis=2)
    accuracy = np.array([world.accuracies[c] for c in candidates])
    rng = np.random.default_rng(seed)
    out = []
    for j, judge in enumerate(judges):
        others = np.array([c != judge for c in candidates])
        same = np.array([world.provider_of[c] == world.provider_of[judge] for c in candidates])
        result = judge_inflation(
            scores[j, others],
            accuracy[others],
            same[others],
            rng,
            n_bootstrap=0,
            n_permutations=999,
        )
        assert result.p_value is not None and result.difference is not None
        out.append((result.difference, result.p_value))
    return out


@pytest.mark.slow
def test_planted_inflation_detected_and_none_flagged_beyond_alpha() -> None:
    planted = [r for seed in range(15) for r in _inflation_p_values(seed, 0.3)]
    detected = sum(d > 0 and p < 0.05 for d, p in planted)
    assert detected / len(planted) >= 0.8, detected
    null = [r for seed in range(100, 160) for r in _inflation_p_values(seed, 0.0)]
    flagged = sum(p < 0.05 for _, p in null)
    # One-sided exact binomial test of H0: rate <= 0.05 at the 1% level over 360 judge tests.
    assert stats.binomtest(flagged, len(null), 0.05, alternative="greater").pvalue > 0.01, flagged


def test_inside_an_audit_the_probe_leaves_the_adjustment_to_the_analysis() -> None:
    from auditor.probes.base import ProbeContext

    world = Ecosystem(
        EcosystemConfig(seed=5, n_items=60, families=FAMILIES, same_provider_inflation=0.5)
    )
    bundle = world.bundle()
    standalone = analyze_correlated_errors(bundle, FAST)

    class Settings:
        alpha = 0.05
        seed = 0

    in_audit = probe_named("correlated_errors").compute(
        ProbeContext(bundle=bundle, settings=Settings(), rng=np.random.default_rng(0))  # type: ignore[arg-type]
    )
    assert all(f.p_adjusted is not None for f in standalone.findings if f.p_value is not None)
    assert all(f.p_adjusted is None for f in in_audit.findings)
    assert all(
        f.flagged == (f.p_value is not None and f.p_value < 0.05 and (f.estimate or 0) > 0)
        for f in in_audit.findings
    )


def test_matrix_entries_are_floats_or_none_as_one_by_one() -> None:
    from auditor.probes.correlated_errors import _finite_or_none, _finite_or_none_rows

    values = np.array([[np.nan, 0.5, np.inf], [1.0, -np.inf, 0.1 + 0.2]])
    got = _finite_or_none_rows(values)
    assert got == [[_finite_or_none(v) for v in row] for row in values]
    assert got == [[None, 0.5, None], [1.0, None, 0.30000000000000004]]
    assert all(type(v) in (float, type(None)) for row in got for v in row)
