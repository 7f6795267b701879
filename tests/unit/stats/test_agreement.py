"""Agreement statistics against independent references: statsmodels' cohens_kappa, scikit-style
hand counts, krippendorff-free hand-worked tables, and a planted-truth simulation."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.inter_rater import cohens_kappa as sm_cohens_kappa
from statsmodels.stats.proportion import proportion_confint

from auditor.stats.agreement import (
    binary_rates,
    cohen_kappa,
    rogan_gladen,
    rogan_gladen_bootstrap,
)


def test_kappa_hand_worked():
    # p_o = 4/6, marginals a: (3 ones, 3 zeros), b: (3, 3) -> p_e = 0.5, kappa = 1/3
    result = cohen_kappa([1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 1, 1])
    assert result.kappa == pytest.approx(1 / 3)
    assert result.n == 6


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [2, 3])
def test_kappa_equals_statsmodels(seed, k):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, 120)
    b = np.where(rng.random(120) < 0.6, a, rng.integers(0, k, 120))
    table = np.zeros((k, k))
    np.add.at(table, (a, b), 1)
    reference = sm_cohens_kappa(table)
    ours = cohen_kappa(a.tolist(), b.tolist())
    assert ours.kappa == pytest.approx(reference.kappa, abs=1e-12)
    assert ours.std_error == pytest.approx(reference.std_kappa, abs=1e-12)
    assert ours.std_error_null == pytest.approx(reference.std_kappa0, abs=1e-12)
    assert ours.p_value == pytest.approx(reference.pvalue_two_sided, rel=1e-9)
    assert ours.ci95 == pytest.approx((reference.kappa_low, reference.kappa_upp), abs=1e-12)


def test_kappa_string_labels_and_errors():
    assert cohen_kappa(["A", "B", "tie", "A"], ["A", "B", "tie", "A"]).kappa == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rater_b"):
        cohen_kappa([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="undefined"):
        cohen_kappa([1, 1, 1], [1, 1, 1])


def test_binary_rates_against_counts_and_statsmodels_wilson():
    predicted = [1, 1, 1, 0, 0, 1, 0, 0, 1, 1]
    reference = [1, 1, 0, 0, 0, 1, 1, 0, 1, 0]
    rates = binary_rates(predicted, reference)
    # TP = 4, FN = 1, TN = 3, FP = 2 counted by hand
    assert (rates.true_positives, rates.false_negatives) == (4, 1)
    assert (rates.true_negatives, rates.false_positives) == (3, 2)
    assert rates.tpr == pytest.approx(0.8) and rates.tnr == pytest.approx(0.6)
    assert rates.tpr_ci95 == pytest.approx(proportion_confint(4, 5, method="wilson"), abs=1e-12)
    assert rates.tnr_ci95 == pytest.approx(proportion_confint(3, 5, method="wilson"), abs=1e-12)
    with pytest.raises(ValueError, match="predicted"):
        binary_rates([2, 1], [1, 1])


def test_rogan_gladen_hand_worked_and_undefined():
    assert rogan_gladen(0.6, 0.9, 0.8) == pytest.approx((0.6 + 0.8 - 1) / 0.7)
    assert rogan_gladen(0.05, 0.9, 0.8) == 0.0  # clipped
    assert rogan_gladen(0.5, 0.5, 0.5) is None
    with pytest.raises(ValueError, match="sensitivity"):
        rogan_gladen(0.5, 1.5, 0.5)


def test_rogan_gladen_recovers_planted_prevalence_and_bootstrap_covers():
    # Planted: true pass rate 0.30, judge Se 0.85, Sp 0.75 -> apparent 0.43
    rng = np.random.default_rng(7)
    truth = rng.random(4000) < 0.30
    judged = np.where(truth, rng.random(4000) < 0.85, rng.random(4000) < 0.25)
    labelled = slice(0, 800)
    rates = binary_rates(judged[labelled].astype(int), truth[labelled].astype(int))
    corrected = rogan_gladen(judged.mean(), rates.tpr, rates.tnr)
    assert judged.mean() == pytest.approx(0.43, abs=0.03)
    assert corrected == pytest.approx(0.30, abs=0.04)
    ci = rogan_gladen_bootstrap(
        judged.astype(int),
        judged[labelled].astype(int),
        truth[labelled].astype(int),
        np.random.default_rng(1),
        n_resamples=1000,
    )
    assert ci is not None and ci[0] < corrected < ci[1] and ci[0] < 0.30 < ci[1]
