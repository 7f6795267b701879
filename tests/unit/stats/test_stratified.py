"""Mantel–Haenszel risk difference and CMH test against statsmodels, Wald and hand-worked tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import StratifiedTable

from auditor.stats.stratified import cmh_test, mantel_haenszel_difference


def test_one_stratum_is_the_plain_difference_with_wald_variance():
    result = mantel_haenszel_difference([[8, 2], [5, 5]])
    assert result.estimate == pytest.approx(0.3)
    assert result.std_error == pytest.approx(math.sqrt(0.8 * 0.2 / 10 + 0.5 * 0.5 / 10))


def test_two_strata_hand_worked():
    # stratum 1: [[30, 10], [20, 20]] N=80: (30*40 - 20*40)/80 = 5, weight 40*40/80 = 20
    # stratum 2: [[5, 15], [2, 38]]  N=60: (5*40 - 2*20)/60 = 8/3, weight 20*40/60 = 40/3
    tables = [[[30, 10], [20, 20]], [[5, 15], [2, 38]]]
    estimate = (5 + 8 / 3) / (20 + 40 / 3)
    var_num = (30 * 10 * 40**3 + 20 * 20 * 40**3) / (40 * 40 * 80**2) + (
        5 * 15 * 40**3 + 2 * 38 * 20**3
    ) / (20 * 40 * 60**2)
    result = mantel_haenszel_difference(tables)
    assert result.estimate == pytest.approx(estimate)
    assert result.std_error == pytest.approx(math.sqrt(var_num) / (20 + 40 / 3))
    assert result.strata == 2


@pytest.mark.parametrize("correction", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_cmh_equals_statsmodels(seed, correction):
    rng = np.random.default_rng(seed)
    tables = rng.integers(1, 40, size=(4, 2, 2))
    reference = StratifiedTable(np.moveaxis(tables, 0, -1).astype(float)).test_null_odds(
        correction=correction
    )
    ours = cmh_test(tables, correction=correction)
    assert ours.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert ours.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_planted_difference_is_recovered_and_covered():
    # Planted: own candidates judged correct 0.15 more often at each correctness level.
    rng = np.random.default_rng(3)
    covered = 0
    for _ in range(200):
        tables = []
        for base in (0.8, 0.2):  # correct / incorrect strata
            own = rng.binomial(150, base + 0.15 if base < 0.5 else min(0.95, base + 0.15))
            other = rng.binomial(600, base)
            tables.append([[own, 150 - own], [other, 600 - other]])
        result = mantel_haenszel_difference(tables)
        covered += result.ci95[0] <= 0.15 <= result.ci95[1]
    assert 0.92 <= covered / 200 <= 0.98


def test_errors_name_the_value():
    with pytest.raises(ValueError, match="shape"):
        mantel_haenszel_difference([[1, 2, 3]])
    with pytest.raises(ValueError, match="no stratum"):
        mantel_haenszel_difference([[[0, 0], [3, 4]]])
