"""Correlation: the one partial correlation of the project, its Fisher-z interval and p-value.

Every partial correlation here (one pair of data, a batch of bootstrap resamples, a batch of
permutations, drift's paired resamples) is computed by `partial_r_from_gram` from the centered
sums of squares and products of ``[x, y, z_1 .. z_k]`` (their Gram matrix ``S``)::

    R = S_ab - S_az S_zz^+ S_zb      for a, b in {x, y}   (sums of the residuals of x, y on z)
    r_xy.z = R_xy / sqrt(R_xx R_yy)

the regression definition of partial correlation (correlate the residuals of x and of y after
least squares on ``[1, z]``), written on sums so a whole batch is one array expression. For one
covariate it is the textbook closed form
``(r_xy - r_xz r_yz) / sqrt((1 - r_xz^2) (1 - r_yz^2))``; for several, ``S_zz^+`` is the
pseudo-inverse (as pingouin inverts the covariance matrix with ``pinv``). It is undefined (NaN)
when x or y is fully explained by z (``R_xx <= COLLINEAR_TOLERANCE * S_xx``) or a variable is
constant. ``spearman`` replaces every variable by its average ranks first.

pingouin.partial_corr is the independent reference the tests compare with (r and p to 1e-12,
the unrounded CI against pingouin's rounded one); it is not imported here.

References: https://en.wikipedia.org/wiki/Partial_correlation ; Kim (2015), "ppcor: an R
package for a fast calculation to semi-partial correlation coefficients", Commun Stat Appl
Methods 22(6); Fisher (1921), "On the probable error of a coefficient of correlation".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from auditor.stats._checks import count, finite_vector
from auditor.stats.distributions import norm_ppf, t_sf

__all__ = [
    "COLLINEAR_TOLERANCE",
    "CONFIDENCE",
    "METHODS",
    "Method",
    "PartialCorrelation",
    "check_method",
    "correlation",
    "correlation_p",
    "fisher_ci",
    "gram_from_sums",
    "partial_correlation",
    "partial_r",
    "partial_r_from_gram",
    "ranks",
]

Method = Literal["pearson", "spearman"]
METHODS: tuple[Method, ...] = ("pearson", "spearman")

CONFIDENCE = 0.95
"""Level of every confidence interval reported here."""

COLLINEAR_TOLERANCE = 1e-12
"""x or y explained by the covariates up to this share of its sum of squares (1 - r^2 at or
below it, for one covariate): the partial correlation is undefined."""


@dataclass(frozen=True)
class PartialCorrelation:
    """A partial correlation with its parametric inference (pingouin's conventions)."""

    n: int
    r: float
    ci95: tuple[float, float]
    p_value: float
    method: Method
    n_covariates: int


def check_method(method: Any) -> Method:
    """``method`` if it is one of `METHODS`, else ValueError naming it."""
    if method not in METHODS:
        raise ValueError(f"method: must be 'pearson' or 'spearman'; got {method!r}")
    return cast(Method, method)


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank), as pandas/pingouin do."""
    from scipy.stats import rankdata  # scipy.stats takes ~0.3 s to import; only spearman needs it

    return np.asarray(rankdata(values, axis=-1), dtype=np.float64)


# --- the one partial correlation ------------------------------------------------------------------


def gram_from_sums(
    sxx: np.ndarray,
    syy: np.ndarray,
    szz: np.ndarray,
    sxy: np.ndarray,
    sxz: np.ndarray,
    syz: np.ndarray,
) -> np.ndarray:
    """The (..., 3, 3) Gram matrix of [x, y, z] from its six centered sums (any shapes that
    broadcast): what `partial_r_from_gram` takes for one covariate."""
    sxx, syy, szz, sxy, sxz, syz = np.broadcast_arrays(sxx, syy, szz, sxy, sxz, syz)
    return np.stack(
        [
            np.stack([sxx, sxy, sxz], axis=-1),
            np.stack([sxy, syy, syz], axis=-1),
            np.stack([sxz, syz, szz], axis=-1),
        ],
        axis=-2,
    )


def partial_r_from_gram(gram: np.ndarray, constant: np.ndarray | bool = False) -> np.ndarray:
    """Partial correlation of x and y given z from the centered Gram matrix of [x, y, z_1..z_k].

    ``gram`` has shape (..., 2 + k, 2 + k): rows and columns in the order x, y, z_1, .., z_k,
    entries the centered sums of squares and products (k = 0 gives the plain correlation).
    Returns r of shape (...), NaN where ``constant`` is true, where x or y is fully explained by
    the covariates (residual sum of squares <= `COLLINEAR_TOLERANCE` x its total), or where the
    sums are not finite. See the module docstring for the formula.

    >>> x, y, z = np.array([1., 2, 4, 3, 5]), np.array([2., 1, 4, 5, 6]), np.array([1., 3, 2, 5, 4])
    >>> data = np.column_stack([x, y, z]) - [x.mean(), y.mean(), z.mean()]
    >>> round(float(partial_r_from_gram(data.T @ data)), 4)
    0.7778
    """
    rxx, ryy, rxy, sxx, syy = _residual_sums(gram)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(rxy / np.sqrt(rxx * ryy), -1.0, 1.0)
    defined = _explained_part(rxx, sxx) & _explained_part(ryy, syy)
    return np.where(np.logical_not(defined) | constant | np.isnan(r), np.nan, r)


def _explained_part(residual: np.ndarray, total: np.ndarray) -> np.ndarray:
    """True where a variable keeps more than `COLLINEAR_TOLERANCE` of its sum of squares after
    the covariates (False for a constant variable, and for NaN sums)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(residual > COLLINEAR_TOLERANCE * total)


def _residual_sums(
    gram: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """R_xx, R_yy, R_xy (residual sums after the covariates) and S_xx, S_yy of ``gram``."""
    gram = np.asarray(gram, dtype=np.float64)
    size = gram.shape[-1] if gram.ndim >= 2 else 0
    if gram.ndim < 2 or gram.shape[-2] != size or size < 2:
        raise ValueError(f"gram: must have shape (..., m, m) with m >= 2; got {gram.shape}")
    sxx, syy, sxy = gram[..., 0, 0], gram[..., 1, 1], gram[..., 0, 1]
    if size == 2:
        return sxx, syy, sxy, sxx, syy
    with np.errstate(invalid="ignore", divide="ignore"):
        if size == 3:  # one covariate: S_zz^+ is 1 / szz (elementwise, fast for batches)
            sxz, syz, szz = gram[..., 0, 2], gram[..., 1, 2], gram[..., 2, 2]
            return (
                sxx - sxz * sxz / szz,
                syy - syz * syz / szz,
                sxy - sxz * syz / szz,
                sxx,
                syy,
            )
        cross = gram[..., :2, 2:]
        explained = cross @ np.linalg.pinv(gram[..., 2:, 2:], hermitian=True)
        explained = explained @ np.swapaxes(cross, -1, -2)
    return (
        sxx - explained[..., 0, 0],
        syy - explained[..., 1, 1],
        sxy - explained[..., 0, 1],
        sxx,
        syy,
    )


def _row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of (B, n) or (n,) arrays (matrix-vector products where possible)."""
    if b.ndim == 1:
        return a @ b
    if a.ndim == 1:
        return b @ a
    return np.einsum("ij,ij->i", a, b)


def partial_r(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, method: str = "pearson"
) -> np.ndarray | float:
    """Partial correlation of x and y given one covariate z along the last axis (NaN where
    undefined): `partial_r_from_gram` of each row's centered sums.

    Arrays are (B, n) or (n,) and broadcast against each other; ``spearman`` ranks each row
    first (average ranks for ties). A row is constant when its max equals its min, exactly
    (resampled values and ranks are copies, so this needs no tolerance). For callers that need
    r alone (drift's paired bootstrap, the probes' undefined-data checks).

    >>> round(float(partial_r(np.array([1., 2, 4, 3, 5]), np.array([2., 1, 4, 5, 6]),
    ...                       np.array([1., 3, 2, 5, 4]))), 4)
    0.7778
    """
    if method not in METHODS:
        raise ValueError(f"method: must be one of {', '.join(METHODS)}; got {method!r}")
    arrays = [np.asarray(v, dtype=np.float64) for v in (x, y, z)]
    if method == "spearman":
        arrays = [ranks(v) for v in arrays]
    constant: np.ndarray | bool = False
    centered = []
    for values in arrays:
        constant = constant | (values.max(axis=-1) == values.min(axis=-1))
        centered.append(values - values.mean(axis=-1, keepdims=True))
    xc, yc, zc = centered
    gram = gram_from_sums(
        _row_dot(xc, xc),
        _row_dot(yc, yc),
        _row_dot(zc, zc),
        _row_dot(xc, yc),
        _row_dot(xc, zc),
        _row_dot(yc, zc),
    )
    result = np.asarray(partial_r_from_gram(gram, constant))
    return float(result) if result.ndim == 0 else result


# --- inference ------------------------------------------------------------------------------------


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

    References: Fisher (1921); https://en.wikipedia.org/wiki/Fisher_transformation ;
    pingouin.compute_esci.

    >>> [round(v, 4) for v in fisher_ci(0.5, 30, n_covariates=1)]
    [0.1634, 0.7323]
    """
    if not -1.0 <= r <= 1.0 or math.isnan(r):
        raise ValueError(f"r: must be in [-1, 1]; got {float(r)!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: must be in (0, 1); got {confidence!r}")
    count("n", n)
    count("n_covariates", n_covariates)
    if abs(r) == 1.0:
        return (float(r), float(r))
    if n - n_covariates <= 3:
        return (-1.0, 1.0)
    # Same expression as pingouin, so the critical value matches to the last bit.
    crit = abs(float(norm_ppf((1 - confidence) / 2)))
    z = math.atanh(r)
    se = 1.0 / math.sqrt(n - n_covariates - 3)
    return (math.tanh(z - crit * se), math.tanh(z + crit * se))


def correlation_p(r: float, n: int, n_covariates: int = 0) -> float:
    """Two-sided p of a (partial) correlation from Student's t with n - k - 2 dof (pingouin)::

        t = r * sqrt((n - k - 2) / (1 - r^2)),   p = 2 * P(T_{n-k-2} > |t|)

    p is 0 when r^2 is 1 within numpy's isclose (pingouin's guard).
    """
    if np.isclose(r**2, 1.0):
        return 0.0
    dof = n - n_covariates - 2
    statistic = r * math.sqrt(dof / (1.0 - r**2))
    return float(2.0 * t_sf(abs(statistic), dof))


def correlation(x: Any, y: Any, method: str = "pearson") -> float:
    """The plain (Pearson, or Spearman on average ranks) correlation of x and y."""
    method = check_method(method)
    xv = finite_vector("x", x)
    yv = finite_vector("y", y, xv.size)
    if method == "spearman":
        xv, yv = ranks(xv), ranks(yv)
    return float(np.clip(np.corrcoef(xv, yv)[0, 1], -1.0, 1.0))


def partial_correlation(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    covar: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    method: Method = "pearson",
) -> PartialCorrelation:
    """Partial correlation of x and y controlling for ``covar``, with p-value and Fisher-z CI.

    r is `partial_r_from_gram` of the centered data (``spearman``: every variable replaced by its
    average ranks first, as pingouin.partial_corr does); p is `correlation_p` and the CI
    `fisher_ci`, both with ``k`` = the number of covariates. Equals pingouin.partial_corr to
    ~1e-15 on r and p; the CI is not rounded.

    ``covar`` is one vector (n,) or a matrix (n, k). Raises ValueError for mismatched lengths,
    non-finite values, n < k + 3, or a constant variable or x/y fully explained by covar (r is
    then undefined).

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
    method = check_method(method)
    xv = finite_vector("x", x)
    n = xv.size
    yv = finite_vector("y", y, n)
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
        xv, yv, z = ranks(xv), ranks(yv), ranks(z.T).T
    for name, values in (("x", xv), ("y", yv), *((f"covar[:, {i}]", z[:, i]) for i in range(k))):
        if values.max() == values.min():
            raise ValueError(f"{name}: is constant; the partial correlation is undefined")
    data = np.column_stack([xv, yv, z])
    data = data - data.mean(axis=0)
    gram = data.T @ data
    rxx, ryy, _, sxx, syy = _residual_sums(gram)
    for name, residual, total in (("x", rxx, sxx), ("y", ryy, syy)):
        if not _explained_part(residual, total):
            raise ValueError(
                f"{name}: is a linear function of covar; the partial correlation is undefined"
            )
    r_value = float(partial_r_from_gram(gram))
    return PartialCorrelation(
        n=n,
        r=r_value,
        ci95=fisher_ci(r_value, n, n_covariates=k),
        p_value=correlation_p(r_value, n, k),
        method=method,
        n_covariates=k,
    )
