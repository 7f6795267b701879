"""Each battery probe on small hand-worked bundles: exact counts, rates, intervals and p-values
recomputed here with scipy/statsmodels/krippendorff from the counts written out by hand."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from auditor.probes import REGISTRY, ProbeContext
from auditor.probes.verbosity import PADDINGS, length_slope, pad_answer
from auditor.schemas.bundle import Bundle, Comparison, HumanChoice, Item, ModelInfo, Output, Verdict
from auditor.schemas.columns import bundle_columns
from auditor.schemas.result import AnalysisSettings
from auditor.stats.proportions import newcombe_difference


def _bundle(comparisons=(), verdicts=(), outputs=(), items=(), models=("j", "x", "y")):
    return Bundle(
        items=list(items),
        models=[ModelInfo(name=m) if isinstance(m, str) else m for m in models],
        outputs=list(outputs),
        verdicts=list(verdicts),
        comparisons=list(comparisons),
    )


def _run(bundle, name, *, columns=False):
    """The probe's findings by judge; ``columns``: computed from the columnar form (the
    record form is then never built: `ProbeContext.bundle` raises if read)."""
    probe = next(p for p in REGISTRY if p.name == name)
    if columns:
        table = bundle_columns(bundle)
        assert probe.missing_inputs(table) is None

        def no_records():
            raise AssertionError("the record form was built")

        context = ProbeContext(
            bundle=no_records,
            settings=AnalysisSettings(),
            rng=np.random.default_rng(0),
            columns=table,
        )
        result = probe.compute(context)
        assert result.probe == name
        return {f.judge: f for f in result.findings}
    assert probe.missing_inputs(bundle) is None
    context = ProbeContext(bundle=bundle, settings=AnalysisSettings(), rng=np.random.default_rng(0))
    result = probe.compute(context)
    assert result.probe == name
    return {f.judge: f for f in result.findings}


def _c(item, a, b, winner, gold=None, human=(), judge="j"):
    return Comparison(
        judge=judge,
        item=item,
        candidate_a=a,
        candidate_b=b,
        winner=winner,
        gold=gold,
        human=[HumanChoice(annotator=f"h{i}", choice=c) for i, c in enumerate(human)],
    )


def test_position_hand_worked():
    # 4 pairs judged in both orders. Pair q1: x wins twice (consistent). q2: first slot twice
    # (x then y: inconsistent). q3: first slot twice. q4: tie then y.
    comparisons = [
        _c("q1", "x", "y", "x", gold="x"),
        _c("q1", "y", "x", "x", gold="x"),
        _c("q2", "x", "y", "x", gold="y"),
        _c("q2", "y", "x", "y", gold="y"),
        _c("q3", "x", "y", "x"),
        _c("q3", "y", "x", "y"),
        _c("q4", "x", "y", "tie"),
        _c("q4", "y", "x", "y"),
        _c("q5", "x", "y", "x"),  # one order only: not a complete pair
        _c("q6", "x", "y", None),
        _c("q6", "y", "x", "y"),  # unparseable in one order
    ]
    finding = _run(_bundle(comparisons), "position")["j"]
    # decisive verdicts in complete pairs: q1 (x,x), q2 (x,y), q3 (x,y), q4 (y), q6 (y) = 8;
    # first-slot wins: q1 first x (yes), q1 second x (no: y shown first), q2 both, q3 both,
    # q4 second y (yes), q6 second y (yes) -> 7 of 8
    assert finding.n == 8 and finding.first_slot_win_rate == pytest.approx(7 / 8)
    assert finding.p_value == pytest.approx(stats.binomtest(7, 8, 0.5).pvalue)
    assert finding.ci95 == pytest.approx(proportion_confint(7, 8, method="wilson"), abs=1e-12)
    assert finding.pairs == 4 and finding.consistency == pytest.approx(1 / 4)
    assert finding.ties == 1 and finding.unparseable == 1
    # gold pairs q1 (right, right) and q2 (wrong, right): accuracy 3/4, both orders 1/2
    assert finding.accuracy == pytest.approx(3 / 4)
    assert finding.accuracy_both_orders == pytest.approx(1 / 2)
    assert finding.gold_pairs == 2


def test_verbosity_padding_hand_worked():
    comparisons = [
        _c("q1", "x", "x::pad:restate", "x::pad:restate"),
        _c("q1", "x::pad:restate", "x", "x::pad:restate"),
        _c("q2", "y", "y::pad:filler", "y::pad:filler"),
        _c("q2", "y::pad:filler", "y", "y"),
        _c("q3", "x", "x::pad:preamble", "tie"),
        _c("q3", "x::pad:preamble", "x", None),
        _c("q4", "x", "y::pad:filler", "x"),  # not its own original: ignored
    ]
    finding = _run(_bundle(comparisons), "verbosity")["j"]
    assert finding.measure == "padding"
    assert (finding.n, finding.padded_pairs) == (4, 5)
    assert finding.estimate == pytest.approx(3 / 4)
    assert finding.failure_rate == pytest.approx(3 / 5)
    assert finding.p_value == pytest.approx(stats.binomtest(3, 4, 0.5).pvalue)


def test_padding_transforms_are_documented_and_deterministic():
    assert pad_answer("Paris.", "restate", 0) == "Paris.\n\nTo restate the answer: Paris."
    for transform in PADDINGS:
        padded = pad_answer("Paris.", transform, 7)
        assert "Paris." in padded and len(padded) > len("Paris.")
        assert padded == pad_answer("Paris.", transform, 7)
    with pytest.raises(ValueError, match="transform"):
        pad_answer("x", "shout", 0)


def test_length_slope_equals_statsmodels_logit_on_planted_data():
    import statsmodels.api as sm

    rng = np.random.default_rng(4)
    n = 600
    correct = rng.random(n) < 0.5
    lengths = rng.integers(20, 2000, n)
    z = (np.log(lengths) - np.log(lengths).mean()) / np.log(lengths).std()
    verdict = rng.random(n) < 1 / (1 + np.exp(-(-1 + 2 * correct + 0.8 * z)))
    coefficient, ci, p = length_slope(verdict.astype(int), lengths, correct.astype(int))
    fit = sm.Logit(verdict.astype(float), sm.add_constant(np.column_stack([z, correct]))).fit(
        disp=0
    )
    assert coefficient == pytest.approx(fit.params[1], rel=1e-6)
    assert coefficient == pytest.approx(0.8, abs=0.25)
    assert p < 1e-6 and ci[0] < coefficient < ci[1]


def test_cues_and_repeat_hand_worked():
    comparisons = [_c(f"q{i}", "x", "y", "x") for i in range(6)]
    # placebo repeats: 1 of 6 flips
    comparisons += [
        _c(f"q{i}", "x::placebo:1", "y", "y" if i == 0 else "x::placebo:1") for i in range(6)
    ]
    # cues on y: authority flips 2 of 3, bandwagon 1 of 3
    comparisons += [
        _c("q0", "x", "y::cue:authority", "y::cue:authority"),
        _c("q1", "x", "y::cue:authority", "y::cue:authority"),
        _c("q2", "x", "y::cue:authority", "x"),
        _c("q3", "x", "y::cue:bandwagon", "y::cue:bandwagon"),
        _c("q4", "x", "y::cue:bandwagon", "x"),
        _c("q5", "x", "y::cue:bandwagon", None),
    ]
    bundle = _bundle(comparisons)
    cues = _run(bundle, "cues")["j"]
    assert cues.n == 5 and cues.placebo_n == 6
    assert cues.estimate == pytest.approx(3 / 5 - 1 / 6)
    assert cues.ci95 == pytest.approx(newcombe_difference(3, 5, 1, 6))
    assert cues.p_value == pytest.approx(stats.fisher_exact([[3, 2], [1, 5]]).pvalue)
    assert cues.robustness == pytest.approx(2 / 5)
    by_cue = {effect.cue: effect for effect in cues.by_cue}
    assert (by_cue["authority"].changed, by_cue["authority"].n) == (2, 3)
    assert (by_cue["bandwagon"].changed, by_cue["bandwagon"].n) == (1, 2)
    repeat = _run(bundle, "repeat")["j"]
    assert (repeat.n, repeat.flips) == (6, 1)
    assert repeat.p_value == pytest.approx(
        stats.binomtest(1, 6, 0.05, alternative="greater").pvalue
    )


def test_injection_hand_worked():
    comparisons = [
        _c("q1", "::inject:colon", "x", "::inject:colon"),
        _c("q1", "x", "::inject:colon", "x"),
        _c("q2", "::inject:ignore", "y", "tie"),
        _c("q2", "y", "::inject:ignore", "::inject:ignore"),
        _c("q3", "::inject:correct", "y", None),
    ]
    finding = _run(_bundle(comparisons), "injection")["j"]
    assert (finding.n, finding.false_positives, finding.unparseable) == (4, 2, 1)
    assert finding.ci95 == pytest.approx(proportion_confint(2, 4, method="beta"), abs=1e-12)
    assert finding.by_injection == {"colon": (1, 2), "ignore": (1, 2)}
    assert finding.flagged  # P(X >= 2 | n = 4, p = 0.05) = 0.014
    assert finding.p_value == pytest.approx(
        stats.binomtest(2, 4, 0.05, alternative="greater").pvalue
    )


@pytest.mark.parametrize("columns", [False, True], ids=["records", "columns"])
def test_self_preference_hand_worked(columns):
    items = [Item(id=f"q{i}", question="?", options=["a", "b"], gold=0) for i in range(4)]
    models = [
        ModelInfo(name="j", family="f"),
        ModelInfo(name="k", family="f"),
        ModelInfo(name="o", family="g"),
    ]
    # k (same family as j) right on q0, q1, wrong on q2, q3; o likewise.
    outputs = [
        Output(model=m, item=f"q{i}", choice=0 if i < 2 else 1)
        for m in ("k", "o")
        for i in range(4)
    ]
    # j passes k on all 4; passes o on q0 and q2 only.
    verdicts = [Verdict(judge="j", candidate="k", item=f"q{i}", verdict=1) for i in range(4)]
    verdicts += [
        Verdict(judge="j", candidate="o", item=f"q{i}", verdict=int(i in (0, 2))) for i in range(4)
    ]
    bundle = _bundle(verdicts=verdicts, outputs=outputs, items=items, models=models)
    finding = _run(bundle, "self_preference", columns=columns)["j"]
    # strata: correct [[2, 0], [1, 1]], incorrect [[2, 0], [1, 1]]: each difference 1 - 0.5
    assert finding.estimate == pytest.approx(0.5)
    assert finding.own_candidates == ["j", "k"]
    assert (finding.own_verdicts, finding.other_verdicts) == (4, 4)
    assert finding.pass_rate_other_incorrect == pytest.approx(0.5)


def test_human_agreement_against_krippendorff_and_kappa_by_hand():
    # judge and 3 annotators on 6 comparisons of x vs y (slot labels a = x, b = y)
    judge = ["x", "x", "y", "y", "tie", "x"]
    humans = [
        ("x", "x", "x"),
        ("x", "y", "x"),
        ("y", "y", "y"),
        ("x", "x", "y"),
        ("tie", "tie", "x"),
        ("y", None, "y"),
    ]
    comparisons = [
        _c(f"q{i}", "x", "y", winner, human=choices)
        for i, (winner, choices) in enumerate(zip(judge, humans, strict=True))
    ]
    finding = _run(_bundle(comparisons), "human_agreement")["j"]
    # majorities: x, x, y, x, tie, y; judge: x, x, y, y, tie, x -> p_o = 4/6
    # judge marginals (x 3, y 2, tie 1), majority (x 3, y 2, tie 1): p_e = (9 + 4 + 1) / 36
    p_e = 14 / 36
    assert finding.estimate == pytest.approx((4 / 6 - p_e) / (1 - p_e))
    code = {"x": 0, "y": 1, "tie": 2, None: np.nan}
    data = np.array(
        [[code[w] for w in judge]] + [[code[h[r]] for h in humans] for r in range(3)], dtype=float
    )
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert finding.krippendorff_alpha == pytest.approx(expected)
    assert finding.annotators == 3


def test_missing_inputs_say_why():
    bundle = _bundle(comparisons=[_c("q1", "x", "y", "x")])
    reasons = {p.name: p.missing_inputs(bundle) for p in REGISTRY}
    assert reasons["human_agreement"] == "no human labels"
    assert reasons["injection"] == "no comparisons with an injected answer"
    assert reasons["self_preference"] == "no pointwise verdicts"
    assert "both orders" in reasons["position"]
