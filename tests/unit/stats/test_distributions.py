"""`auditor.stats.distributions` against `scipy.stats` itself: the same values to the last bit
(they call the same special functions), bounds and nan included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from auditor.stats.distributions import (
    chi2_sf,
    norm_cdf,
    norm_ppf,
    norm_sf,
    scipy_stats,
    t_ppf,
    t_sf,
)

RNG = np.random.default_rng(20261207)
X = np.concatenate([RNG.normal(0.0, 4.0, 4000), [0.0, -0.0, 1e-300, 40.0, -40.0, np.inf, -np.inf]])
DF = np.concatenate([RNG.uniform(0.5, 500.0, 4000), [1.0, 2.0, 3.0, 4.0, 5.0, 30.0, 1e6]])
Q = np.concatenate([RNG.uniform(0.0, 1.0, 4000), [0.0, 1.0, 0.5, 1e-300, 1 - 1e-16, 0.975, 0.025]])


def same(got: object, expected: object) -> bool:
    got, expected = np.asarray(got), np.asarray(expected)
    equal = (got == expected) | (np.isnan(got) & np.isnan(expected))
    return got.shape == expected.shape and bool(equal.all())


def test_arrays_equal_scipy_stats_to_the_last_bit() -> None:
    assert same(t_sf(X, DF), stats.t.sf(X, DF))
    assert same(t_ppf(Q, DF), stats.t.ppf(Q, DF))
    assert same(norm_sf(X), stats.norm.sf(X))
    assert same(norm_cdf(X), stats.norm.cdf(X))
    assert same(norm_ppf(Q), stats.norm.ppf(Q))
    for df in (1, 2, 7):
        assert same(chi2_sf(np.abs(X), df), stats.chi2.sf(np.abs(X), df))


@pytest.mark.parametrize("q", [0.0, 1.0, -0.5, 1.5, np.nan])
def test_t_quantile_bounds_as_scipy_stats(q: float) -> None:
    # stdtrit alone answers +inf at q = 0; scipy.stats (and t_ppf) -inf.
    assert same(t_ppf(q, 5.0), stats.t.ppf(q, 5.0))


def test_scalars_come_back_as_numpy_floats_like_scipy_stats() -> None:
    for ours, theirs in (
        (t_sf(2.0, 10), stats.t.sf(2.0, 10)),
        (t_ppf(0.975, 10), stats.t.ppf(0.975, 10)),
        (norm_ppf(0.975), stats.norm.ppf(0.975)),
        (chi2_sf(3.2, 1), stats.chi2.sf(3.2, 1)),
    ):
        assert type(ours) is type(theirs) and ours == theirs
    assert round(float(t_sf(2.0, 10)), 6) == 0.036694  # tables: P(T_10 > 2) = 0.0367


def test_scipy_stats_on_first_use_is_scipy_stats() -> None:
    assert scipy_stats.binomtest is stats.binomtest
