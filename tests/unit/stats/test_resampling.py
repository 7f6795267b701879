"""`auditor.stats.resampling`: bootstrap and Freedman-Lane permutation of the partial
correlation against slow reference loops over the same draws (pingouin.partial_corr on each
resample), hand-worked counts of degenerate resamples, and errors naming the value."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from auditor.stats import resampling
from auditor.stats.resampling import bootstrap_partial_r, permutation_p
from tests.support.stats import correlated_data, pingouin_row


def test_docstring_examples_run() -> None:
    result = doctest.testmod(resampling, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4
    assert result.failed == 0


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_bootstrap_equals_slow_pingouin_loop(method: str) -> None:
    """Reference: a plain loop calling pingouin.partial_corr on each resample, with the
    resample indices drawn from an identically seeded Generator (the documented draw)."""
    data = correlated_data(21, 12, ties=(method == "spearman"))
    n_resamples = 100
    ours = bootstrap_partial_r(
        data.score, data.capa, data.accuracy, n_resamples, np.random.default_rng(5), method
    )
    index = np.random.default_rng(5).integers(0, 12, size=(n_resamples, 12))
    reference = np.array(
        [float(pingouin_row(data.iloc[rows].reset_index(drop=True), method)["r"]) for rows in index]
    )
    assert not np.isnan(reference).any()
    assert ours.n_degenerate == 0
    assert ours.distribution == pytest.approx(reference, abs=1e-12)
    assert ours.ci95 == pytest.approx(tuple(np.percentile(reference, [2.5, 97.5])), abs=1e-12)


def test_bootstrap_drops_and_counts_degenerate_resamples() -> None:
    """Hand-worked: with data in general position, a resample is degenerate exactly when it
    holds at most two distinct candidates (then x or y is collinear with z)."""
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(3, 5))
    result = bootstrap_partial_r(x, y, z, 3000, np.random.default_rng(1))
    index = np.random.default_rng(1).integers(0, 5, size=(3000, 5))
    distinct = np.array([len(set(row)) for row in index])
    assert result.n_degenerate == int(np.sum(distinct <= 2)) > 0
    assert result.distribution.size == 3000 - result.n_degenerate
    assert result.ci95 is not None and all(math.isfinite(v) for v in result.ci95)
    none = bootstrap_partial_r(x, y, z, 0, np.random.default_rng(1))
    assert none.ci95 is None and none.n_resamples == 0


def test_bootstrap_detects_constant_resamples_among_tied_values() -> None:
    """Hand-worked: x takes one value on observations 0, 1, 2. A resample drawing only those
    three has a constant x (degenerate) although it holds three distinct observations; any
    other resample is degenerate exactly when it holds at most two distinct observations."""
    rng = np.random.default_rng(3)
    x = np.array([0.5, 0.5, 0.5, 0.7, 0.2, 0.9])
    y, z = rng.normal(size=(2, 6))
    result = bootstrap_partial_r(x, y, z, 5000, np.random.default_rng(8))
    index = np.random.default_rng(8).integers(0, 6, size=(5000, 6))
    drawn = [set(row.tolist()) for row in index]
    tied_only = sum(len(d) == 3 and d <= {0, 1, 2} for d in drawn)
    assert tied_only > 0
    assert result.n_degenerate == sum(len(d) <= 2 for d in drawn) + tied_only


@pytest.mark.parametrize(("n", "groups"), [(6, 2), (9, 3), (40, 3), (200, 12)])
def test_constant_resamples_are_found_as_by_every_tie_group(n: int, groups: int) -> None:
    """Reference: the draw counts times the tie-group indicator, every resample and every
    group (`_bootstrap_pearson` checks only the resamples that drew no more distinct
    observations than the largest group holds); the same r, NaN for the same resamples."""
    rng = np.random.default_rng(n)
    x = rng.integers(0, groups, size=n) / groups  # few values: large tie groups
    y = np.where(rng.random(n) < 0.5, 0.25, rng.normal(size=n))
    z = rng.normal(size=n)
    x[: n // 2] = 0.5  # one group of half the observations
    index = np.random.default_rng(n + 1).integers(0, n, size=(4000, n))
    indicator = resampling._tied_value_indicator(x, y, z)
    got = resampling._bootstrap_pearson(index, x, y, z, indicator)
    counts = resampling._counts(index)
    constant = (counts.max(axis=1) == n) | ((counts @ indicator).max(axis=1) == n)
    xc, yc, zc = x - x.mean(), y - y.mean(), z - z.mean()
    terms = np.column_stack([xc, yc, zc, xc * xc, yc * yc, zc * zc, xc * yc, xc * zc, yc * zc])
    sums = counts @ terms
    sx, sy, sz = sums[:, 0], sums[:, 1], sums[:, 2]
    gram = resampling.gram_from_sums(
        sums[:, 3] - sx * sx / n,
        sums[:, 4] - sy * sy / n,
        sums[:, 5] - sz * sz / n,
        sums[:, 6] - sx * sy / n,
        sums[:, 7] - sx * sz / n,
        sums[:, 8] - sy * sz / n,
    )
    expected = resampling.partial_r_from_gram(gram, constant)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    if n <= 9:
        assert np.isnan(expected).sum() > 0  # degenerate resamples are there to be found


def test_resampling_does_not_depend_on_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented draw: blocks of rows give the same stream as one call."""
    data = correlated_data(3, 20)
    args = (data.score, data.capa, data.accuracy, 1000)
    whole_boot = bootstrap_partial_r(*args, np.random.default_rng(2))
    whole_perm = permutation_p(*args, np.random.default_rng(2))
    monkeypatch.setattr(resampling, "RESAMPLE_BLOCK_ROWS", 64)
    assert np.array_equal(
        bootstrap_partial_r(*args, np.random.default_rng(2)).distribution, whole_boot.distribution
    )
    assert permutation_p(*args, np.random.default_rng(2)).p_value == whole_perm.p_value


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_permutation_p_equals_slow_freedman_lane_loop(method: str) -> None:
    """Reference: Freedman & Lane (1983) written as a loop: residuals of score ~ accuracy from
    np.polyfit, permuted with the documented draw, added back to the fitted values, and the
    partial r recomputed by pingouin.partial_corr each time."""
    data = correlated_data(8, 10)
    n_permutations = 150
    ours = permutation_p(
        data.score, data.capa, data.accuracy, n_permutations, np.random.default_rng(4), method
    )
    slope, intercept = np.polyfit(data.accuracy, data.score, 1)
    fitted = intercept + slope * data.accuracy.to_numpy()
    residual = data.score.to_numpy() - fitted
    orders = np.random.default_rng(4).permuted(np.tile(np.arange(10), (n_permutations, 1)), axis=1)
    r_observed = float(pingouin_row(data, method)["r"])
    extreme = 0
    for order in orders:
        shuffled = data.assign(score=fitted + residual[order])
        r = float(pingouin_row(shuffled, method)["r"])
        extreme += abs(r) >= abs(r_observed) - 1e-12
    assert ours.r_observed == pytest.approx(r_observed, abs=1e-12)
    assert ours.n_degenerate == 0
    assert ours.p_value == (1 + extreme) / (1 + n_permutations)


def test_permutation_p_extremes() -> None:
    """Hand-worked bounds: p >= 1 / (1 + P); a perfect partial association reaches it."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=30)
    y = rng.normal(size=30)
    x = z + 0.5 * y + rng.normal(scale=1e-3, size=30)
    strong = permutation_p(x, y, z, 999, np.random.default_rng(0))
    assert strong.p_value == 1 / 1000
    assert permutation_p(x, y, z, 0, np.random.default_rng(0)).p_value is None
    with pytest.raises(ValueError, match="undefined"):
        permutation_p(z * 2 + 1, y, z, 10, np.random.default_rng(0))


def test_bad_inputs_are_named() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"x\[1\]: must be finite; got nan"):
        bootstrap_partial_r([1, float("nan"), 3, 4], [1, 2, 3, 4], [4, 3, 1, 2], 10, rng)
    with pytest.raises(ValueError, match=r"method: must be 'pearson' or 'spearman'; got 'kendall'"):
        permutation_p([1, 2, 3, 4], [2, 1, 4, 3], [4, 3, 1, 2], 10, rng, "kendall")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"n_resamples: must be a non-negative integer; got -1"):
        bootstrap_partial_r([1, 2, 3, 4], [2, 1, 4, 3], [4, 3, 1, 2], -1, rng)
    with pytest.raises(TypeError, match=r"rng: must be a numpy\.random\.Generator"):
        bootstrap_partial_r([1, 2, 3, 4], [2, 1, 4, 3], [4, 3, 1, 2], 5, 0)  # type: ignore[arg-type]
