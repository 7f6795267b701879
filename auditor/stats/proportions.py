"""Confidence intervals and tests for proportions and their differences.

- Wilson score interval (Wilson 1927): for k successes in n trials, z = Φ⁻¹(1 − α/2),
  centre = (p̂ + z²/2n) / (1 + z²/n), half-width = z·sqrt(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n).
  Equals ``statsmodels.stats.proportion.proportion_confint(k, n, method="wilson")``.
- Clopper–Pearson exact interval (1934): the α/2 and 1 − α/2 quantiles of
  Beta(k, n − k + 1) and Beta(k + 1, n − k); 0 and 1 at the edges. Equals statsmodels'
  ``method="beta"``.
- Newcombe's hybrid score interval for a difference of two independent proportions
  (Newcombe 1998, method 10): with Wilson limits (l1, u1), (l2, u2) of p̂1, p̂2,
  d = p̂1 − p̂2, lower = d − sqrt((p̂1 − l1)² + (u2 − p̂2)²),
  upper = d + sqrt((u1 − p̂1)² + (p̂2 − l2)²).

Example: ``wilson_interval(8, 10)`` ≈ (0.490, 0.943); ``clopper_pearson_interval(8, 10)`` ≈
(0.444, 0.975); ``newcombe_difference(56, 70, 48, 80)`` ≈ (0.0524, 0.3339) around 0.2
(Newcombe 1998, Table II, example (a)).
"""

from __future__ import annotations

import functools
import math

from auditor.stats.distributions import norm_ppf
from auditor.stats.distributions import scipy_stats as _scipy_stats

__all__ = ["clopper_pearson_interval", "newcombe_difference", "wilson_interval"]


def _check_counts(successes: int, trials: int, name: str = "successes") -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"{name} must be between 0 and trials; got {successes} of {trials}")


@functools.lru_cache(maxsize=64)  # norm.ppf costs ~0.7 ms; probes ask for thousands of CIs
def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1; got {alpha}")
    return float(norm_ppf(1 - alpha / 2))


def wilson_interval(successes: int, trials: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion; (nan, nan) is never returned: n = 0 raises."""
    _check_counts(successes, trials)
    if trials == 0:
        raise ValueError("trials must be positive for an interval; got 0")
    z = _z(alpha)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # At k = 0 (k = n) the bound is exactly 0 (1); rounding left ~1e-17 on the wrong side of
    # the estimate. The interval always contains p: clamp to it, not only to [0, 1].
    lower = 0.0 if successes == 0 else min(p, centre - half)
    upper = 1.0 if successes == trials else max(p, centre + half)
    return max(0.0, lower), min(1.0, upper)


def clopper_pearson_interval(
    successes: int, trials: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval of a proportion from Beta quantiles."""
    _check_counts(successes, trials)
    if trials == 0:
        raise ValueError("trials must be positive for an interval; got 0")
    _z(alpha)
    beta = _scipy_stats.beta
    n, k = trials, successes
    lower = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    upper = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lower, upper


def newcombe_difference(
    successes_1: int, trials_1: int, successes_2: int, trials_2: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe hybrid score interval of p1 − p2 for two independent proportions."""
    _check_counts(successes_1, trials_1, "successes_1")
    _check_counts(successes_2, trials_2, "successes_2")
    p1, p2 = successes_1 / trials_1, successes_2 / trials_2
    l1, u1 = wilson_interval(successes_1, trials_1, alpha)
    l2, u2 = wilson_interval(successes_2, trials_2, alpha)
    difference = p1 - p2
    lower = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, lower), min(1.0, upper)
