"""`auditor.stats.meta`: fixed-effect Fisher-z pooling, hand-worked."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy import stats

from auditor.stats import meta
from auditor.stats.meta import fisher_combine


def test_docstring_example() -> None:
    assert doctest.testmod(meta).failed == 0


def test_fisher_combine_hand_worked() -> None:
    """Hand-worked fixed effect: weights n - 3 - 1 = (34, 34, 35)."""
    r, n = [0.35, 0.65, 0.5], [38, 38, 39]
    w = np.array([34.0, 34.0, 35.0])
    z_bar = float(np.sum(w * np.arctanh(r)) / w.sum())
    se = 1 / math.sqrt(w.sum())
    pooled = fisher_combine(r, n, n_covariates=1)
    assert (pooled.n_used, pooled.n_left_out) == (3, 0)
    assert pooled.r == pytest.approx(math.tanh(z_bar), abs=1e-14)
    assert pooled.ci95 == pytest.approx(
        (math.tanh(z_bar - 1.959963985 * se), math.tanh(z_bar + 1.959963985 * se)), abs=1e-9
    )
    assert pooled.p_value == pytest.approx(2 * stats.norm.sf(z_bar / se), rel=1e-12)


def test_fisher_combine_degenerate_inputs() -> None:
    empty = fisher_combine([], [])
    assert (empty.n_used, empty.r, empty.ci95, empty.p_value) == (0, None, None, None)
    perfect = fisher_combine([1.0, -0.2], [20, 20], n_covariates=1)  # clipped, stays finite
    assert perfect.r is not None and 0.99 < perfect.r < 1.0 and perfect.p_value is not None
    tiny = fisher_combine(
        [0.9, 0.4], [4, 30], n_covariates=1
    )  # n = 4 carries no weight (n - 3 - 1 = 0)
    assert (tiny.n_used, tiny.n_left_out) == (1, 1)
    assert tiny.r == pytest.approx(0.4, abs=1e-12)
    with pytest.raises(ValueError, match=r"r\[0\]: must be in \[-1, 1\]"):
        fisher_combine([1.5], [10])
