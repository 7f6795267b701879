"""`auditor.stats.correlation`: the one partial correlation against pingouin.partial_corr (an
independent implementation, the reference), Fisher-z intervals against an independent
computation, hand-worked edge cases, and errors naming the value."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pingouin
import pytest
from scipy import stats

from auditor.stats import correlation as correlation_module
from auditor.stats.correlation import (
    correlation,
    fisher_ci,
    gram_from_sums,
    partial_correlation,
    partial_r,
    partial_r_from_gram,
)
from tests.support.stats import correlated_data, p_column, pingouin_row

Z_975 = stats.norm.ppf(0.975)  # independent critical value for the Fisher-z checks


def test_docstring_examples_run() -> None:
    result = doctest.testmod(correlation_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4
    assert result.failed == 0


@pytest.mark.parametrize("method", ["pearson", "spearman"])
@pytest.mark.parametrize(
    ("seed", "n", "ties"), [(0, 8, False), (1, 15, False), (2, 39, False), (3, 60, True)]
)
def test_partial_correlation_equals_pingouin(seed: int, n: int, ties: bool, method: str) -> None:
    """Reference: pingouin.partial_corr (inverse-covariance method) on the same data."""
    data = correlated_data(seed, n, ties)
    ours = partial_correlation(data.score, data.capa, data.accuracy, method=method)
    ref = pingouin_row(data, method)
    assert ours.n == int(ref["n"]) == n
    assert ours.r == pytest.approx(float(ref["r"]), abs=1e-10)
    assert ours.p_value == pytest.approx(p_column(ref), abs=1e-10)
    # pingouin rounds its CI (6 decimals, then 2 for display): ours is the unrounded interval.
    assert np.array_equal(np.round(np.round(ours.ci95, 6), 2), np.asarray(ref["CI95"]))
    assert np.all(np.abs(np.asarray(ours.ci95) - np.asarray(ref["CI95"])) <= 0.005 + 1e-12)
    # Independent Fisher-z interval, pingouin's nx = n - k convention: se = 1 / sqrt(n - 1 - 3).
    z, se = math.atanh(ours.r), 1 / math.sqrt(n - 4)
    assert ours.ci95 == pytest.approx((math.tanh(z - Z_975 * se), math.tanh(z + Z_975 * se)))
    assert abs(ours.ci95[0] - math.tanh(z - Z_975 * se)) < 1e-12


def test_partial_correlation_with_two_covariates_equals_pingouin() -> None:
    """Reference: pingouin.partial_corr with covar=[a, b] (k = 2 shifts dof and the CI)."""
    data = correlated_data(4, 25)
    data["other"] = np.random.default_rng(9).normal(size=25)
    ours = partial_correlation(data.score, data.capa, data[["accuracy", "other"]].to_numpy())
    ref = pingouin.partial_corr(data=data, x="score", y="capa", covar=["accuracy", "other"])
    assert ours.r == pytest.approx(float(ref["r"].iloc[0]), abs=1e-10)
    assert ours.p_value == pytest.approx(p_column(ref.iloc[0]), abs=1e-10)
    assert np.array_equal(np.round(np.round(ours.ci95, 6), 2), np.asarray(ref["CI95"].iloc[0]))


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_vectorized_partial_r_equals_pingouin_row_by_row(method: str) -> None:
    """Reference: pingouin.partial_corr on each row of a (B, n) batch; one batch call here."""
    batch = [correlated_data(seed, 14, ties=(method == "spearman")) for seed in range(12)]
    x = np.stack([data.score.to_numpy() for data in batch])
    y = np.stack([data.capa.to_numpy() for data in batch])
    z = np.stack([data.accuracy.to_numpy() for data in batch])
    ours = partial_r(x, y, z, method)
    reference = [float(pingouin_row(data, method)["r"]) for data in batch]
    assert ours == pytest.approx(reference, abs=1e-12)
    single = partial_correlation(x[3], y[3], z[3], method=method)
    assert single.r == pytest.approx(float(ours[3]), abs=1e-14)


def test_gram_with_one_and_with_two_covariates_is_one_formula() -> None:
    """A second covariate that is pure noise orthogonalized against the rest leaves r as the
    one-covariate formula gives it (hand-worked: its cross sums are zero); the k = 2 branch
    (pseudo-inverse) and the k = 1 branch (division) agree to rounding."""
    data = correlated_data(6, 30)
    centered = data.to_numpy() - data.to_numpy().mean(axis=0)
    noise = np.random.default_rng(1).normal(size=30)
    noise -= noise.mean()
    noise -= centered @ np.linalg.lstsq(centered, noise, rcond=None)[0]  # orthogonal to all
    wide = np.column_stack([centered, noise])
    one = float(partial_r_from_gram(centered.T @ centered))
    two = float(partial_r_from_gram(wide.T @ wide))
    assert two == pytest.approx(one, abs=1e-12)
    sums = gram_from_sums(
        *(
            np.array(centered[:, a] @ centered[:, b])
            for a, b in ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
        )
    )
    assert float(partial_r_from_gram(sums)) == pytest.approx(one, abs=1e-14)


def test_undefined_where_explained_or_constant() -> None:
    """Hand-worked: x = 2z + 1 is fully explained by z; a constant row is flagged as such."""
    z = np.array([1.0, 2.0, 4.0, 3.0, 5.0])
    y = np.array([2.0, 1.0, 4.0, 5.0, 6.0])
    assert math.isnan(float(partial_r(2 * z + 1, y, z)))
    assert math.isnan(float(partial_r(np.ones(5), y, z)))
    rows = partial_r(np.stack([y, np.ones(5)]), z, np.array([1.0, 3, 2, 5, 4]))
    assert not math.isnan(rows[0]) and math.isnan(rows[1])
    with pytest.raises(ValueError, match="x: is a linear function of covar"):
        partial_correlation(2 * z + 1, y, z)
    with pytest.raises(ValueError, match=r"gram: must have shape \(\.\.\., m, m\)"):
        partial_r_from_gram(np.ones(3))


def test_plain_correlation_equals_scipy() -> None:
    data = correlated_data(2, 25, ties=True)
    assert correlation(data.score, data.capa) == pytest.approx(
        stats.pearsonr(data.score, data.capa).statistic, abs=1e-12
    )
    assert correlation(data.score, data.capa, "spearman") == pytest.approx(
        stats.spearmanr(data.score, data.capa).statistic, abs=1e-12
    )


def test_fisher_ci_edge_cases() -> None:
    """Hand-worked: |r| = 1 gives (r, r); n - k <= 3 gives (-1, 1) as pingouin's infinite se."""
    assert fisher_ci(1.0, 10, 1) == (1.0, 1.0)
    assert fisher_ci(-1.0, 10, 1) == (-1.0, -1.0)
    assert fisher_ci(0.3, 4, 1) == (-1.0, 1.0)
    low, high = fisher_ci(0.0, 103, 0)  # se = 0.1
    assert (low, high) == pytest.approx((-math.tanh(Z_975 * 0.1), math.tanh(Z_975 * 0.1)))
    with pytest.raises(ValueError, match=r"r: must be in \[-1, 1\]; got 1.5"):
        fisher_ci(1.5, 10)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"y: has 3 values but x has 4"):
        partial_correlation([1, 2, 3, 4], [1, 2, 3], [1, 2, 3, 5])
    with pytest.raises(ValueError, match="x: is constant"):
        partial_correlation([1, 1, 1, 1], [2, 1, 4, 3], [4, 3, 1, 2])
    with pytest.raises(ValueError, match=r"method: must be 'pearson' or 'spearman'; got 'kendall'"):
        partial_correlation([1, 2, 3, 4], [2, 1, 4, 3], [4, 3, 1, 2], "kendall")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"x: needs at least 4 observations for 1 covariate"):
        partial_correlation([1, 2, 3], [2, 1, 4], [4, 3, 1])
