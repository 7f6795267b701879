"""Agreement with humans on pointwise verdicts: kappa, Krippendorff's alpha, TPR/TNR with CIs and
the Rogan–Gladen corrected pass rate, against statsmodels, krippendorff and hand-worked counts;
then planted truth: the corrected rate recovers the planted pass rate, a judge that barely
agrees with humans is flagged and a good one is not."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from auditor.probes import ProbeContext, probe_named
from auditor.schemas.bundle import Bundle, Comparison, HumanChoice, Item, Label, ModelInfo, Verdict
from auditor.schemas.result import AnalysisSettings

PROBE = probe_named("human_agreement")
OUTCOME = {1: "correct", 0: "incorrect"}


def _items(n: int) -> list[Item]:
    return [Item(id=f"q{i}", question="?", options=["a", "b"], gold=0) for i in range(n)]


def _compute(bundle: Bundle, seed: int = 0):
    assert PROBE.missing_inputs(bundle) is None
    context = ProbeContext(bundle, AnalysisSettings(), np.random.default_rng(seed))
    return PROBE.compute(context)


def test_pointwise_hand_worked_against_statsmodels_and_krippendorff():
    # judge j on candidate x, items q0..q9; three annotators label q0..q7 (q8, q9 unlabelled).
    judge = [1, 1, 1, 0, 0, 1, 0, 1, 1]  # q0..q8; q9 unparseable
    humans = [  # per item: h0, h1, h2 (1 = correct); q3 has h2 missing
        (1, 1, 1),
        (1, 1, 0),
        (0, 0, 1),
        (0, 0, None),
        (0, 1, 0),
        (1, 1, 1),
        (1, 1, 0),
        (0, 0, 0),
    ]
    verdicts = [
        Verdict(judge="j", candidate="x", item=f"q{i}", verdict=v) for i, v in enumerate(judge)
    ]
    verdicts.append(Verdict(judge="j", candidate="x", item="q9", verdict=None, raw="?"))
    verdicts.append(Verdict(judge="j", candidate="x", item="q0", verdict=0, variant="v2"))
    labels = [
        Label(item=f"q{i}", candidate="x", outcome=OUTCOME[h], annotator=f"h{a}")
        for i, row in enumerate(humans)
        for a, h in enumerate(row)
        if h is not None
    ]
    bundle = Bundle(
        items=_items(10),
        models=[ModelInfo(name="j"), ModelInfo(name="x")],
        verdicts=verdicts,
        labels=labels,
    )
    result = _compute(bundle)
    (finding,) = result.findings
    assert finding.measure == "pointwise" and finding.annotators == 3
    # majorities q0..q7: 1, 1, 0, 0, 0, 1, 1, 0; judge (primary template): 1, 1, 1, 0, 0, 1, 0, 1
    majority = [1, 1, 0, 0, 0, 1, 1, 0]
    judged = judge[:8]
    table = np.zeros((2, 2))
    for a, b in zip(judged, majority, strict=True):
        table[a, b] += 1
    reference = cohens_kappa(table)
    assert finding.n == 8
    assert finding.estimate == pytest.approx(reference.kappa, abs=1e-12)
    assert finding.ci95 == pytest.approx((reference.kappa_low, reference.kappa_upp), abs=1e-12)
    # TP: majority 1 and judge 1: q0, q1, q5 = 3 of 4 positives (q6 missed); TN: q3, q4 of 4
    assert finding.tpr == pytest.approx(3 / 4) and finding.tnr == pytest.approx(2 / 4)
    assert finding.tpr_ci95 == pytest.approx(proportion_confint(3, 4, method="wilson"))
    assert finding.tnr_ci95 == pytest.approx(proportion_confint(2, 4, method="wilson"))
    # the apparent rate counts every parsed primary verdict, labelled or not: 6 of 9
    assert finding.n_verdicts == 9 and finding.judged_pass_rate == pytest.approx(6 / 9)
    # Rogan–Gladen: (6/9 + 1/2 - 1) / (3/4 + 1/2 - 1) = (1/6) / (1/4) = 2/3
    assert finding.corrected_pass_rate == pytest.approx(2 / 3)
    low, high = finding.corrected_pass_rate_ci95
    assert 0.0 <= low <= high <= 1.0
    data = np.array(
        [judged] + [[np.nan if row[a] is None else row[a] for row in humans] for a in range(3)],
        dtype=float,
    )
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert finding.krippendorff_alpha == pytest.approx(expected)
    assert result.by_measure == result.findings


def test_a_judge_with_both_measures_has_its_pointwise_headline_and_both_in_by_measure():
    verdicts = [Verdict(judge="j", candidate="x", item=f"q{i}", verdict=i % 2) for i in range(6)]
    labels = [
        Label(item=f"q{i}", candidate="x", outcome=OUTCOME[int(i % 3 == 0)], annotator="h")
        for i in range(6)
    ]
    comparisons = [
        Comparison(
            judge="j",
            item=f"q{i}",
            candidate_a="x",
            candidate_b="y",
            winner="x" if i % 2 else "y",
            human=[HumanChoice(annotator="h", choice="x" if i % 3 else "y")],
        )
        for i in range(6)
    ]
    bundle = Bundle(
        items=_items(6),
        models=[ModelInfo(name=m) for m in ("j", "x", "y")],
        verdicts=verdicts,
        labels=labels,
        comparisons=comparisons,
    )
    result = _compute(bundle)
    assert [f.measure for f in result.findings] == ["pointwise"]
    assert [f.measure for f in result.by_measure] == ["pointwise", "pairwise"]
    grader_only = bundle.model_copy(
        update={
            "labels": [lab.model_copy(update={"source": "grader"}) for lab in labels],
            "comparisons": [],
        }
    )
    assert PROBE.missing_inputs(grader_only) == "no human labels"


def _world(seed: int, sensitivity: float, specificity: float, n: int = 600, labelled: int = 200):
    """A judge grading n answers of one candidate whose planted pass rate is 0.6; humans (the
    truth) label the first ``labelled`` answers."""
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < 0.6
    says = np.where(truth, rng.random(n) < sensitivity, rng.random(n) < 1 - specificity)
    bundle = Bundle(
        items=_items(n),
        models=[ModelInfo(name="j"), ModelInfo(name="x")],
        verdicts=[
            Verdict(judge="j", candidate="x", item=f"q{i}", verdict=int(says[i])) for i in range(n)
        ],
        labels=[
            Label(item=f"q{i}", candidate="x", outcome=OUTCOME[int(truth[i])], annotator="h")
            for i in range(labelled)
        ],
    )
    return bundle, float(truth.mean())


@pytest.mark.slow
def test_planted_pass_rate_is_recovered_and_poor_agreement_is_flagged():
    seeds = range(40)
    covered = flagged_poor = flagged_good = 0
    errors = []
    for seed in seeds:
        bundle, truth = _world(seed, sensitivity=0.9, specificity=0.7)
        (finding,) = _compute(bundle, seed).findings
        low, high = finding.corrected_pass_rate_ci95
        covered += low <= truth <= high
        errors.append(finding.corrected_pass_rate - truth)
        # uncorrected, the judge's lenient rate is biased upwards: 0.6*0.9 + 0.4*0.3 = 0.66
        assert finding.judged_pass_rate > truth - 0.02
        poor, _ = _world(1000 + seed, sensitivity=0.6, specificity=0.5, labelled=150)
        flagged_poor += _compute(poor, seed).findings[0].flagged
        good, _ = _world(2000 + seed, sensitivity=0.95, specificity=0.95, labelled=150)
        flagged_good += _compute(good, seed).findings[0].flagged
    assert abs(float(np.mean(errors))) < 0.02  # the correction removes the +0.06 bias
    assert covered >= 0.85 * len(seeds), covered
    assert flagged_poor >= 0.9 * len(seeds), flagged_poor
    assert flagged_good == 0, flagged_good
