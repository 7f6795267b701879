"""Stratified comparison of two groups' positive rates: Mantel–Haenszel difference and CMH test.

Each stratum k is a 2×2 table [[a, b], [c, d]]: row 0 the index group (e.g. a judge's own
candidates), row 1 the reference group (the others); column 0 positive (judged correct),
column 1 negative. n1 = a + b, n0 = c + d, N = n1 + n0.

- Mantel–Haenszel risk difference (Greenland & Robins 1985):
  RD = Σ (a·n0 − c·n1)/N  /  Σ n1·n0/N, with variance
  Var = Σ (a·b·n0³ + c·d·n1³)/(n1·n0·N²)  /  (Σ n1·n0/N)²  (one stratum: p1q1/n1 + p0q0/n0).
  Strata with an empty row carry no information and are skipped.
- Cochran–Mantel–Haenszel test of a common odds ratio of 1:
  χ² = (|Σ a − Σ E[a]| − c)² / Σ Var[a] with E[a] = n1·m1/N, Var[a] = n1·n0·m1·m0/(N²(N − 1)),
  m1 = a + c, m0 = b + d, c = 0.5 with continuity correction; one degree of freedom. Equals
  ``statsmodels.stats.contingency_tables.StratifiedTable.test_null_odds``.

Example: one stratum [[8, 2], [5, 5]]: RD = 0.8 − 0.5 = 0.3, Var = 0.016 + 0.025 = 0.041.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.stats.distributions import chi2_sf, norm_ppf

__all__ = ["CmhTest", "RiskDifference", "cmh_test", "mantel_haenszel_difference"]


@dataclass(frozen=True)
class RiskDifference:
    """A Mantel–Haenszel pooled risk difference with its Wald interval."""

    estimate: float
    std_error: float
    ci95: tuple[float, float]
    strata: int
    """Strata that contributed (both rows non-empty)."""


@dataclass(frozen=True)
class CmhTest:
    """Cochran–Mantel–Haenszel chi-square test of a common odds ratio of one."""

    statistic: float
    p_value: float


def _tables(tables: Any) -> np.ndarray:
    array = np.asarray(tables, dtype=float)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (2, 2):
        raise ValueError(f"tables: must have shape (K, 2, 2); got {array.shape}")
    if (array < 0).any() or not np.isfinite(array).all():
        raise ValueError("tables: counts must be finite and non-negative")
    return array


def _informative(array: np.ndarray) -> np.ndarray:
    rows = array.sum(axis=2)
    return array[(rows[:, 0] > 0) & (rows[:, 1] > 0)]


def mantel_haenszel_difference(tables: Any, alpha: float = 0.05) -> RiskDifference:
    """Pooled difference of positive rates (row 0 minus row 1) over strata; see module doc."""
    array = _informative(_tables(tables))
    if array.shape[0] == 0:
        raise ValueError("tables: no stratum holds both groups; the difference is undefined")
    a, b, c, d = array[:, 0, 0], array[:, 0, 1], array[:, 1, 0], array[:, 1, 1]
    n1, n0 = a + b, c + d
    total = n1 + n0
    weight = float((n1 * n0 / total).sum())
    estimate = float(((a * n0 - c * n1) / total).sum()) / weight
    variance = float(((a * b * n0**3 + c * d * n1**3) / (n1 * n0 * total**2)).sum()) / weight**2
    se = math.sqrt(variance)
    z = float(norm_ppf(1 - alpha / 2))
    return RiskDifference(
        estimate=estimate,
        std_error=se,
        ci95=(max(-1.0, estimate - z * se), min(1.0, estimate + z * se)),
        strata=int(array.shape[0]),
    )


def cmh_test(tables: Any, correction: bool = False) -> CmhTest:
    """CMH test over strata (strata with fewer than 2 units or an empty row are skipped)."""
    array = _informative(_tables(tables))
    array = array[array.sum(axis=(1, 2)) > 1]
    if array.shape[0] == 0:
        raise ValueError("tables: no stratum holds both groups; the test is undefined")
    a = array[:, 0, 0]
    n1, n0 = array[:, 0].sum(1), array[:, 1].sum(1)
    m1, m0 = array[:, :, 0].sum(1), array[:, :, 1].sum(1)
    total = n1 + n0
    expected = float((n1 * m1 / total).sum())
    variance = float((n1 * n0 * m1 * m0 / (total**2 * (total - 1))).sum())
    if variance <= 0:
        raise ValueError("tables: every stratum has a constant outcome; the test is undefined")
    deviation = abs(float(a.sum()) - expected) - (0.5 if correction else 0.0)
    statistic = deviation**2 / variance
    return CmhTest(statistic=statistic, p_value=float(chi2_sf(statistic, 1)))
