"""Systemic exclusion, greedy subsets, effective judges, similarity by accuracy bin, inflation:
hand-worked examples, direct counts and numpy eigenvalues as references."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from auditor.stats.inflation import judge_inflation
from auditor.stats.monoculture import (
    effective_judges,
    greedy_subsets,
    joint_failure,
    similarity_by_accuracy_bin,
)


def test_joint_failure_hand_worked() -> None:
    fail = np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)
    result = joint_failure(fail, n_bootstrap=0)
    assert (result.n_all_fail, result.observed, result.baseline, result.ratio) == (
        1,
        0.25,
        0.25,
        1.0,
    )
    fail = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1], [1, 0, 1, 0, 0, 1]], dtype=bool)
    result = joint_failure(fail, n_bootstrap=0)
    # Item 0 is failed by all three; rates 1/2 each: baseline 1/8, observed 1/6, ratio 4/3.
    assert result.n_all_fail == 1
    assert result.baseline == pytest.approx(1 / 8)
    assert result.ratio == pytest.approx(4 / 3)


def test_joint_failure_bootstrap_ci_brackets_a_correlated_panel() -> None:
    rng = np.random.default_rng(0)
    shared = rng.random(3000) < 0.3
    fail = shared[None, :] | (rng.random((3, 3000)) < 0.1)
    result = joint_failure(fail, np.random.default_rng(1), n_bootstrap=500)
    assert result.ratio is not None and result.ci95 is not None
    assert result.ci95[0] < result.ratio < result.ci95[1]
    assert result.ci95[0] > 1.5  # shared failures: far above the independent baseline
    again = joint_failure(fail, np.random.default_rng(1), n_bootstrap=500)
    assert again.ci95 == result.ci95


def test_joint_failure_bootstrap_equals_gathered_resamples() -> None:
    """Reference: each resample gathered from the documented draw (the units of
    ``rng.integers(0, n, (size, n))`` in chunks of `BOOTSTRAP_CHUNK`), its all-fail share over
    the product of the members' shares, quantiles of the finite ratios."""
    from auditor.stats.monoculture import BOOTSTRAP_CHUNK

    rng = np.random.default_rng(5)
    latent = rng.random(300)
    fail = latent[None, :] * rng.uniform(0.5, 1.5, (6, 1)) + rng.random((6, 300)) > 0.8
    n_bootstrap = 2 * BOOTSTRAP_CHUNK + 17
    result = joint_failure(fail, np.random.default_rng(9), n_bootstrap=n_bootstrap)
    draws = np.random.default_rng(9)
    ratios = []
    for start in range(0, n_bootstrap, BOOTSTRAP_CHUNK):
        size = min(BOOTSTRAP_CHUNK, n_bootstrap - start)
        for units in draws.integers(0, 300, size=(size, 300)):
            sample = fail[:, units]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append(sample.all(axis=0).mean() / np.prod(sample.mean(axis=1)))
    values = np.array(ratios)
    expected = np.quantile(values[np.isfinite(values)], [0.025, 0.975])
    assert result.ci95 is not None
    np.testing.assert_allclose(result.ci95, expected, rtol=1e-12)


def test_joint_failure_undefined_when_a_member_never_fails() -> None:
    result = joint_failure(np.array([[1, 0], [0, 0]]), n_bootstrap=0)
    assert result.ratio is None and result.baseline == 0


def _exhaustive(fail: np.ndarray, k: int, most: bool) -> float:
    rates = fail.mean(axis=1)
    values = [
        fail[list(s)].all(axis=0).mean() / np.prod(rates[list(s)])
        for s in combinations(range(len(fail)), k)
    ]
    return max(values) if most else min(values)


def test_greedy_subsets_start_at_the_extreme_pair_and_count_directly() -> None:
    rng = np.random.default_rng(3)
    latent = rng.random(400)
    fail = latent[None, :] * rng.uniform(0, 1.5, (7, 1)) + rng.random((7, 400)) > 0.9
    for most in (True, False):
        steps = greedy_subsets(fail, most=most)
        assert [s.k for s in steps] == list(range(2, 8))
        assert steps[0].ratio == pytest.approx(_exhaustive(fail, 2, most))
        for step in steps:
            members = list(step.members)
            assert step.observed == fail[members].all(axis=0).mean()
            assert step.baseline == pytest.approx(np.prod(fail[members].mean(axis=1)))
    top = greedy_subsets(fail, most=True)
    low = greedy_subsets(fail, most=False)
    assert all((a.ratio or 0) >= (b.ratio or 0) for a, b in zip(top[:-1], low[:-1], strict=True))


def test_effective_judges_equals_participation_ratio_of_eigenvalues() -> None:
    rng = np.random.default_rng(4)
    common = rng.random(2000) < 0.4
    fail = np.where(rng.random((5, 2000)) < 0.6, common, rng.random((5, 2000)) < 0.4)
    result = effective_judges(fail, np.random.default_rng(0), n_bootstrap=200)
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(fail.astype(float)))
    assert result.n_eff == pytest.approx(eigenvalues.sum() ** 2 / (eigenvalues**2).sum(), rel=1e-12)
    assert 1 < result.n_eff < 5
    assert result.ci95 is not None and result.ci95[0] < result.n_eff < result.ci95[1]


def test_effective_judges_limits_and_constant_members() -> None:
    fail = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    result = effective_judges(fail, n_bootstrap=0)
    assert result.n_eff == pytest.approx(2.0) and result.excluded == (2,)
    same = effective_judges(np.array([[1, 0, 1, 0], [1, 0, 1, 0]]), n_bootstrap=0)
    assert same.n_eff == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 members"):
        effective_judges(np.array([[1, 0], [0, 0]]), n_bootstrap=0)


def test_similarity_by_accuracy_bin_direct_mean() -> None:
    accuracy = np.array([0.1, 0.15, 0.5, 0.9, 0.95, 0.92])
    similarity = np.arange(36, dtype=float).reshape(6, 6)
    similarity = (similarity + similarity.T) / 2
    bins = similarity_by_accuracy_bin(similarity, accuracy, n_bins=2)
    assert [b.n_models for b in bins] == [3, 3]
    assert bins[0].mean_similarity == pytest.approx(
        np.mean([similarity[0, 1], similarity[0, 2], similarity[1, 2]])
    )
    assert bins[1].mean_similarity == pytest.approx(
        np.mean([similarity[3, 4], similarity[3, 5], similarity[4, 5]])
    )


def test_judge_inflation_hand_worked() -> None:
    result = judge_inflation(
        np.array([0.9, 0.8, 0.5, 0.4]),
        np.array([0.6, 0.6, 0.5, 0.4]),
        np.array([True, True, False, False]),
        np.random.default_rng(0),
        n_bootstrap=100,
        n_permutations=999,
    )
    assert (result.mean_same, result.mean_other) == (pytest.approx(0.25), pytest.approx(0.0))
    assert result.difference == pytest.approx(0.25)
    # Of the 6 labelings of 2 of 4 candidates, two reach |d| = 0.25 (the observed one and its
    # mirror image; the other four give |d| = 0.05): the exact permutation p is 2/6.
    assert result.p_value == pytest.approx(2 / 6, abs=0.05)
    assert result.interaction is None  # accuracies do not vary within the same-provider group


def test_judge_inflation_without_same_provider_candidates_says_why() -> None:
    result = judge_inflation(
        np.array([0.5, 0.6]),
        np.array([0.5, 0.5]),
        np.array([False, False]),
        np.random.default_rng(0),
    )
    assert result.difference is None and result.reason == "no same-provider candidate with a score"


def test_effective_judges_resamples_equal_a_replicated_unit_reference() -> None:
    """Each resample (a weighting of per-item sufficient statistics) equals the correlation of
    the units replicated by their item's draw count, computed directly."""
    from auditor.stats.monoculture import _cluster_moments, _resampled_ratios

    rng = np.random.default_rng(4)
    common = rng.random(2000) < 0.4
    fail = np.where(rng.random((5, 2000)) < 0.6, common, rng.random((5, 2000)) < 0.4).astype(float)
    clusters = np.repeat(np.arange(500), 4)
    weights = rng.multinomial(500, np.full(500, 1 / 500), size=3).astype(float)
    ratios = _resampled_ratios(_cluster_moments(fail, clusters, 500), weights, 5)
    for b in range(3):
        replicated = np.repeat(fail, weights[b][clusters].astype(int), axis=1)
        correlation = np.corrcoef(replicated)
        assert ratios[b] == pytest.approx(25 / np.sum(correlation**2), rel=1e-12)
