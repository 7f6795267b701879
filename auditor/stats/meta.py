"""Meta-analysis: fixed-effect pooling of correlations on Fisher's z scale.

References: Hedges & Olkin (1985), "Statistical Methods for Meta-Analysis", ch. 11; Borenstein
et al. (2009), "Introduction to Meta-Analysis", ch. 6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from auditor.stats._checks import count, finite_vector
from auditor.stats.correlation import CONFIDENCE
from auditor.stats.distributions import norm_ppf, norm_sf

__all__ = ["FisherPooled", "fisher_combine"]


@dataclass(frozen=True)
class FisherPooled:
    """A pooled correlation; ``n_left_out`` estimates carried no weight (n <= 3 + k)."""

    n_used: int
    n_left_out: int
    r: float | None
    ci95: tuple[float, float] | None
    p_value: float | None


def fisher_combine(
    r: Sequence[float] | np.ndarray,
    n: Sequence[int] | np.ndarray,
    n_covariates: int = 0,
) -> FisherPooled:
    """Fixed-effect Fisher-z combination of (partial) correlations.

    Method: z_i = atanh(r_i) with r_i clipped to +-(1 - 1e-15) so |r| = 1 stays finite;
    weights w_i = n_i - 3 - k (the inverse variance of z_i under pingouin's ``nx = n - k``
    convention, k = ``n_covariates``); estimates with w_i <= 0 carry no information and are
    left out (counted in ``n_left_out``)::

        z_bar = sum w_i z_i / sum w_i,   se = 1 / sqrt(sum w_i)
        CI = tanh(z_bar -+ 1.959964 se),  p = 2 * (1 - Phi(|z_bar| / se))

    With no usable estimate, r, CI and p are None. The estimates are assumed independent.

    >>> pooled = fisher_combine([0.35, 0.65, 0.5], [38, 38, 39], n_covariates=1)
    >>> round(pooled.r, 3), [round(v, 3) for v in pooled.ci95], pooled.p_value < 1e-6
    (0.51, [0.354, 0.639], True)
    """
    rv = finite_vector("r", r)
    nv = finite_vector("n", n, rv.size, of="r")
    outside = np.flatnonzero(np.abs(rv) > 1)
    if outside.size:
        raise ValueError(f"r[{int(outside[0])}]: must be in [-1, 1]; got {float(rv[outside[0]])!r}")
    k = count("n_covariates", n_covariates)
    weights = nv - 3 - k
    usable = weights > 0
    left_out = int((~usable).sum())
    if not usable.any():
        return FisherPooled(n_used=0, n_left_out=left_out, r=None, ci95=None, p_value=None)
    z = np.arctanh(np.clip(rv[usable], -1 + 1e-15, 1 - 1e-15))
    w = weights[usable]
    z_bar = float(np.sum(w * z) / np.sum(w))
    se = 1.0 / math.sqrt(float(np.sum(w)))
    crit = float(norm_ppf(0.5 + CONFIDENCE / 2))
    return FisherPooled(
        n_used=int(usable.sum()),
        n_left_out=left_out,
        r=math.tanh(z_bar),
        ci95=(math.tanh(z_bar - crit * se), math.tanh(z_bar + crit * se)),
        p_value=float(2.0 * norm_sf(abs(z_bar) / se)),
    )
