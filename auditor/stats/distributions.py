"""Normal, Student t and chi-square tail probabilities and quantiles, from `scipy.special`.

`scipy.stats` takes 0.3-1 s to import (its distributions, `scipy.optimize`, `scipy.spatial`,
docstring parsing), more than the analysis of a 100,000-output bundle spends on statistics.
These functions call the same special functions that `scipy.stats` calls for these
distributions with loc 0 and scale 1 (``t.sf(x, df) = stdtr(df, -x)``, ``t.ppf(q, df) =
stdtrit(df, q)``, ``norm.sf(x) = ndtr(-x)``, ``norm.cdf(x) = ndtr(x)``, ``norm.ppf(q) =
ndtri(q)``, ``chi2.sf(x, df) = chdtrc(df, x)``), so their values are the same to the last bit
(`tests/unit/stats/test_distributions.py` compares them with `scipy.stats` over a grid);
only `scipy.special` is imported.

`scipy_stats` is `scipy.stats` imported on first use, for the tests that need more (exact
binomial and Fisher tests, the beta quantiles of Clopper-Pearson, Kendall's tau): a command
whose analysis never runs one does not pay for the import.

>>> round(float(t_sf(2.0, 10)), 6)
0.036694
>>> round(float(norm_ppf(0.975)), 6)
1.959964
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

__all__ = ["chi2_sf", "norm_cdf", "norm_ppf", "norm_sf", "scipy_stats", "t_ppf", "t_sf"]


def norm_sf(x: Any) -> Any:
    """Upper tail of the standard normal, ``P(Z > x)`` (`scipy.stats.norm.sf`)."""
    return special.ndtr(-np.asarray(x, dtype=np.float64))


def norm_cdf(x: Any) -> Any:
    """``P(Z <= x)`` of the standard normal (`scipy.stats.norm.cdf`)."""
    return special.ndtr(np.asarray(x, dtype=np.float64))


def norm_ppf(q: Any) -> Any:
    """Quantile of the standard normal (`scipy.stats.norm.ppf`): -inf at 0, inf at 1."""
    return special.ndtri(np.asarray(q, dtype=np.float64))


def t_sf(x: Any, df: Any) -> Any:
    """Upper tail of Student's t with ``df`` degrees of freedom (`scipy.stats.t.sf`)."""
    return special.stdtr(df, -np.asarray(x, dtype=np.float64))


def t_ppf(q: Any, df: Any) -> Any:
    """Quantile of Student's t (`scipy.stats.t.ppf`): -inf at 0, inf at 1, nan outside [0, 1]
    (``stdtrit`` alone answers inf at 0; `scipy.stats` sets the bounds itself)."""
    q = np.asarray(q, dtype=np.float64)
    value = np.where(
        q == 0, -np.inf, np.where(q == 1, np.inf, special.stdtrit(df, np.clip(q, 0.0, 1.0)))
    )
    value = np.where((q < 0) | (q > 1) | np.isnan(q), np.nan, value)
    return value[()]


def chi2_sf(x: Any, df: Any) -> Any:
    """Upper tail of the chi-square distribution (`scipy.stats.chi2.sf`)."""
    return special.chdtrc(df, np.asarray(x, dtype=np.float64))


class _OnFirstUse:
    """`scipy.stats`, imported when one of its attributes is first read (start-up time)."""

    def __getattr__(self, name: str) -> Any:
        from scipy import stats

        return getattr(stats, name)


scipy_stats: Any = _OnFirstUse()
