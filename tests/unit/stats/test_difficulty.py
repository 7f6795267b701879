"""Difficulty statistics against independent references: pandas.qcut for the bins, scipy's
kendalltau, statsmodels' linear-by-linear association test for the Cochran–Armitage trend,
and a hand-worked example."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import Table

from auditor.stats.difficulty import cochran_armitage_trend, kendall_tau, quantile_bins


@pytest.mark.parametrize("n_bins", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantile_bins_equal_pandas_qcut(n_bins: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=53)
    expected = pd.qcut(values, n_bins, labels=False, duplicates="drop")
    assert quantile_bins(values, n_bins).tolist() == list(expected)


def test_quantile_bins_with_ties_equal_pandas_qcut() -> None:
    values = np.array([0.0] * 30 + [0.25] * 5 + [0.5] * 10 + [1.0] * 5)  # share of models wrong
    expected = pd.qcut(values, 5, labels=False, duplicates="drop")
    got = quantile_bins(values, 5)
    assert got.tolist() == list(expected)
    assert got.max() < 4  # repeated edges dropped: ties are never split


def test_quantile_bins_never_leave_an_empty_bin() -> None:
    # The quantiles of these are 0, 0, 0.5, 0.5 + 1e-16, 1, 1: pandas.qcut numbers the bins
    # 0, 0, 0, 0, 2, 2 (bin 1 empty); ours are consecutive.
    values = [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    assert list(pd.qcut(values, 5, labels=False, duplicates="drop")) == [0, 0, 0, 0, 2, 2]
    assert quantile_bins(values, 5).tolist() == [0, 0, 0, 0, 1, 1]


def test_quantile_bins_bad_input_names_the_value() -> None:
    with pytest.raises(ValueError, match="n_bins must be a positive integer; got 0"):
        quantile_bins([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="values must be finite numbers; got nan"):
        quantile_bins([1.0, math.nan], 2)
    with pytest.raises(ValueError, match="must not be empty"):
        quantile_bins([], 2)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_kendall_tau_equals_scipy_with_a_binary_outcome(seed: int) -> None:
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(size=80)
    error = (rng.random(80) < 1 / (1 + np.exp(-difficulty))).astype(float)
    expected = stats.kendalltau(difficulty, error)
    got = kendall_tau(difficulty, error)
    assert got.tau == pytest.approx(expected.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(expected.pvalue, abs=1e-12)
    assert got.n == 80


def test_kendall_tau_hand_worked_and_undefined() -> None:
    # pairs: 4 concordant, 0 discordant, 1 tie in y (x never ties): tau-b = 4 / sqrt(6 * 4)
    assert kendall_tau([1, 2, 3, 4], [0, 0, 1, 1]).tau == pytest.approx(4 / math.sqrt(24))
    constant = kendall_tau([1, 2, 3], [0, 0, 0])
    assert constant.tau is None and constant.reason == "y is constant"
    with pytest.raises(ValueError, match="same length; got 3 and 2"):
        kendall_tau([1, 2, 3], [0, 1])


@pytest.mark.parametrize(
    ("successes", "trials"),
    [([8, 5, 2], [10, 10, 10]), ([3, 7, 9, 12, 20], [40, 38, 41, 35, 30]), ([1, 0, 2], [5, 9, 4])],
)
def test_cochran_armitage_equals_statsmodels_linear_by_linear(
    successes: list[int], trials: list[int]
) -> None:
    r, n = np.array(successes), np.array(trials)
    table = np.column_stack([r, n - r])  # groups x (success, failure)
    reference = Table(table, shift_zeros=False).test_ordinal_association(
        row_scores=np.arange(len(r)), col_scores=np.array([1.0, 0.0])
    )
    total = n.sum()
    got = cochran_armitage_trend(r, n)
    assert got.z == pytest.approx(reference.zscore * math.sqrt(total / (total - 1)), rel=1e-10)
    assert got.p_value == pytest.approx(2 * stats.norm.sf(abs(got.z)), rel=1e-12)


def test_cochran_armitage_hand_worked() -> None:
    # p̄ = 0.5, T = (0)(8-5) + (1)(5-5) + (2)(2-5) = -6, Var = 0.25 (50 - 900/30) = 5
    got = cochran_armitage_trend([8, 5, 2], [10, 10, 10])
    assert got.z == pytest.approx(-6 / math.sqrt(5))
    assert cochran_armitage_trend([0, 0], [4, 5]).reason == "every outcome is the same"
    assert cochran_armitage_trend([1, 0], [4, 0]).reason == "fewer than two non-empty groups"
    with pytest.raises(ValueError, match="between 0 and trials"):
        cochran_armitage_trend([5, 1], [4, 3])


def test_cochran_armitage_size_under_the_null() -> None:
    """Nothing planted: a constant rate over 5 bins is flagged at about alpha (simulation)."""
    rng = np.random.default_rng(7)
    n = np.full(5, 40)
    flagged = 0
    runs = 2000
    for _ in range(runs):
        r = rng.binomial(n, 0.2)
        trend = cochran_armitage_trend(r, n)
        flagged += trend.p_value is not None and trend.p_value < 0.05
    assert flagged / runs <= 0.065
