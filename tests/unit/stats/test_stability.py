"""Template stability against statsmodels' Cochran's Q and a hand-worked example."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import cochrans_q

from auditor.stats.stability import template_stability


@pytest.mark.parametrize(("seed", "k"), [(0, 2), (1, 3), (2, 4), (3, 5)])
def test_cochrans_q_equals_statsmodels(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    table = (rng.random((60, k)) < np.linspace(0.4, 0.7, k)).astype(int)
    reference = cochrans_q(table)
    got = template_stability(table)
    assert got.q == pytest.approx(reference.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    flips = np.count_nonzero(table.min(axis=1) != table.max(axis=1))
    assert got.flips == flips and got.flip_share == flips / 60
    assert got.rate_sd == pytest.approx(np.std(table.mean(axis=0), ddof=1))


def test_hand_worked_and_undefined() -> None:
    # Q = (2 - 1)(2 (9 + 1) - 16) / (2 * 4 - (4 + 1 + 1 + 0)) = 4 / 2 = 2
    got = template_stability([[1, 1], [1, 0], [1, 0], [0, 0]])
    assert (got.flip_share, got.q, got.rates) == (0.5, 2.0, (0.75, 0.25))
    stable = template_stability([[1, 1], [0, 0]])
    assert stable.q is None and stable.reason == "no unit flips" and stable.flip_share == 0.0
    with pytest.raises(ValueError, match="at least two templates"):
        template_stability([[1], [0]])
    with pytest.raises(ValueError, match="only 0 and 1"):
        template_stability([[1, 2]])
