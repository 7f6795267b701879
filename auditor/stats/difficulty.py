"""Statistics of outcomes over item difficulty (Zhou et al., Nature 2024, "Larger and more
instructable language models become less reliable").

- Quantile bins: ``n_bins`` bins of (nearly) equal size by the empirical quantiles of the
  difficulty (numpy's linear interpolation), right-closed ``(e_{k-1}, e_k]`` with the lowest
  value in bin 0; repeated edges are dropped, so ties never split and fewer bins may result.
  Equals ``pandas.qcut(values, n_bins, labels=False, duplicates="drop")``.
- Kendall's τ-b between two variables with its two-sided p-value (scipy's
  ``kendalltau``, asymptotic with ties): here between an item's difficulty and whether a
  model's answer to it was incorrect (concordance: τ > 0 means errors concentrate on hard items).
- Cochran–Armitage test for a trend in proportions over ordered groups (Armitage 1955;
  Agresti 2013 §5.3.5): with r_i successes of n_i in group i with score s_i, N = Σn_i,
  p̄ = Σr_i / N, T = Σ s_i (r_i − n_i p̄),
  Var(T) = p̄(1 − p̄) [Σ n_i s_i² − (Σ n_i s_i)² / N], z = T / sqrt(Var(T)), p = 2(1 − Φ(|z|)).
  It equals the linear-by-linear association z of statsmodels'
  ``Table.test_ordinal_association`` times sqrt(N / (N − 1)).

Example: ``quantile_bins([0.1, 0.5, 0.2, 0.9], 2)`` → ``[0, 1, 0, 1]``;
``cochran_armitage_trend([8, 5, 2], [10, 10, 10]).z`` ≈ −2.68 (falls over the groups).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from auditor.stats.distributions import norm_sf
from auditor.stats.distributions import scipy_stats as _scipy_stats

__all__ = [
    "DEFAULT_BINS",
    "KendallTau",
    "Trend",
    "cochran_armitage_trend",
    "kendall_tau",
    "quantile_bins",
]

DEFAULT_BINS: Final = 5
"""Number of difficulty bins by default (quintiles)."""


def _finite_vector(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = float(array[~np.isfinite(array)][0])
        raise ValueError(f"{name} must be finite numbers; got {bad!r}")
    return array


def quantile_bins(values: Sequence[float] | np.ndarray, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Bin index (0 = lowest values) of every value, by quantiles; see the module docstring.

    >>> quantile_bins([0.1, 0.5, 0.2, 0.9], 2).tolist()
    [0, 1, 0, 1]
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins!r}")
    array = _finite_vector(values, "values")
    if array.size == 0:
        raise ValueError("values must not be empty")
    edges = np.unique(np.quantile(array, np.linspace(0.0, 1.0, int(n_bins) + 1)))
    # Right-closed bins: a value equal to an inner edge belongs to the bin below it.
    bins = np.searchsorted(edges[1:-1], array, side="left")
    # Interpolation can split a repeated value into two edges a rounding error apart, leaving
    # an empty bin between them (pandas.qcut keeps its number): renumber the bins that hold
    # values as 0, 1, 2, ...
    return np.unique(bins, return_inverse=True)[1].astype(np.int64)


@dataclass(frozen=True)
class KendallTau:
    """Kendall's τ-b and its two-sided p-value; ``tau`` is None when undefined (a constant
    variable or fewer than two observations), with the reason."""

    tau: float | None
    p_value: float | None
    n: int
    reason: str | None = None


def kendall_tau(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> KendallTau:
    """Kendall's τ-b of ``x`` and ``y`` (scipy.stats.kendalltau, two-sided, asymptotic p with
    ties).

    >>> round(kendall_tau([1, 2, 3, 4], [0, 0, 1, 1]).tau, 3)
    0.816
    """
    a = _finite_vector(x, "x")
    b = _finite_vector(y, "y")
    if a.size != b.size:
        raise ValueError(f"x and y must have the same length; got {a.size} and {b.size}")
    if a.size < 2:
        return KendallTau(None, None, int(a.size), "fewer than two observations")
    if np.all(a == a[0]) or np.all(b == b[0]):
        which = "x" if np.all(a == a[0]) else "y"
        return KendallTau(None, None, int(a.size), f"{which} is constant")
    result = _scipy_stats.kendalltau(a, b)
    return KendallTau(float(result.statistic), float(result.pvalue), int(a.size))


@dataclass(frozen=True)
class Trend:
    """Cochran–Armitage trend of a proportion over ordered groups. ``z`` > 0: the proportion
    rises with the score. ``z`` and ``p_value`` are None when undefined (every outcome equal,
    or fewer than two non-empty groups), with the reason."""

    z: float | None
    p_value: float | None
    n: int
    reason: str | None = None


def cochran_armitage_trend(
    successes: Sequence[int] | np.ndarray,
    trials: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray | None = None,
) -> Trend:
    """Two-sided Cochran–Armitage test of a linear trend in r_i / n_i over scores s_i
    (default 0, 1, 2, ...); empty groups carry no weight.

    >>> round(cochran_armitage_trend([8, 5, 2], [10, 10, 10]).z, 3)
    -2.683
    """
    r = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if r.ndim != 1 or n.shape != r.shape:
        raise ValueError(
            f"successes and trials must be vectors of one length; got {r.shape} and {n.shape}"
        )
    if np.any(n < 0) or np.any(r < 0) or np.any(r > n):
        raise ValueError(
            f"successes must be between 0 and trials; got {r.tolist()} of {n.tolist()}"
        )
    s = np.arange(r.size, dtype=np.float64) if scores is None else _finite_vector(scores, "scores")
    if s.shape != r.shape:
        raise ValueError(f"scores must have one value per group; got {s.size} for {r.size}")
    total = float(n.sum())
    if np.count_nonzero(n) < 2:
        return Trend(None, None, int(total), "fewer than two non-empty groups")
    p_bar = float(r.sum()) / total
    if p_bar in (0.0, 1.0):
        return Trend(None, None, int(total), "every outcome is the same")
    statistic = float(np.sum(s * (r - n * p_bar)))
    variance = p_bar * (1 - p_bar) * (float(np.sum(n * s * s)) - float(np.sum(n * s)) ** 2 / total)
    if variance <= 0:
        return Trend(None, None, int(total), "every non-empty group has the same score")
    z = statistic / math.sqrt(variance)
    return Trend(z, float(2 * norm_sf(abs(z))), int(total))
