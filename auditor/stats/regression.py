"""Ordinary least squares with classical (homoskedastic) inference.

Cluster-robust inference for pair data lives in `auditor.stats.cluster_ols`.

References: Greene, "Econometric Analysis", ch. 4; statsmodels.regression.linear_model.OLS,
which the tests compare with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.stats._checks import finite_vector
from auditor.stats.distributions import t_sf

__all__ = ["OLSResult", "ols"]


@dataclass(frozen=True, eq=False)
class OLSResult:
    """An OLS fit; the arrays are indexed like ``terms``."""

    terms: tuple[str, ...]
    coefficients: np.ndarray
    std_errors: np.ndarray
    p_values: np.ndarray
    r_squared: float
    n: int

    def as_dicts(self) -> dict[str, dict[str, float]]:
        """``{"coefficients": {term: value}, "std_errors": ..., "p_values": ...}``."""
        return {
            name: dict(zip(self.terms, map(float, values), strict=True))
            for name, values in (
                ("coefficients", self.coefficients),
                ("std_errors", self.std_errors),
                ("p_values", self.p_values),
            )
        }


def ols(
    y: Sequence[float] | np.ndarray,
    regressors: dict[str, Any],
    *,
    intercept: str | None = "intercept",
    response: str = "y",
) -> OLSResult:
    """OLS of ``y`` on ``regressors`` (name -> column), with an intercept named ``intercept``
    first unless it is None.

    Method: beta = (X'X)^-1 X'y (least squares); standard errors sqrt(diag(s^2 (X'X)^-1))
    with s^2 = RSS / (n - k); two-sided Student t p-values with n - k dof; R^2 = 1 - RSS / TSS
    (TSS around the mean with an intercept, around 0 without, as statsmodels). Needs
    n > k and X of full column rank. Bad input is a ValueError naming the column.

    Hand-worked: slope S_xy / S_xx = 5.5 / 5, intercept 2.75 - 1.1 * 1.5, R^2 = 5.5^2 / (5 * 8.75).

    >>> fit = ols([1.0, 3.0, 2.0, 5.0], {"x": [0.0, 1.0, 2.0, 3.0]})
    >>> [round(float(v), 3) for v in fit.coefficients], round(fit.r_squared, 3)
    ([1.1, 1.1], 0.691)
    """
    yv = finite_vector(response, y)
    n = yv.size
    columns = [finite_vector(name, v, n, of=response) for name, v in regressors.items()]
    terms = tuple(regressors)
    if intercept is not None:
        columns.insert(0, np.ones(n))
        terms = (intercept, *terms)
    k = len(columns)
    if n <= k:
        raise ValueError(
            f"{response}: needs at least {k + 1} observations for {k} coefficients; got {n}"
        )
    design = np.column_stack(columns)
    beta, _, rank, _ = np.linalg.lstsq(design, yv, rcond=None)
    if rank < k:
        raise ValueError(f"{', '.join(terms)}: the regressors are collinear (rank {rank} < {k})")
    residual = yv - design @ beta
    rss = float(residual @ residual)
    dof = n - k
    covariance = rss / dof * np.linalg.inv(design.T @ design)
    se = np.sqrt(np.diag(covariance))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2.0 * t_sf(np.abs(beta / se), dof)
    centered = yv - yv.mean() if intercept is not None else yv
    tss = float(centered @ centered)
    return OLSResult(
        terms=terms,
        coefficients=beta,
        std_errors=se,
        p_values=np.asarray(p, dtype=np.float64),
        r_squared=1.0 - rss / tss if tss > 0 else float("nan"),
        n=n,
    )
