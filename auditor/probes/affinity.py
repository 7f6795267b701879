"""Affinity bias of LLM judges: does a judge grade more kindly the candidates that think like it?

The protocol of Goel et al. (2025), "Great Models Think Alike and this Undermines AI Oversight",
arXiv 2502.04313, section "LLM-as-a-judge" (SCIENCE.md section 2). For a judge ``j`` and each
candidate ``c`` it has verdicts on::

    score(j, c)   = #"1" / (#"1" + #"0")     over j's verdicts on c's free-form answers
    capa(j, c)    = CAPA of j and c on the multiple-choice items (`auditor.stats.similarity`)
    accuracy(c)   = c's ground-truth multiple-choice accuracy

Null verdicts (unparseable judge output) are invalid: counted and reported, never part of a
score. Then, per judge over its candidates (self-pair, configured exclusions and pairs lacking
data left out, each with its reason):

- the partial correlation of score and CAPA controlling for accuracy,
  ``pingouin.partial_corr(x="score", y="capa", covar="accuracy")``: n, r, p, and its Fisher-z
  95% CI unrounded (pingouin displays it rounded to two decimals);
- the raw correlation of score and CAPA, and OLS ``score ~ const + capa + accuracy``;
- a percentile bootstrap CI of r (candidates resampled) and a Freedman-Lane permutation p;
- Holm and Benjamini-Hochberg adjusted p-values across the judges; a judge is flagged when its
  adjusted p is below alpha and its r exceeds ``min_effect``;
- a fixed-effect Fisher-z pooled r across judges.

Pure: no I/O. Randomness comes only from numpy Generators derived from ``settings.seed`` (one
independent stream per judge and per procedure, see `analyze`). pingouin, statsmodels and
scipy.stats are imported inside the functions that need them, so importing this module is fast.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, ClassVar, Literal, cast

import numpy as np
import pandas as pd

from auditor.probes.base import ProbeContext
from auditor.schemas.affinity import AffinityProbeResult
from auditor.schemas.bundle import Bundle, ResponseMatrix, Verdict, primary_view, response_matrix
from auditor.schemas.columns import BundleColumns, columns_sha256, response_matrix_from_columns
from auditor.schemas.probe import ProbeFinding, ProbeResult, multiple_testing
from auditor.schemas.result import (
    SOFTWARE_PACKAGES,
    AffinityReport,
    AnalysisSettings,
    Coverage,
    JudgeResult,
    ModelSummary,
    OLSFit,
    PairResult,
    PooledResult,
    Provenance,
)
from auditor.stats.multitest import adjust_p_values
from auditor.stats.similarity import SimilarityMatrix, capa_matrix

__all__ = [
    "AFFINITY",
    "COLLINEAR_TOLERANCE",
    "CONFIDENCE",
    "METHODS",
    "PROBE",
    "RESAMPLE_BLOCK_ROWS",
    "SOFTWARE_PACKAGES",
    "TIE_TOLERANCE",
    "AffinityProbe",
    "BootstrapResult",
    "Method",
    "PartialCorrelation",
    "PermutationResult",
    "adjust_p_values",
    "affinity_findings",
    "analyze",
    "analyze_affinity",
    "bootstrap_partial_r",
    "bundle_sha256",
    "fisher_ci",
    "fisher_combine",
    "judgment_scores",
    "model_accuracies",
    "ols_fit",
    "partial_correlation",
    "partial_r",
    "permutation_p",
]

Method = Literal["pearson", "spearman"]
METHODS: tuple[Method, ...] = ("pearson", "spearman")

CONFIDENCE = 0.95
"""Level of every confidence interval reported here."""

COLLINEAR_TOLERANCE = 1e-12
"""1 - r^2 at or below this (x or y perfectly explained by the covariate): partial r undefined."""

TIE_TOLERANCE = 1e-12
"""A permuted |r| counts as at least as extreme as the observed |r| within this much (the
identity permutation reproduces r only up to rounding; rank statistics tie exactly)."""

RESAMPLE_BLOCK_ROWS = 16_384
"""Resamples (or permutations) drawn and evaluated at once. Bounds memory; the draws do not
depend on it (a Generator yields the same stream in blocks as in one call)."""

_OLS_TERMS = ("intercept", "capa", "accuracy")
_N_COVARIATES = 1  # accuracy
_RESERVED_PROVENANCE = ("input_sha256", "created_at", "software")


# --- small result types of the building blocks ----------------------------------------------------


@dataclass(frozen=True)
class PartialCorrelation:
    """A partial correlation with its parametric inference (pingouin's conventions)."""

    n: int
    r: float
    ci95: tuple[float, float]
    p_value: float
    method: Method
    n_covariates: int


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Percentile bootstrap of a partial correlation; ``distribution`` holds the valid r's."""

    ci95: tuple[float, float] | None
    n_resamples: int
    n_degenerate: int
    distribution: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class PermutationResult:
    """Freedman-Lane permutation test of a partial correlation."""

    p_value: float | None
    r_observed: float
    n_permutations: int
    n_degenerate: int


# --- input checks ---------------------------------------------------------------------------------


def _check_method(method: str) -> Method:
    if method not in METHODS:
        raise ValueError(f"method: must be 'pearson' or 'spearman'; got {method!r}")
    return cast(Method, method)


def _vector(name: str, values: Any, n: int | None = None) -> np.ndarray:
    """``values`` as a finite float64 vector (of length ``n`` if given), else ValueError."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be numbers; got {values!r}") from None
    if array.ndim != 1:
        raise ValueError(f"{name}: must be one-dimensional; got shape {array.shape}")
    if n is not None and array.size != n:
        raise ValueError(f"{name}: has {array.size} values but x has {n}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name}[{int(bad[0])}]: must be finite; got {float(array[bad[0]])!r}")
    return array


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        shown = int(value) if isinstance(value, np.integer) else value
        raise ValueError(f"{name}: must be a non-negative integer; got {shown!r}")
    return int(value)


def _generator(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: must be a numpy.random.Generator; got {type(rng).__name__}")
    return rng


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank), as pandas/pingouin do."""
    from scipy.stats import rankdata

    return np.asarray(rankdata(values, axis=-1), dtype=np.float64)


# --- the partial correlation ----------------------------------------------------------------------


def _row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of (B, n) or (n,) arrays (matrix-vector products where possible)."""
    if b.ndim == 1:
        return a @ b
    if a.ndim == 1:
        return b @ a
    return np.einsum("ij,ij->i", a, b)


def _matrix_vector_products(matrix: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``matrix @ columns`` for a narrow ``columns`` (n, k), as k matrix-vector products.

    The same product: but a multithreaded BLAS can run a tall-and-narrow matrix product on a
    busy machine 10x slower than k matrix-vector products (measured with OpenBLAS, 2 cores).
    """
    return np.column_stack([matrix @ columns[:, k] for k in range(columns.shape[1])])


def _partial_r_from_sums(
    sxx: np.ndarray,
    syy: np.ndarray,
    szz: np.ndarray,
    sxy: np.ndarray,
    sxz: np.ndarray,
    syz: np.ndarray,
    constant: np.ndarray | bool,
) -> np.ndarray:
    """Partial correlation of x and y given z from centered sums of squares and products.

    Closed form for one covariate::

        r_xy.z = (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2) (1 - r_yz^2))

    NaN where ``constant`` or where x or y is perfectly explained by z
    (1 - r^2 <= `COLLINEAR_TOLERANCE`).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        r_xy = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
        r_xz = np.clip(sxz / np.sqrt(sxx * szz), -1.0, 1.0)
        r_yz = np.clip(syz / np.sqrt(syy * szz), -1.0, 1.0)
        rest_x, rest_y = 1.0 - r_xz**2, 1.0 - r_yz**2
        r = np.clip((r_xy - r_xz * r_yz) / np.sqrt(rest_x * rest_y), -1.0, 1.0)
    degenerate = constant | (rest_x <= COLLINEAR_TOLERANCE) | (rest_y <= COLLINEAR_TOLERANCE)
    return np.where(degenerate, np.nan, r)


def _partial_r_rows(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Row-wise partial correlation of x and y given z (NaN where undefined).

    Arrays are (B, n) or (n,) and broadcast against each other; rows are centered, then
    `_partial_r_from_sums`. A row is constant when its max equals its min, exactly (resampled
    values and ranks are copies, so this needs no tolerance).
    """
    constant: np.ndarray | bool = False
    centered = []
    for values in (x, y, z):
        constant = constant | (values.max(axis=-1) == values.min(axis=-1))
        centered.append(values - values.mean(axis=-1, keepdims=True))
    xc, yc, zc = centered
    return _partial_r_from_sums(
        _row_dot(xc, xc),
        _row_dot(yc, yc),
        _row_dot(zc, zc),
        _row_dot(xc, yc),
        _row_dot(xc, zc),
        _row_dot(yc, zc),
        constant,
    )


def partial_r(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, method: str = "pearson"
) -> np.ndarray | float:
    """Partial correlation of x and y given z along the last axis (NaN where undefined)::

        r_xy.z = (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2) (1 - r_yz^2))

    The vectorized closed form behind the bootstrap, for callers that need r alone (drift
    compares runs with it). ``spearman`` ranks each row first (average ranks for ties).
    Undefined when a variable is constant or x or y is collinear with z
    (1 - r^2 <= `COLLINEAR_TOLERANCE`).

    >>> round(float(partial_r(np.array([1., 2, 4, 3, 5]), np.array([2., 1, 4, 5, 6]),
    ...                       np.array([1., 3, 2, 5, 4]))), 4)
    0.7778
    """
    if method not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}; got {method!r}")
    arrays = [np.asarray(v, dtype=np.float64) for v in (x, y, z)]
    if method == "spearman":
        arrays = [_ranks(v) for v in arrays]
    result = np.asarray(_partial_r_rows(*arrays))
    return float(result) if result.ndim == 0 else result


def _tied_value_indicator(*variables: np.ndarray) -> np.ndarray:
    """(n, g) 0/1 matrix with one column per value that two or more observations share (in any
    of the variables). A variable is constant in a resample when one of its values is drawn n
    times: either one observation drawn n times (the largest count is n), or a shared value
    whose column, multiplied by the draw counts, reaches n. Usually there are few or no ties."""
    columns = []
    for values in variables:
        _, group, size = np.unique(values, return_inverse=True, return_counts=True)
        for k in np.flatnonzero(size > 1):
            columns.append(group == k)
    n = variables[0].size
    return np.column_stack(columns).astype(np.float64) if columns else np.zeros((n, 0))


def _bootstrap_pearson(
    index: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, indicator: np.ndarray
) -> np.ndarray:
    """Partial r of each resample (rows of ``index``) from its draw counts, without gathering.

    With c_bj = how often resample b drew observation j, every sum over the resample is
    sum_j c_bj f(x_j, y_j, z_j): one (B, n) x (n, 9) matrix product gives them all. Values are
    centered at the full-sample means first, so the one-pass sums lose no precision.
    """
    rows, n = index.shape
    flat = (np.arange(rows, dtype=np.int64)[:, None] * n + index).ravel()
    counts = np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)
    xc, yc, zc = x - x.mean(), y - y.mean(), z - z.mean()
    terms = np.column_stack([xc, yc, zc, xc * xc, yc * yc, zc * zc, xc * yc, xc * zc, yc * zc])
    sums = _matrix_vector_products(counts, terms)
    sx, sy, sz = sums[:, 0], sums[:, 1], sums[:, 2]
    constant = counts.max(axis=1) == n
    if indicator.shape[1]:
        constant |= _matrix_vector_products(counts, indicator).max(axis=1) == n
    return _partial_r_from_sums(
        sums[:, 3] - sx * sx / n,
        sums[:, 4] - sy * sy / n,
        sums[:, 5] - sz * sz / n,
        sums[:, 6] - sx * sy / n,
        sums[:, 7] - sx * sz / n,
        sums[:, 8] - sy * sz / n,
        constant,
    )


def fisher_ci(
    r: float, n: int, n_covariates: int = 0, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Fisher-z confidence interval of a (partial) correlation, unrounded.

    Method (pingouin.compute_esci with ``nx = n - k`` as pingouin.partial_corr calls it)::

        z = atanh(r),  se = 1 / sqrt(n - k - 3),  crit = |Phi^-1((1 - confidence) / 2)|
        CI = tanh(z -+ crit * se)

    with ``k = n_covariates``. pingouin rounds this interval (to 6 decimals, then displays 2);
    this returns it unrounded. For |r| = 1 the interval is (r, r); when ``n - k <= 3`` the
    standard error is infinite and the interval is (-1, 1), as in pingouin.

    References: Fisher (1921), "On the probable error of a coefficient of correlation";
    https://en.wikipedia.org/wiki/Fisher_transformation ; pingouin.compute_esci.

    Example:

    >>> [round(v, 4) for v in fisher_ci(0.5, 30, n_covariates=1)]
    [0.1634, 0.7323]
    """
    if not -1.0 <= r <= 1.0 or math.isnan(r):
        raise ValueError(f"r: must be in [-1, 1]; got {float(r)!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1); got {confidence!r}")
    _count("n", n)
    _count("n_covariates", n_covariates)
    if abs(r) == 1.0:
        return (float(r), float(r))
    if n - n_covariates <= 3:
        return (-1.0, 1.0)
    from scipy.stats import norm

    # Same expression as pingouin, so the critical value matches to the last bit.
    crit = abs(float(norm.ppf((1 - confidence) / 2)))
    z = math.atanh(r)
    se = 1.0 / math.sqrt(n - n_covariates - 3)
    return (math.tanh(z - crit * se), math.tanh(z + crit * se))


def partial_correlation(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    covar: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    method: Method = "pearson",
) -> PartialCorrelation:
    """Partial correlation of x and y controlling for ``covar``, with p-value and Fisher-z CI.

    Method: regress x and y on [1, covar] by least squares and correlate the residuals (the
    regression definition of partial correlation). For ``spearman`` every variable is first
    replaced by its average ranks (ties share the mean rank), as pingouin.partial_corr does.
    With k covariates and n observations::

        t = r * sqrt((n - k - 2) / (1 - r^2)),   p = 2 * P(T_{n-k-2} > |t|)

    and the CI is `fisher_ci` with ``n_covariates = k``. Equals pingouin.partial_corr
    (inverse-covariance method) to ~1e-15 on r and p; the CI is not rounded.

    ``covar`` is one vector (n,) or a matrix (n, k). Raises ValueError for mismatched lengths,
    non-finite values, n < k + 3, or a constant variable or x/y fully explained by covar (r is
    then undefined).

    References: https://en.wikipedia.org/wiki/Partial_correlation ; Kim (2015), "ppcor: an R
    package for a fast calculation to semi-partial correlation coefficients", Commun Stat Appl
    Methods 22(6); pingouin.partial_corr.

    Example (pingouin style, rounded):

    >>> score = [0.62, 0.71, 0.55, 0.80, 0.66, 0.74, 0.58, 0.69, 0.77, 0.60]
    >>> capa = [0.21, 0.37, 0.14, 0.49, 0.33, 0.40, 0.18, 0.29, 0.45, 0.26]
    >>> accuracy = [0.58, 0.69, 0.52, 0.77, 0.61, 0.70, 0.57, 0.68, 0.71, 0.63]
    >>> pc = partial_correlation(score, capa, accuracy)
    >>> pc.n, round(pc.r, 3), [round(v, 2) for v in pc.ci95], round(pc.p_value, 3)
    (10, 0.733, [0.13, 0.94], 0.025)
    >>> round(partial_correlation(score, capa, accuracy, method="spearman").r, 3)
    0.66
    """
    method = _check_method(method)
    xv = _vector("x", x)
    n = xv.size
    yv = _vector("y", y, n)
    z = np.asarray(covar, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[0] != n:
        raise ValueError(f"covar: must have shape ({n},) or ({n}, k); got {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError("covar: must be finite")
    k = z.shape[1]
    if n < k + 3:
        raise ValueError(f"x: needs at least {k + 3} observations for {k} covariate(s); got {n}")
    if method == "spearman":
        xv, yv, z = _ranks(xv), _ranks(yv), _ranks(z.T).T
    for name, values in (("x", xv), ("y", yv), *((f"covar[:, {i}]", z[:, i]) for i in range(k))):
        if values.max() == values.min():
            raise ValueError(f"{name}: is constant; the partial correlation is undefined")
    design = np.column_stack([np.ones(n), z])
    residuals = []
    for name, values in (("x", xv), ("y", yv)):
        fitted = design @ np.linalg.lstsq(design, values, rcond=None)[0]
        residual = values - fitted
        centered = values - values.mean()
        if residual @ residual <= COLLINEAR_TOLERANCE * (centered @ centered):
            raise ValueError(
                f"{name}: is a linear function of covar; the partial correlation is undefined"
            )
        residuals.append(residual)
    ex, ey = residuals
    r = float(np.clip(ex @ ey / math.sqrt((ex @ ex) * (ey @ ey)), -1.0, 1.0))
    return PartialCorrelation(
        n=n,
        r=r,
        ci95=fisher_ci(r, n, n_covariates=k),
        p_value=_correlation_p(r, n, k),
        method=method,
        n_covariates=k,
    )


def _correlation_p(r: float, n: int, n_covariates: int) -> float:
    """Two-sided p of a (partial) correlation from Student's t with n - k - 2 dof (pingouin)."""
    from scipy.stats import t

    if np.isclose(r**2, 1.0):  # pingouin's guard: the p-value tends to 0
        return 0.0
    dof = n - n_covariates - 2
    statistic = r * math.sqrt(dof / (1.0 - r**2))
    return float(2.0 * t.sf(abs(statistic), dof))


# --- resampling -----------------------------------------------------------------------------------


def _resampling_inputs(
    x: Any, y: Any, z: Any, count_name: str, count: Any, rng: Any, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, np.random.Generator, Method]:
    xv = _vector("x", x)
    if xv.size < 3:
        raise ValueError(f"x: needs at least 3 observations; got {xv.size}")
    return (
        xv,
        _vector("y", y, xv.size),
        _vector("z", z, xv.size),
        _count(count_name, count),
        _generator(rng),
        _check_method(method),
    )


def _blocks(total: int) -> Iterable[int]:
    for start in range(0, total, RESAMPLE_BLOCK_ROWS):
        yield min(RESAMPLE_BLOCK_ROWS, total - start)


def bootstrap_partial_r(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    z: Sequence[float] | np.ndarray,
    n_resamples: int,
    rng: np.random.Generator,
    method: Method = "pearson",
) -> BootstrapResult:
    """Percentile bootstrap 95% CI of the partial correlation of x and y given z.

    Method: the n observations (candidates) are resampled with replacement ``n_resamples``
    times. The indices are ``rng.integers(0, n, size=(n_resamples, n))``, drawn in blocks of
    `RESAMPLE_BLOCK_ROWS` rows (the same stream as one call). Every resample is evaluated at
    once with the one-covariate closed form::

        r_xy.z = (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2) (1 - r_yz^2))

    For ``pearson`` the sums of squares and products of all resamples come from one matrix
    product: the (B, n) table of how often each observation was drawn times the (n, 9) table of
    the centered values and their products (no (B, n) copies of the data). For ``spearman``
    each resample is gathered and ranked within itself (``scipy.stats.rankdata(axis=1)``,
    average ranks for ties, as pingouin ranks with pandas), then correlated row by row.
    Degenerate resamples (a constant variable, or x or y collinear with z, e.g. only two
    distinct candidates drawn) have no r: they are dropped and counted in ``n_degenerate``. The
    CI is ``np.percentile(valid_r, [2.5, 97.5])`` (linear interpolation); None if no resample is
    valid or ``n_resamples`` is 0. Equals a loop of pingouin.partial_corr over the same indices.

    References: Efron & Tibshirani (1993), "An Introduction to the Bootstrap", ch. 13
    (percentile interval); pingouin.compute_bootci.

    Example:

    >>> score = [0.62, 0.71, 0.55, 0.80, 0.66, 0.74, 0.58, 0.69, 0.77, 0.60]
    >>> capa = [0.21, 0.37, 0.14, 0.49, 0.33, 0.40, 0.18, 0.29, 0.45, 0.26]
    >>> accuracy = [0.58, 0.69, 0.52, 0.77, 0.61, 0.70, 0.57, 0.68, 0.71, 0.63]
    >>> boot = bootstrap_partial_r(score, capa, accuracy, 2000, np.random.default_rng(0))
    >>> [round(v, 2) for v in boot.ci95], boot.n_degenerate
    ([0.5, 0.95], 0)
    """
    xv, yv, zv, total, generator, method = _resampling_inputs(
        x, y, z, "n_resamples", n_resamples, rng, method
    )
    n = xv.size
    indicator = _tied_value_indicator(xv, yv, zv) if method == "pearson" else None
    parts = []
    for rows in _blocks(total):
        index = generator.integers(0, n, size=(rows, n))
        if indicator is not None:
            parts.append(_bootstrap_pearson(index, xv, yv, zv, indicator))
        else:
            ranked = (_ranks(values[index]) for values in (xv, yv, zv))
            parts.append(_partial_r_rows(*ranked))
    r = np.concatenate(parts) if parts else np.empty(0)
    valid = r[~np.isnan(r)]
    ci = None
    if valid.size:
        low, high = np.percentile(valid, [2.5, 97.5])
        ci = (float(low), float(high))
    return BootstrapResult(
        ci95=ci, n_resamples=total, n_degenerate=int(r.size - valid.size), distribution=valid
    )


def permutation_p(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    z: Sequence[float] | np.ndarray,
    n_permutations: int,
    rng: np.random.Generator,
    method: Method = "pearson",
) -> PermutationResult:
    """Two-sided Freedman-Lane permutation p-value of the partial correlation of x and y given z.

    Method (Freedman & Lane 1983; Anderson & Legendre 1999; Winkler et al. 2014): fit the
    reduced model x ~ 1 + z by least squares, giving fitted values x_hat and residuals e. For
    each permutation pi, x* = x_hat + e[pi]; recompute the partial correlation of x* and y
    given z (the same closed form as `bootstrap_partial_r`). For ``pearson``, with centered
    f = x_hat and e, the sums involving x* are fixed parts plus e[pi] . (f, y, z): one matrix
    product for all permutations. For ``spearman`` x* is re-ranked within each permutation
    and y, z are ranked once. Then::

        p = (1 + #{ |r*| >= |r_obs| - TIE_TOLERANCE }) / (1 + P_valid)

    where r_obs is the same statistic on the data and P_valid the permutations with a defined
    r (degenerate ones are dropped and counted). The permutations are
    ``rng.permuted(np.tile(np.arange(n), (rows, 1)), axis=1)`` in blocks of
    `RESAMPLE_BLOCK_ROWS` rows. Counting the observed statistic (the "+1") keeps p > 0 and the
    test exact under exchangeability (Phipson & Smyth 2010). p is None when ``n_permutations``
    is 0. Raises ValueError when the observed partial r is undefined.

    References: Freedman & Lane (1983), J Bus Econ Stat 1(4); Anderson & Legendre (1999),
    J Stat Comput Simul 62; Winkler et al. (2014), NeuroImage 92; Phipson & Smyth (2010),
    Stat Appl Genet Mol Biol 9(1).

    Example:

    >>> score = [0.62, 0.71, 0.55, 0.80, 0.66, 0.74, 0.58, 0.69, 0.77, 0.60]
    >>> capa = [0.21, 0.37, 0.14, 0.49, 0.33, 0.40, 0.18, 0.29, 0.45, 0.26]
    >>> accuracy = [0.58, 0.69, 0.52, 0.77, 0.61, 0.70, 0.57, 0.68, 0.71, 0.63]
    >>> perm = permutation_p(score, capa, accuracy, 2000, np.random.default_rng(0))
    >>> round(perm.r_observed, 3), round(perm.p_value, 3)
    (0.733, 0.024)
    """
    xv, yv, zv, total, generator, method = _resampling_inputs(
        x, y, z, "n_permutations", n_permutations, rng, method
    )
    n = xv.size
    design = np.column_stack([np.ones(n), zv])
    fitted = design @ np.linalg.lstsq(design, xv, rcond=None)[0]
    residual = xv - fitted
    if method == "spearman":
        y_fixed, z_fixed = _ranks(yv), _ranks(zv)
        r_observed = float(_partial_r_rows(_ranks(xv), y_fixed, z_fixed))
    else:
        y_fixed, z_fixed = yv, zv
        r_observed = float(_partial_r_rows(xv, yv, zv))
    if math.isnan(r_observed):
        raise ValueError(
            "x, y, z: the observed partial correlation is undefined (a constant variable, or "
            "x or y collinear with z)"
        )
    # Pearson: x*_c = f_c + e_c[pi] (centered), so every sum involving x* is a fixed part plus
    # dot products of the permuted residuals with f_c, y_c and z_c: one matrix product.
    f_c, e_c = fitted - fitted.mean(), residual - residual.mean()
    y_c, z_c = yv - yv.mean(), zv - zv.mean()
    against = np.column_stack([f_c, y_c, z_c])
    s_ff, s_ee = f_c @ f_c, e_c @ e_c
    s_yy, s_zz, s_yz = y_c @ y_c, z_c @ z_c, y_c @ z_c
    extreme = valid = 0
    order = np.arange(n)
    for rows in _blocks(total):
        permutation = generator.permuted(np.tile(order, (rows, 1)), axis=1)
        if method == "spearman":
            r = _partial_r_rows(_ranks(fitted + residual[permutation]), y_fixed, z_fixed)
        else:
            cross = _matrix_vector_products(e_c[permutation], against)
            s_xx = s_ff + s_ee + 2.0 * cross[:, 0]
            r = _partial_r_from_sums(
                s_xx,
                s_yy,
                s_zz,
                (f_c @ y_c) + cross[:, 1],
                (f_c @ z_c) + cross[:, 2],
                s_yz,
                s_xx <= COLLINEAR_TOLERANCE * (s_ff + s_ee),
            )
        defined = r[~np.isnan(r)]
        valid += defined.size
        extreme += int(np.count_nonzero(np.abs(defined) >= abs(r_observed) - TIE_TOLERANCE))
    p_value = (1.0 + extreme) / (1.0 + valid) if total else None
    return PermutationResult(
        p_value=p_value,
        r_observed=r_observed,
        n_permutations=total,
        n_degenerate=total - valid,
    )


# --- regression, multiple testing, pooling --------------------------------------------------------


def ols_fit(
    score: Sequence[float] | np.ndarray,
    capa: Sequence[float] | np.ndarray,
    accuracy: Sequence[float] | np.ndarray,
) -> OLSFit:
    """Ordinary least squares ``score ~ const + capa + accuracy`` (statsmodels OLS).

    Method: beta = (X'X)^-1 X'y with X = [1, capa, accuracy]; standard errors
    sqrt(diag(s^2 (X'X)^-1)) with s^2 = RSS / (n - 3); two-sided t p-values with n - 3 dof;
    R^2 = 1 - RSS / TSS. Needs n >= 4.

    References: statsmodels.regression.linear_model.OLS; Greene, "Econometric Analysis", ch. 4.

    Example:

    >>> score = [0.62, 0.71, 0.55, 0.80, 0.66, 0.74, 0.58, 0.69, 0.77, 0.60]
    >>> capa = [0.21, 0.37, 0.14, 0.49, 0.33, 0.40, 0.18, 0.29, 0.45, 0.26]
    >>> accuracy = [0.58, 0.69, 0.52, 0.77, 0.61, 0.70, 0.57, 0.68, 0.71, 0.63]
    >>> fit = ols_fit(score, capa, accuracy)
    >>> {k: round(v, 3) for k, v in fit.coefficients.items()}, round(fit.r_squared, 3)
    ({'intercept': 0.288, 'capa': 0.475, 'accuracy': 0.364}, 0.958)
    """
    from statsmodels.regression.linear_model import OLS

    y = _vector("score", score)
    n = y.size
    if n < 4:
        raise ValueError(f"score: needs at least 4 observations for 3 coefficients; got {n}")
    design = np.column_stack(
        [np.ones(n), _vector("capa", capa, n), _vector("accuracy", accuracy, n)]
    )
    fit = OLS(y, design).fit()
    return OLSFit(
        coefficients=dict(zip(_OLS_TERMS, map(float, fit.params), strict=True)),
        std_errors=dict(zip(_OLS_TERMS, map(float, fit.bse), strict=True)),
        p_values=dict(zip(_OLS_TERMS, map(float, fit.pvalues), strict=True)),
        r_squared=float(fit.rsquared),
        n=n,
    )


def fisher_combine(
    r: Sequence[float] | np.ndarray,
    n: Sequence[int] | np.ndarray,
    n_covariates: int = _N_COVARIATES,
) -> PooledResult:
    """Fixed-effect Fisher-z combination of (partial) correlations.

    Method: z_i = atanh(r_i) with r_i clipped to +-(1 - 1e-15) so |r| = 1 stays finite;
    weights w_i = n_i - 3 - k (the inverse variance of z_i under pingouin's ``nx = n - k``
    convention, k = ``n_covariates``); estimates with w_i <= 0 carry no information and are
    left out (said in the note)::

        z_bar = sum w_i z_i / sum w_i,   se = 1 / sqrt(sum w_i)
        CI = tanh(z_bar -+ 1.959964 se),  p = 2 * (1 - Phi(|z_bar| / se))

    With no usable estimate, r, CI and p are None. The estimates are assumed independent;
    judges that share candidates are not, so the CI is optimistic (the note says so).

    References: Hedges & Olkin (1985), "Statistical Methods for Meta-Analysis", ch. 11;
    Borenstein et al. (2009), "Introduction to Meta-Analysis", ch. 6.

    Example:

    >>> pooled = fisher_combine([0.35, 0.65, 0.5], [38, 38, 39])
    >>> round(pooled.r, 3), [round(v, 3) for v in pooled.ci95], pooled.p_value < 1e-6
    (0.51, [0.354, 0.639], True)
    """
    rv = _vector("r", r)
    nv = _vector("n", n, rv.size)
    outside = np.flatnonzero(np.abs(rv) > 1)
    if outside.size:
        raise ValueError(f"r[{int(outside[0])}]: must be in [-1, 1]; got {float(rv[outside[0]])!r}")
    k = _count("n_covariates", n_covariates)
    weights = nv - 3 - k
    usable = weights > 0
    note = PooledResult.model_fields["note"].default
    if not usable.all():
        note += f" {int((~usable).sum())} estimate(s) with n <= {3 + k} were left out (no weight)."
    if not usable.any():
        return PooledResult(n_judges=0, note=note)
    from scipy.stats import norm

    z = np.arctanh(np.clip(rv[usable], -1 + 1e-15, 1 - 1e-15))
    w = weights[usable]
    z_bar = float(np.sum(w * z) / np.sum(w))
    se = 1.0 / math.sqrt(float(np.sum(w)))
    crit = float(norm.ppf(0.5 + CONFIDENCE / 2))
    return PooledResult(
        n_judges=int(usable.sum()),
        r=math.tanh(z_bar),
        ci95=(math.tanh(z_bar - crit * se), math.tanh(z_bar + crit * se)),
        p_value=float(2.0 * norm.sf(abs(z_bar) / se)),
        note=note,
    )


# --- from the bundle to per-pair tables -----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _VerdictColumns:
    """The verdicts as integer codes into name tables (each column factorized once)."""

    judge: np.ndarray  # int64 codes into `judges`
    candidate: np.ndarray  # int64 codes into `candidates`
    item: np.ndarray  # int64 codes into `items`
    value: np.ndarray  # int8: 1, 0, or -1 for null (invalid)
    judges: list[str]
    candidates: list[str]
    items: list[str]


def _codes(names: list[str]) -> tuple[np.ndarray, list[str]]:
    codes, uniques = pd.factorize(np.array(names, dtype=object))
    return codes.astype(np.int64), [str(name) for name in uniques]


def _verdict_columns(verdicts: Sequence[Verdict]) -> _VerdictColumns:
    # One pass per attribute over the records: list comprehensions are the fast way to read
    # pydantic objects; everything after this is vectorized.
    judge, judges = _codes([v.judge for v in verdicts])
    candidate, candidates = _codes([v.candidate for v in verdicts])
    item, items = _codes([v.item for v in verdicts])
    value = np.array([-1 if v.verdict is None else v.verdict for v in verdicts], dtype=np.int8)
    return _VerdictColumns(judge, candidate, item, value, judges, candidates, items)


def _score_table(columns: _VerdictColumns) -> pd.DataFrame:
    names = ["judge", "candidate", "n_one", "n_zero", "n_valid", "n_invalid", "score"]
    if columns.value.size == 0:
        return pd.DataFrame({name: [] for name in names})
    n_candidates = len(columns.candidates)
    size = len(columns.judges) * n_candidates
    pair = columns.judge * n_candidates + columns.candidate
    value = columns.value
    n_one = np.bincount(pair[value == 1], minlength=size)
    n_zero = np.bincount(pair[value == 0], minlength=size)
    n_invalid = np.bincount(pair[value == -1], minlength=size)
    n_valid = n_one + n_zero
    seen = np.flatnonzero(n_valid + n_invalid > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(n_valid > 0, n_one / n_valid, np.nan)
    return pd.DataFrame(
        {
            "judge": np.array(columns.judges, dtype=object)[seen // n_candidates],
            "candidate": np.array(columns.candidates, dtype=object)[seen % n_candidates],
            "n_one": n_one[seen],
            "n_zero": n_zero[seen],
            "n_valid": n_valid[seen],
            "n_invalid": n_invalid[seen],
            "score": score[seen],
        },
        columns=names,
    )


def judgment_scores(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """Judgment score of every (judge, candidate) pair in ``verdicts``.

    Method (Goel et al. 2025): score = #"1" / (#"1" + #"0"). A null verdict (judge output that
    could not be parsed) is invalid: counted in ``n_invalid`` and excluded from the score; a
    pair with no valid verdict has score NaN. Vectorized (integer codes and ``np.bincount``):
    under a second for a million verdicts on two cores, mostly spent reading the records.

    Returns a DataFrame with columns judge, candidate, n_one, n_zero, n_valid, n_invalid, score,
    one row per pair in order of first appearance of the judge, then the candidate.

    Example (hand-worked: 2 of 3 valid verdicts are "1", one verdict is null):

    >>> vs = [Verdict(judge="j", candidate="c", item=str(i), verdict=v)
    ...       for i, v in enumerate([1, 0, None, 1])]
    >>> row = judgment_scores(vs).iloc[0]
    >>> int(row.n_valid), int(row.n_invalid), round(float(row.score), 3)
    (3, 1, 0.667)
    """
    return _score_table(_verdict_columns(verdicts))


def _check_verdicts(columns: _VerdictColumns, models: set[str], items: set[str]) -> None:
    """Cheap vectorized reference and duplicate checks (the loader checks more, record by
    record; this guards the statistics against bundles built in code)."""
    for name, seen, known in (
        ("judge", columns.judges, models),
        ("candidate", columns.candidates, models),
        ("item", columns.items, items),
    ):
        unknown = sorted(set(seen) - known)
        if unknown:
            raise ValueError(f"verdicts[*].{name}: unknown {name} {unknown[0]!r}")
    n = columns.value.size
    if n == 0:
        return
    n_candidates, n_items = len(columns.candidates), len(columns.items)
    key = (columns.judge * n_candidates + columns.candidate) * n_items + columns.item
    size = len(columns.judges) * n_candidates * n_items
    if size <= 4 * n:  # a dense count is cheaper than sorting
        counts = np.bincount(key, minlength=size)
        repeated = np.flatnonzero(counts > 1)
        at = int(np.flatnonzero(key == repeated[0])[0]) if repeated.size else -1
    else:
        _, first, counts = np.unique(key, return_index=True, return_counts=True)
        repeated = np.flatnonzero(counts > 1)
        at = int(first[repeated[0]]) if repeated.size else -1
    if at >= 0:
        raise ValueError(
            f"verdicts: duplicate verdict for judge={columns.judges[columns.judge[at]]!r}, "
            f"candidate={columns.candidates[columns.candidate[at]]!r}, "
            f"item={columns.items[columns.item[at]]!r}"
        )


def model_accuracies(responses: ResponseMatrix) -> np.ndarray:
    """Ground-truth MCQ accuracy of each model over the items it answered (NaN if none).

    The chosen option is the stated choice, else the argmax of the probabilities (ties to the
    lowest index), as held in ``ResponseMatrix.choice``.
    """
    correct = ((responses.choice == responses.gold[None, :]) & responses.present).sum(axis=1)
    answered = responses.present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(answered > 0, correct / np.maximum(answered, 1), np.nan)


def _canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


_VERDICT_KEYS = ("candidate", "item", "judge", "raw", "variant", "verdict")  # sort_keys order
_VERDICT_VALUES = {0: "0", 1: "1", None: "null"}


class _EncodedStrings(dict[str, str]):
    """JSON string literals (as json.dumps writes them, ASCII-escaped), computed once each."""

    def __missing__(self, key: str) -> str:
        value = self[key] = json.encoder.encode_basestring_ascii(key)
        return value


def _canonical_verdicts(verdicts: Sequence[Verdict]) -> str | None:
    """The verdict list exactly as `_canonical` writes it, ~5x faster; None if a verdict is not
    the plain shape this writer knows (the caller then takes the generic path)."""
    if tuple(sorted(Verdict.model_fields)) != _VERDICT_KEYS:
        return None
    strings = _EncodedStrings()
    parts = []
    for verdict in verdicts:
        if type(verdict) is not Verdict:
            return None
        judge, candidate, item = verdict.judge, verdict.candidate, verdict.item
        value, raw, variant = verdict.verdict, verdict.raw, verdict.variant
        if not (
            type(judge) is str
            and type(candidate) is str
            and type(item) is str
            and (value is None or type(value) is int)
            and value in _VERDICT_VALUES
            and (raw is None or type(raw) is str)
            and (variant is None or type(variant) is str)
        ):
            return None
        raw_text = "null" if raw is None else strings[raw]
        variant_text = "null" if variant is None else strings[variant]
        parts.append(
            f'{{"candidate":{strings[candidate]},"item":{strings[item]},'
            f'"judge":{strings[judge]},"raw":{raw_text},"variant":{variant_text},'
            f'"verdict":{_VERDICT_VALUES[value]}}}'
        )
    return "[" + ",".join(parts) + "]"


def bundle_sha256(bundle: Bundle | BundleColumns) -> str:
    """SHA-256 (hex) of the bundle's canonical JSON, UTF-8 encoded::

        json.dumps(bundle.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    The verdicts, which dominate a large bundle, are written by a specialised encoder that
    gives the same bytes (the tests check it); anything it was not written for (another
    verdict schema, a field of an unexpected type) falls back to the expression above. A
    bundle in columns is written from its columns (`auditor.schemas.columns.canonical_json`):
    the same bytes.
    """
    if isinstance(bundle, BundleColumns):
        return columns_sha256(bundle)
    verdicts = _canonical_verdicts(bundle.verdicts)
    last_key = max(Bundle.model_fields)
    if verdicts is None or last_key != "verdicts":
        canonical = _canonical(bundle.model_dump(mode="json"))
    else:
        # "verdicts" sorts last among the bundle's keys: the rest, then it, then the brace.
        rest = _canonical(bundle.model_dump(mode="json", exclude={"verdicts"}))
        separator = "" if rest == "{}" else ","
        canonical = f'{rest[:-1]}{separator}"verdicts":{verdicts}}}'
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _software_versions() -> dict[str, str]:
    versions = {}
    for package in SOFTWARE_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _judge_generators(seed: int, judge: str) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent bootstrap and permutation Generators of one judge, from the seed and the
    judge's name only (so adding or removing a judge does not change another's numbers)."""
    key = int.from_bytes(hashlib.sha256(judge.encode("utf-8")).digest()[:8], "big")
    bootstrap, permutation = np.random.SeedSequence(seed, spawn_key=(key,)).spawn(2)
    return np.random.default_rng(bootstrap), np.random.default_rng(permutation)


# --- one judge ------------------------------------------------------------------------------------


@dataclass
class _JudgeOutcome:
    result: JudgeResult
    notes: list[str]


def _undefined_reason(
    score: np.ndarray, capa: np.ndarray, accuracy: np.ndarray, method: Method
) -> str | None:
    """Why the partial correlation of this judge's data is undefined, or None (for spearman,
    judged on the ranks, which is what is correlated)."""
    for name, values in (("judgment score", score), ("CAPA", capa), ("accuracy", accuracy)):
        if values.max() == values.min():
            return f"{name} is the same for every candidate; the partial correlation is undefined"
    if method == "spearman":
        score, capa, accuracy = _ranks(score), _ranks(capa), _ranks(accuracy)
    if np.isnan(_partial_r_rows(score, capa, accuracy)):
        relation = "a monotone" if method == "spearman" else "a linear"
        return (
            f"judgment score or CAPA is {relation} function of accuracy across the candidates; "
            "the partial correlation is undefined"
        )
    return None


def _pingouin_partial(
    score: np.ndarray, capa: np.ndarray, accuracy: np.ndarray, method: Method
) -> tuple[int, float, float, list[str]]:
    """n, r, p from pingouin.partial_corr, and any warnings it raised (as text)."""
    import pingouin

    data = pd.DataFrame({"score": score, "capa": capa, "accuracy": accuracy})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stats = pingouin.partial_corr(
            data=data, x="score", y="capa", covar="accuracy", method=method
        )
    p_column = "p_val" if "p_val" in stats.columns else "p-val"  # pingouin < 0.7: "p-val"
    row = stats.iloc[0]
    return int(row["n"]), float(row["r"]), float(row[p_column]), [str(w.message) for w in caught]


def _raw_correlation(x: np.ndarray, y: np.ndarray, method: Method) -> float:
    if method == "spearman":
        x, y = _ranks(x), _ranks(y)
    return float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))


def _analyze_judge(
    judge: str,
    candidates: list[str],
    excluded: list[str],
    score: np.ndarray,
    capa: np.ndarray,
    accuracy: np.ndarray,
    settings: AnalysisSettings,
) -> _JudgeOutcome:
    n = len(candidates)

    def insufficient(reason: str) -> _JudgeOutcome:
        result = JudgeResult(
            judge=judge,
            status="insufficient_data",
            reason=reason,
            n_candidates=n,
            excluded_candidates=excluded,
        )
        return _JudgeOutcome(result, [])

    if n < settings.min_candidates:
        return insufficient(
            f"{n} usable candidate(s); at least {settings.min_candidates} needed "
            "(settings.min_candidates)"
        )
    undefined = _undefined_reason(score, capa, accuracy, settings.method)
    if undefined is not None:
        return insufficient(undefined)

    method = settings.method
    try:
        n_pg, r, p, pingouin_warnings = _pingouin_partial(score, capa, accuracy, method)
    except ValueError as error:  # e.g. a covariate numerically identical to x or y
        return insufficient(f"pingouin.partial_corr could not compute it: {error}")
    if not all(math.isfinite(v) for v in (r, p)):
        return insufficient("pingouin.partial_corr returned an undefined partial correlation")
    notes = [f"{judge}: pingouin.partial_corr warned: {text}" for text in pingouin_warnings]
    bootstrap_rng, permutation_rng = _judge_generators(settings.seed, judge)
    bootstrap = bootstrap_partial_r(
        score, capa, accuracy, settings.n_bootstrap, bootstrap_rng, method
    )
    permutation = permutation_p(
        score, capa, accuracy, settings.n_permutations, permutation_rng, method
    )
    if bootstrap.n_degenerate:
        notes.append(
            f"{judge}: {bootstrap.n_degenerate} of {bootstrap.n_resamples} bootstrap resamples "
            "were degenerate (constant or collinear) and were dropped"
        )
    if permutation.n_degenerate:
        notes.append(
            f"{judge}: {permutation.n_degenerate} of {permutation.n_permutations} permutations "
            "were degenerate and were dropped"
        )
    result = JudgeResult(
        status="ok",
        partial_r=r,
        ci95=fisher_ci(r, n_pg, n_covariates=_N_COVARIATES),
        p_value=p,
        bootstrap_ci95=bootstrap.ci95,
        permutation_p=permutation.p_value,
        pearson_r=_raw_correlation(score, capa, method),
        ols=ols_fit(score, capa, accuracy),
        judge=judge,
        n_candidates=n,
        excluded_candidates=excluded,
    )
    return _JudgeOutcome(result, notes)


# --- the analysis ---------------------------------------------------------------------------------


def _check_settings(settings: Any) -> AnalysisSettings:
    if settings is None:
        return AnalysisSettings()
    if not isinstance(settings, AnalysisSettings):
        raise TypeError(f"settings: must be AnalysisSettings; got {type(settings).__name__}")
    if settings.seed < 0:
        raise ValueError(f"settings.seed: must be non-negative; got {settings.seed}")
    return settings


def _exclusion_reason(
    judge: str,
    candidate: str,
    families: dict[str, str | None],
    configured: set[tuple[str, str]],
    settings: AnalysisSettings,
) -> str | None:
    if candidate == judge:
        return "self-pair"
    family = families[judge]
    if settings.exclude_same_family and family is not None and family == families[candidate]:
        return f"same family as the judge ({family})"
    if (judge, candidate) in configured:
        return "excluded by configuration (settings.exclude_pairs)"
    return None


def analyze(
    bundle: Bundle | BundleColumns,
    settings: AnalysisSettings | None = None,
    *,
    provenance: dict[str, Any] | None = None,
) -> AffinityReport:
    """`analyze_affinity` with ``created_at`` (now, UTC) and ``software`` (installed versions)
    recorded in the provenance: the affinity analysis as it was before the probe registry
    (`auditor.probes.analysis.analyze` runs every probe and reads neither clock nor versions).
    ``input_sha256``, ``created_at`` and ``software`` may not be passed."""
    extra = dict(provenance or {})
    reserved = sorted(set(extra) & set(_RESERVED_PROVENANCE))
    if reserved:
        raise ValueError(f"provenance: {reserved[0]!r} is computed by analyze and cannot be given")
    return analyze_affinity(
        bundle,
        settings,
        provenance={
            **extra,
            "created_at": datetime.now(UTC).isoformat(),
            "software": _software_versions(),
        },
    )


def analyze_affinity(
    bundle: Bundle | BundleColumns,
    settings: AnalysisSettings | None = None,
    *,
    provenance: dict[str, Any] | None = None,
) -> AffinityReport:
    """Audit every judge in ``bundle`` for affinity bias (SCIENCE.md section 2).

    Judges are the models that appear as ``judge`` in the verdicts; a judge's candidates are the
    models it has verdicts on. For each (judge, candidate) pair: judgment score (null verdicts
    counted and excluded), CAPA (`auditor.stats.similarity.capa_matrix`: probabilistic where both
    models gave probabilities, else discrete) and the candidate's accuracy. A pair is left out
    of its judge's test, with its reason, when it is the self-pair, of the judge's family
    (``settings.exclude_same_family``; both families known), listed in
    ``settings.exclude_pairs``, or lacks a score, a CAPA or an accuracy.

    Per judge with at least ``settings.min_candidates`` usable candidates (else status
    ``insufficient_data`` with the reason, as also when a variable is constant or collinear):
    pingouin.partial_corr(score, capa | accuracy, method) gives n, r and p; ``ci95`` is its
    Fisher-z interval unrounded (`fisher_ci`, k = 1); ``pearson_r`` is the raw correlation of
    score and CAPA (same method); ``ols`` is `ols_fit`; ``bootstrap_ci95`` is
    `bootstrap_partial_r` and ``permutation_p`` is `permutation_p` (Freedman-Lane). Holm and
    BH adjusted p-values are computed across the ``ok`` judges (`adjust_p_values`); a judge is
    flagged when the adjusted p named by ``settings.correction`` is below ``settings.alpha``
    and r exceeds ``settings.min_effect``. ``pooled`` is `fisher_combine` over ``ok`` judges.

    Randomness: each judge's bootstrap and permutation Generators come from
    ``SeedSequence(settings.seed, spawn_key=(h,)).spawn(2)``, h = the first 8 bytes of
    SHA-256(judge name), big-endian. A judge's numbers thus depend only on the seed and its own
    data.

    ``provenance`` gives the `Provenance` fields (audit_id, spec, models, prompt_templates,
    created_at, software, ...) as the caller recorded them; ``input_sha256`` (`bundle_sha256`)
    is computed here and may not be passed. Pure: no clock, no installed versions.

    The bundle should come from `auditor.schemas.bundle.load_bundle`/`parse_bundle` (which validate
    every record); unknown names in verdicts and duplicate verdicts are checked again here and
    raise ValueError. Coverage states what was missing: invalid verdicts, discrete-only models,
    pairs without a valid verdict, degenerate resamples.
    """
    if not isinstance(bundle, Bundle | BundleColumns):
        raise TypeError(f"bundle: must be a Bundle or BundleColumns; got {type(bundle).__name__}")
    settings = _check_settings(settings)
    extra = dict(provenance or {})
    if "input_sha256" in extra:
        raise ValueError("provenance: 'input_sha256' is computed by analyze and cannot be given")

    model_names = [m.name for m in bundle.models]
    known_models = set(model_names)
    families = {m.name: m.family for m in bundle.models}
    for i, (judge, candidate) in enumerate(settings.exclude_pairs):
        for part, name in (("judge", judge), ("candidate", candidate)):
            if name not in known_models:
                raise ValueError(
                    f"settings.exclude_pairs[{i}]: unknown {part} {name!r} (not in bundle.models)"
                )
    configured = {(j, c) for j, c in settings.exclude_pairs}

    # Verdicts under judge template variants feed prompt stability, not the affinity test.
    if isinstance(bundle, Bundle):
        columns = _verdict_columns(primary_view(bundle).verdicts)
    else:
        primary = bundle.primary_verdicts()
        columns = _VerdictColumns(
            judge=bundle.verdict_judge[primary],
            candidate=bundle.verdict_candidate[primary],
            item=bundle.verdict_item[primary],
            value=bundle.verdict_value[primary],
            judges=model_names,
            candidates=model_names,
            items=[item.id for item in bundle.items],
        )
    _check_verdicts(columns, known_models, {item.id for item in bundle.items})
    table = _score_table(columns)
    by_pair = {
        (j, c): (int(nv), int(ni), float(s))
        for j, c, nv, ni, s in zip(
            table["judge"],
            table["candidate"],
            table["n_valid"],
            table["n_invalid"],
            table["score"],
            strict=True,
        )
    }
    judge_set, candidate_set = set(table["judge"]), set(table["candidate"])
    judges = [name for name in model_names if name in judge_set]

    responses = (
        response_matrix(bundle, model_names)
        if isinstance(bundle, Bundle)
        else response_matrix_from_columns(bundle, model_names)
    )
    accuracy = model_accuracies(responses)
    similarity: SimilarityMatrix = capa_matrix(responses)
    row = {name: i for i, name in enumerate(model_names)}

    pairs: list[PairResult] = []
    outcomes: list[_JudgeOutcome] = []
    for judge in judges:
        used: list[str] = []
        excluded: list[str] = []
        data: list[tuple[float, float, float]] = []
        for candidate in model_names:
            if (judge, candidate) not in by_pair:
                continue
            n_valid, n_invalid, score = by_pair[(judge, candidate)]
            capa = similarity.pair(judge, candidate)
            candidate_accuracy = float(accuracy[row[candidate]])
            reason = _exclusion_reason(judge, candidate, families, configured, settings)
            if reason is None and n_valid == 0:
                reason = f"no valid verdict ({n_invalid} invalid)"
            if reason is None and capa.value is None:
                reason = f"CAPA undefined: {capa.undefined_reason}"
            if reason is None and math.isnan(candidate_accuracy):
                reason = "candidate accuracy undefined: it answered no item"
            pairs.append(
                PairResult(
                    judge=judge,
                    candidate=candidate,
                    capa=capa.value,
                    capa_kind=capa.kind,
                    capa_undefined_reason=capa.undefined_reason,
                    judgment_score=None if n_valid == 0 else score,
                    accuracy=None if math.isnan(candidate_accuracy) else candidate_accuracy,
                    n_valid=n_valid,
                    n_invalid=n_invalid,
                    excluded=reason is not None,
                    exclusion_reason=reason,
                )
            )
            if reason is None and capa.value is not None:
                used.append(candidate)
                data.append((score, capa.value, candidate_accuracy))
            else:
                excluded.append(candidate)
        values = np.array(data, dtype=np.float64).reshape(-1, 3)
        outcomes.append(
            _analyze_judge(
                judge, used, excluded, values[:, 0], values[:, 1], values[:, 2], settings
            )
        )

    judge_results = _with_adjusted_p(outcomes, settings)
    family = multiple_testing(
        settings.correction,
        settings.alpha,
        "judges",
        ["affinity"],
        sum(1 for r in judge_results if r.p_adjusted is not None),
    )
    judge_results = [
        r.model_copy(update={"correction": family.label}) if r.p_adjusted is not None else r
        for r in judge_results
    ]
    ok = [result for result in judge_results if result.status == "ok"]
    pooled = fisher_combine(
        [result.partial_r for result in ok if result.partial_r is not None],
        [result.n_candidates for result in ok if result.partial_r is not None],
    )
    notes = [note for outcome in outcomes for note in outcome.notes]
    return AffinityReport(
        settings=settings,
        judges=judge_results,
        pairs=pairs,
        pooled=pooled,
        models=_model_summaries(bundle, responses, accuracy, judge_set, candidate_set),
        coverage=_coverage(bundle, responses, columns, judges, candidate_set, by_pair, notes),
        provenance=Provenance(
            input_sha256=bundle_sha256(bundle),
            **extra,
        ),
        multiple_testing=family,
    )


def _with_adjusted_p(
    outcomes: list[_JudgeOutcome], settings: AnalysisSettings
) -> list[JudgeResult]:
    results = [outcome.result for outcome in outcomes]
    tested = [
        (i, result.p_value)
        for i, result in enumerate(results)
        if result.status == "ok" and result.p_value is not None
    ]
    adjusted = adjust_p_values([p for _, p in tested])
    for position, (i, _) in enumerate(tested):
        result = results[i]
        holm = float(adjusted["holm"][position])
        bh = float(adjusted["fdr_bh"][position])
        chosen = holm if settings.correction == "holm" else bh
        effect = result.partial_r
        results[i] = result.model_copy(
            update={
                "p_holm": holm,
                "p_fdr_bh": bh,
                "p_adjusted": chosen,
                "flagged": effect is not None
                and chosen < settings.alpha
                and effect > settings.min_effect,
            }
        )
    return results


def _model_summaries(
    bundle: Bundle | BundleColumns,
    responses: ResponseMatrix,
    accuracy: np.ndarray,
    judges: set[str],
    candidates: set[str],
) -> list[ModelSummary]:
    answered = responses.present.sum(axis=1)
    return [
        ModelSummary(
            name=model.name,
            provider=model.provider,
            family=model.family,
            accuracy=None if math.isnan(accuracy[i]) else float(accuracy[i]),
            n_items=int(answered[i]),
            probabilistic=bool(responses.probabilistic[i]),
            is_judge=model.name in judges,
            is_candidate=model.name in candidates,
        )
        for i, model in enumerate(bundle.models)
    ]


def _coverage(
    bundle: Bundle | BundleColumns,
    responses: ResponseMatrix,
    columns: _VerdictColumns,
    judges: list[str],
    candidates: set[str],
    by_pair: dict[tuple[str, str], tuple[int, int, float]],
    notes: list[str],
) -> Coverage:
    answered = [bool(v) for v in np.any(responses.present, axis=1).tolist()]
    probabilistic_rows = [bool(v) for v in responses.probabilistic]
    names = responses.models
    silent = [name for name, any_output in zip(names, answered, strict=True) if not any_output]
    discrete = [
        name
        for name, any_output, probabilistic in zip(names, answered, probabilistic_rows, strict=True)
        if any_output and not probabilistic
    ]
    # Every judge against every model that any judge judged (self-pairs aside): a pair with no
    # valid verdict is either never asked or only answered unparseably.
    without = sum(
        1
        for judge in judges
        for candidate in candidates
        if candidate != judge and by_pair.get((judge, candidate), (0, 0, 0.0))[0] == 0
    )
    all_notes = []
    if silent:
        all_notes.append(
            f"{len(silent)} model(s) answered no item, so their accuracy and CAPA are undefined: "
            + ", ".join(silent)
        )
    if without:
        all_notes.append(
            f"{without} (judge, candidate) pair(s) have no valid verdict, counted over every judge "
            "and every model judged by any judge (self-pairs aside)"
        )
    invalid = np.bincount(columns.judge[columns.value == -1], minlength=len(columns.judges))
    invalid_by_judge = dict(zip(columns.judges, invalid.tolist(), strict=True))
    for judge in judges:
        count = int(invalid_by_judge.get(judge, 0))
        if count:
            all_notes.append(f"{judge}: {count} invalid (null) verdict(s) excluded from scores")
    all_notes.extend(notes)
    return Coverage(
        n_items=len(bundle.items),
        n_outputs=len(bundle.outputs) if isinstance(bundle, Bundle) else bundle.n_outputs,
        n_verdicts=columns.value.size,
        n_invalid_verdicts=int(np.count_nonzero(columns.value == -1)),
        discrete_only_models=discrete,
        pairs_without_verdicts=without,
        notes=all_notes,
    )


# --- the probe in the registry ----------------------------------------------------------------


def affinity_findings(report: AffinityReport) -> AffinityProbeResult:
    """The affinity probe's result from an affinity analysis: one finding per judge, its partial
    r with CI and unadjusted p. ``flagged`` is the probe's side of the rule (p < alpha and
    partial r > min_effect, the biased direction); the analysis adjusts p across judges x probes
    (``p_adjusted``) and keeps the flag only where that adjusted p < alpha too, then gives the
    judges of the affinity section the same adjusted p and flag."""
    settings = report.settings
    findings = [
        ProbeFinding(
            judge=judge.judge,
            status=judge.status,
            reason=judge.reason,
            n=judge.n_candidates,
            estimate=judge.partial_r,
            ci95=judge.ci95,
            p_value=judge.p_value,
            flagged=judge.p_value is not None
            and judge.partial_r is not None
            and judge.p_value < settings.alpha
            and judge.partial_r > settings.min_effect,
        )
        for judge in report.judges
    ]
    ok = any(f.status == "ok" for f in findings)
    return AffinityProbeResult(
        status="ok" if ok else "insufficient_data",
        reason=None if ok else "no judge has enough candidates with verdicts, CAPA and accuracy",
        findings=findings,
    )


class AffinityProbe:
    """Registry entry: affinity bias (Goel et al. 2025), from the verdicts an audit collects.

    Its details are the audit result's top-level fields (judges, pairs, pooled, models,
    coverage): `auditor.probes.analysis.analyze` computes them once with `analyze_affinity` and
    takes the findings from them (`affinity_findings`); `compute` does the same on its own.
    """

    name: ClassVar[str] = "affinity"
    title: ClassVar[str] = "Affinity bias (CAPA)"
    result_model: ClassVar[type[ProbeResult]] = AffinityProbeResult

    def missing_inputs(self, bundle: Bundle) -> str | None:
        if not bundle.verdicts:
            return "no verdicts"
        if not bundle.outputs:
            return "no multiple-choice outputs"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        """The affinity calls (MCQ, free-form answers, judge verdicts) are planned by
        `auditor.services.planning`, which every audit runs; nothing beyond them."""
        return ()

    def compute(self, context: ProbeContext) -> AffinityProbeResult:
        return affinity_findings(analyze_affinity(context.bundle, context.settings))


AFFINITY = PROBE = AffinityProbe()
