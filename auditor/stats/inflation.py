"""Judge inflation (Kim et al. 2025, section 4): how much a judge overrates candidates, and
whether it overrates those of its own provider more.

For judge j and candidate c, ``inflation_jc = score_jc - accuracy_c``: the share of c's answers
the judge accepts minus c's ground-truth accuracy. Per judge, over its candidates (itself
excluded by the caller)::

    difference = mean(inflation | same provider) - mean(inflation | other provider)

- CI: percentile bootstrap over candidates, stratified (same-provider and other candidates are
  resampled separately, so every resample has both groups).
- p: permutation test of the provider labels over the judge's candidates (two-sided on
  |difference|, ``(1 + #{|d*| >= |d|}) / (1 + B)``, Phipson & Smyth 2010). It is exact under
  the null that provider labels are exchangeable given the inflations.
- Interaction (Kim et al.: "judges over-inflate less accurate candidates from their own
  provider"): OLS ``inflation ~ same + acc + same:acc`` with acc centred over the judge's
  candidates; the ``same:acc`` coefficient with its classical t-test (n - 4 df). Needs at least
  two same-provider and two other candidates with distinct accuracies in each group.

Example (hand-worked): scores (0.9, 0.8, 0.5, 0.4) for candidates of accuracy (0.6, 0.6, 0.5,
0.4), the first two from the judge's provider: inflations (0.3, 0.2, 0.0, 0.0), difference 0.25.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditor.stats.distributions import t_sf

__all__ = ["JudgeInflation", "judge_inflation"]


@dataclass(frozen=True)
class JudgeInflation:
    """One judge's inflation by provider; None fields are undefined with ``reason``."""

    n_same: int
    n_other: int
    mean_same: float | None
    mean_other: float | None
    difference: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    interaction: float | None
    interaction_se: float | None
    interaction_p: float | None
    reason: str | None = None


def _interaction(
    inflation: np.ndarray, accuracy: np.ndarray, same: np.ndarray
) -> tuple[float, float, float] | None:
    n = inflation.size
    if n <= 4 or same.sum() < 2 or (~same).sum() < 2:
        return None
    if np.ptp(accuracy[same]) == 0 or np.ptp(accuracy[~same]) == 0:
        return None
    centred = accuracy - accuracy.mean()
    design = np.column_stack([np.ones(n), same, centred, same * centred])
    coef, *_ = np.linalg.lstsq(design, inflation, rcond=None)
    residual = inflation - design @ coef
    df = n - 4
    sigma2 = float(residual @ residual) / df
    cov = sigma2 * np.linalg.inv(design.T @ design)
    se = float(np.sqrt(cov[3, 3]))
    if se == 0:
        return None
    p = float(2 * t_sf(abs(coef[3] / se), df))
    return float(coef[3]), se, p


def judge_inflation(
    score: np.ndarray,
    accuracy: np.ndarray,
    same_provider: np.ndarray,
    rng: np.random.Generator,
    *,
    n_bootstrap: int = 2000,
    n_permutations: int = 2000,
    alpha: float = 0.05,
) -> JudgeInflation:
    """Inflation difference of one judge over its candidates (NaN scores are left out)."""
    score = np.asarray(score, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    same_provider = np.asarray(same_provider, dtype=bool)
    if not (score.shape == accuracy.shape == same_provider.shape) or score.ndim != 1:
        raise ValueError(
            f"score, accuracy, same_provider: need equal 1-D shapes; got {score.shape}, "
            f"{accuracy.shape}, {same_provider.shape}"
        )
    if n_bootstrap < 0 or n_permutations < 0:
        raise ValueError(
            f"n_bootstrap, n_permutations: must be >= 0; got {n_bootstrap}, {n_permutations}"
        )
    usable = np.isfinite(score) & np.isfinite(accuracy)
    inflation = (score - accuracy)[usable]
    same = same_provider[usable]
    acc = accuracy[usable]
    n_same, n_other = int(same.sum()), int((~same).sum())
    mean_same = float(inflation[same].mean()) if n_same else None
    mean_other = float(inflation[~same].mean()) if n_other else None
    if not n_same or not n_other:
        missing = "same-provider" if not n_same else "other-provider"
        return JudgeInflation(
            n_same,
            n_other,
            mean_same,
            mean_other,
            None,
            None,
            None,
            None,
            None,
            None,
            reason=f"no {missing} candidate with a score",
        )
    difference = float(mean_same - mean_other)  # type: ignore[operator]
    ci = None
    if n_bootstrap:
        same_values, other_values = inflation[same], inflation[~same]
        same_means = same_values[rng.integers(0, n_same, (n_bootstrap, n_same))].mean(axis=1)
        other_means = other_values[rng.integers(0, n_other, (n_bootstrap, n_other))].mean(axis=1)
        low, high = np.quantile(same_means - other_means, [alpha / 2, 1 - alpha / 2])
        ci = (float(low), float(high))
    p_value = None
    if n_permutations:
        n = inflation.size
        keys = rng.random((n_permutations, n))
        picked = np.argpartition(keys, n_same - 1, axis=1)[:, :n_same]
        same_sum = inflation[picked].sum(axis=1)
        permuted = same_sum / n_same - (inflation.sum() - same_sum) / n_other
        exceed = int(np.sum(np.abs(permuted) >= abs(difference) - 1e-12))
        p_value = (1 + exceed) / (1 + n_permutations)
    interaction = _interaction(inflation, acc, same)
    return JudgeInflation(
        n_same=n_same,
        n_other=n_other,
        mean_same=mean_same,
        mean_other=mean_other,
        difference=difference,
        ci95=ci,
        p_value=p_value,
        interaction=interaction[0] if interaction else None,
        interaction_se=interaction[1] if interaction else None,
        interaction_p=interaction[2] if interaction else None,
        reason=None,
    )
