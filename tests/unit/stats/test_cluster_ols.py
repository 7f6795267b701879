"""Cluster-robust OLS against statsmodels (fitted here, independently) and a direct double sum."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from auditor.stats.cluster_ols import cluster_ols
from auditor.stats.pair_regression import pair_design, pair_regression


def _pair_data(seed: int, n_models: int = 12):
    rng = np.random.default_rng(seed)
    first, second = np.triu_indices(n_models, k=1)
    model_effect = rng.normal(0, 0.05, n_models)
    provider = rng.integers(0, 3, n_models)
    x1 = (provider[first] == provider[second]).astype(float)
    x2 = rng.normal(size=first.size)
    y = 0.3 + 0.05 * x1 + 0.02 * x2 + model_effect[first] + model_effect[second]
    y = y + rng.normal(0, 0.03, first.size)
    design = np.column_stack([np.ones(first.size), x1, x2])
    return y, design, np.column_stack([first, second])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("use_t", [False, True])
def test_two_way_equals_statsmodels(seed: int, use_t: bool) -> None:
    y, design, groups = _pair_data(seed)
    ours = cluster_ols(y, design, groups, ["intercept", "x1", "x2"], use_t=use_t)
    theirs = sm.OLS(y, design).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=use_t)
    assert not ours.psd_adjusted
    np.testing.assert_allclose(ours.coef, theirs.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.se, theirs.bse, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ours.p, theirs.pvalues, rtol=1e-6, atol=1e-12)
    ci = theirs.conf_int()
    np.testing.assert_allclose(ours.ci_low, ci[:, 0], atol=1e-8)
    np.testing.assert_allclose(ours.ci_high, ci[:, 1], atol=1e-8)


def test_one_way_equals_statsmodels() -> None:
    y, design, groups = _pair_data(5)
    ours = cluster_ols(y, design, groups[:, 0], ["a", "b", "c"], clustering="one-way")
    theirs = sm.OLS(y, design).fit(cov_type="cluster", cov_kwds={"groups": groups[:, 0]})
    np.testing.assert_allclose(ours.coef, theirs.params, atol=1e-10)
    np.testing.assert_allclose(ours.se, theirs.bse, atol=1e-8)


def test_dyadic_equals_direct_double_sum() -> None:
    """Meat = sum of s_i s_j' over observation pairs (i, j) sharing a member, i = j included."""
    y, design, groups = _pair_data(1, n_models=8)
    fit = cluster_ols(y, design, groups, ["a", "b", "c"], clustering="dyadic")
    assert not fit.psd_adjusted
    n, k = design.shape
    beta = np.linalg.solve(design.T @ design, design.T @ y)
    scores = design * (y - design @ beta)[:, None]
    meat = np.zeros((k, k))
    for i in range(n):
        for j in range(n):
            if set(groups[i]) & set(groups[j]):
                meat += np.outer(scores[i], scores[j])
    g = 8
    meat *= g / (g - 1) * (n - 1) / (n - k)
    bread = np.linalg.inv(design.T @ design)
    np.testing.assert_allclose(fit.cov, bread @ meat @ bread, rtol=1e-10, atol=1e-14)


def test_dyadic_conservative_adds_each_pairs_own_term_once_more() -> None:
    y, design, groups = _pair_data(2, n_models=10)
    dyadic = cluster_ols(y, design, groups, ["a", "b", "c"], clustering="dyadic")
    conservative = cluster_ols(y, design, groups, ["a", "b", "c"], clustering="dyadic-conservative")
    n, k = design.shape
    bread = np.linalg.inv(design.T @ design)
    beta = bread @ design.T @ y
    scores = design * (y - design @ beta)[:, None]
    extra = bread @ (scores.T @ scores) @ bread * 10 / 9 * (n - 1) / (n - k)
    assert not conservative.psd_adjusted
    if not dyadic.psd_adjusted:
        np.testing.assert_allclose(conservative.cov, dyadic.cov + extra, rtol=1e-10)
    # Invariant to the order of the models (unlike the two-way estimator on unordered pairs).
    relabel = np.random.default_rng(0).permutation(10)
    swapped = np.sort(relabel[groups], axis=1)
    again = cluster_ols(y, design, swapped, ["a", "b", "c"], clustering="dyadic-conservative")
    np.testing.assert_allclose(again.se, conservative.se, rtol=1e-12)


def test_rank_deficient_design_names_the_term() -> None:
    y, design, groups = _pair_data(0)
    design = np.column_stack([design, 2 * design[:, 1]])
    with pytest.raises(ValueError, match="'x1_twice'"):
        cluster_ols(y, design, groups, ["intercept", "x1", "x2", "x1_twice"])


def test_pair_regression_is_symmetric_and_counts_exclusions() -> None:
    rng = np.random.default_rng(7)
    n = 9
    agreement = rng.uniform(0.2, 0.6, (n, n))
    agreement = (agreement + agreement.T) / 2
    agreement[0, 5] = agreement[5, 0] = np.nan  # no both-wrong item
    accuracy = rng.uniform(0.3, 0.9, n)
    provider = ["p", "p", "q", "q", "r", "r", "p", "q", None]
    family = ["f1", "f1", "f2", "f3", "f4", "f4", "f5", "f2", "f6"]
    names = [f"m{i}" for i in range(n)]
    design = pair_design(agreement, names, accuracy, provider, family)
    assert design.excluded_models == {"m8": "provider unknown"}
    assert design.n_excluded_no_both_wrong == 1
    assert design.agreement.size == 8 * 7 // 2 - 1
    # Reversing the model order changes no number of the fit (the terms are symmetric).
    order = np.arange(n)[::-1]
    reversed_design = pair_design(
        agreement[np.ix_(order, order)],
        [names[i] for i in order],
        accuracy[order],
        [provider[i] for i in order],
        [family[i] for i in order],
    )
    forward = pair_regression(design).fit
    backward = pair_regression(reversed_design).fit
    np.testing.assert_allclose(forward.coef, backward.coef, atol=1e-12)
    np.testing.assert_allclose(forward.se, backward.se, atol=1e-12)
    # acc_mean and acc_product are the symmetric functions of the z-scores.
    z = (accuracy[:8] - accuracy[:8].mean()) / accuracy[:8].std(ddof=1)
    row = int(np.flatnonzero((design.first == 1) & (design.second == 3))[0])
    terms = list(design.terms)
    assert design.design[row, terms.index("acc_mean")] == pytest.approx((z[1] + z[3]) / 2)
    assert design.design[row, terms.index("acc_product")] == pytest.approx(z[1] * z[3])
    assert design.design[row, terms.index("same_provider")] == 0
    assert (
        design.design[
            int(np.flatnonzero((design.first == 2) & (design.second == 7))[0]),
            terms.index("same_family"),
        ]
        == 1
    )


def test_constant_term_is_dropped_with_reason() -> None:
    n = 5
    agreement = np.full((n, n), 0.4) + np.arange(n)[:, None] * 0.01 + np.arange(n)[None] * 0.01
    design = pair_design(agreement, list("abcde"), [0.1, 0.2, 0.3, 0.4, 0.5], ["x"] * n, [None] * n)
    assert "same_provider" in design.dropped_terms
    assert "same_family" in design.dropped_terms
    assert design.terms == ("intercept", "acc_mean", "acc_product")
    assert design.formula == "agreement ~ acc_mean + acc_product"
