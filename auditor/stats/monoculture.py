"""Algorithmic monoculture: shared failures of a set of models or judges, and how many
independent judges a panel is worth.

**Systemic exclusion** (Kim et al. 2025, section 5, after Bommasani et al. 2022, "Picking on
the same person"): over n units (items, or candidate answers a panel grades) and a set S of
members (models, judges) with failure indicators f_m(x) (wrong answer, rejection)::

    observed  = (1/n) sum_x prod_{m in S} f_m(x)         share of units every member fails
    baseline  = prod_{m in S} (1/n) sum_x f_m(x)          the same if members failed independently
    ratio     = observed / baseline

A ratio above 1 means failures pile up on the same units. The CI is a percentile bootstrap over
units (both observed and baseline recomputed in each resample).

**Most / least correlated k-subsets** (greedy; an exhaustive search over C(N, k) subsets is
infeasible): start from the pair with the highest (lowest) ratio, then repeatedly add the member
that makes the subset's ratio highest (lowest). The curve of ratio against k shows how fast a
panel's shared blind spots shrink, or fail to, as it grows. Greedy is a heuristic: the subset it
finds need not be the extreme one.

**Effective number of independent judges**: the participation ratio of the eigenvalues
lambda_i of the k x k correlation matrix R of the members' failure indicators::

    N_eff = (sum_i lambda_i)^2 / sum_i lambda_i^2 = k^2 / sum_ij R_ij^2

(trace R = k and sum lambda^2 = ||R||_F^2). N_eff = k when failures are uncorrelated and 1 when
they are perfectly correlated. Sampling noise adds r^2 > 0 to every off-diagonal entry, so N_eff
estimated from finite data is biased downward, most visibly near N_eff = k: for nearly
independent judges the percentile interval can lie just below the estimate (e.g. 10 independent
judges on 348,000 answers: 9.9998 with CI [9.99935, 9.99969]). Read it as "about k".
The participation ratio is from Bell & Dean (1970, Discuss. Faraday Soc. 50) and is the
standard effective dimensionality of a correlation structure (Gao et al. 2017, "A theory of
multineuronal dimensionality", bioRxiv 214262). CI: percentile
bootstrap over items (all units of one item move together when ``clusters`` is given), each
resample a weighting of per-item sufficient statistics (counts, sums and cross-products), so
1,000 resamples cost one matrix product.

Example (hand-worked): failures f_1 = [1, 1, 0, 0], f_2 = [1, 0, 1, 0]: observed 1/4, baseline
1/2 * 1/2 = 1/4, ratio 1; R = I, so N_eff = 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from auditor.stats.resampling import bootstrap_counts

__all__ = [
    "AccuracyBin",
    "EffectiveJudges",
    "JointFailure",
    "SubsetStep",
    "effective_judges",
    "greedy_subsets",
    "joint_failure",
    "similarity_by_accuracy_bin",
]

BOOTSTRAP_CHUNK = 256


@dataclass(frozen=True)
class JointFailure:
    """Systemic exclusion of one set of members over n units."""

    n_units: int
    n_all_fail: int
    observed: float
    baseline: float
    ratio: float | None
    """None when the baseline is 0 (some member never fails): the ratio is undefined."""
    ci95: tuple[float, float] | None
    """Percentile bootstrap CI of the ratio; None without resamples or when undefined."""


@dataclass(frozen=True)
class SubsetStep:
    """One panel size k of a greedy subset curve."""

    k: int
    members: tuple[int, ...]
    observed: float
    baseline: float
    ratio: float | None


@dataclass(frozen=True)
class EffectiveJudges:
    """Participation ratio of the members' failure correlation matrix."""

    n_members: int
    n_units: int
    n_eff: float
    ci95: tuple[float, float] | None
    eigenvalues: tuple[float, ...]
    excluded: tuple[int, ...]
    """Members left out because their failures do not vary (correlation undefined)."""


@dataclass(frozen=True)
class AccuracyBin:
    """Mean pairwise similarity of the models whose accuracy falls in one bin."""

    low: float
    high: float
    n_models: int
    n_pairs: int
    mean_similarity: float | None


def _failures(fail: np.ndarray) -> np.ndarray:
    matrix = np.asarray(fail)
    if matrix.ndim != 2:
        raise ValueError(f"fail: must be (members, units); got shape {matrix.shape}")
    if matrix.dtype != bool:
        if not np.isin(matrix, (0, 1)).all():
            raise ValueError("fail: must be 0/1 failure indicators")
        matrix = matrix.astype(bool)
    if matrix.shape[0] < 1 or matrix.shape[1] < 1:
        raise ValueError(f"fail: need at least one member and one unit; got shape {matrix.shape}")
    return matrix


def _ratio(observed: float, baseline: float) -> float | None:
    return observed / baseline if baseline > 0 else None


def _check_resamples(n_bootstrap: int, alpha: float) -> None:
    if n_bootstrap < 0:
        raise ValueError(f"n_bootstrap: must be >= 0; got {n_bootstrap}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be between 0 and 1; got {alpha}")


def joint_failure(
    fail: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
) -> JointFailure:
    """Share of units every member fails, against the independent baseline, with a bootstrap
    CI of the ratio over units (needs ``rng`` when ``n_bootstrap`` > 0)."""
    matrix = _failures(fail)
    _check_resamples(n_bootstrap, alpha)
    n_units = matrix.shape[1]
    all_fail = matrix.all(axis=0)
    observed = float(all_fail.mean())
    baseline = float(np.prod(matrix.mean(axis=1)))
    ratio = _ratio(observed, baseline)
    ci = None
    if n_bootstrap and ratio is not None:
        if rng is None:
            raise ValueError("rng: a numpy Generator is needed for the bootstrap")
        ratios = []
        # Draw counts times 0/1 failures: integer sums of at most n_units, exact in float32
        # (half the product's time and memory) below 2**24 units.
        exact = np.dtype(np.float32 if n_units < 2**24 else np.float64)
        stacked = np.vstack([matrix, all_fail]).astype(exact)
        for start in range(0, n_bootstrap, BOOTSTRAP_CHUNK):
            size = min(BOOTSTRAP_CHUNK, n_bootstrap - start)
            weights = bootstrap_counts(rng, n_units, size).astype(exact)
            shares = (weights @ stacked.T).astype(np.float64) / n_units  # (size, members + 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios.append(shares[:, -1] / np.prod(shares[:, :-1], axis=1))
        values = np.concatenate(ratios)
        values = values[np.isfinite(values)]
        if values.size:
            low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
            ci = (float(low), float(high))
    return JointFailure(
        n_units=n_units,
        n_all_fail=int(all_fail.sum()),
        observed=observed,
        baseline=baseline,
        ratio=ratio,
        ci95=ci,
    )


def greedy_subsets(
    fail: np.ndarray, *, most: bool = True, max_k: int | None = None
) -> list[SubsetStep]:
    """Greedy most (``most=True``) or least correlated subsets for k = 2..max_k (module doc).

    Ties go to the lower index. A step whose baseline is 0 has ratio None and counts as the
    lowest value when searching for the most correlated subset (highest otherwise).
    """
    matrix = _failures(fail)
    n_members, n_units = matrix.shape
    if n_members < 2:
        raise ValueError(f"fail: need at least 2 members for subsets; got {n_members}")
    top = n_members if max_k is None else min(max_k, n_members)
    rates = matrix.mean(axis=1)
    as_float: np.ndarray = matrix.astype(np.float32 if n_units < 2**24 else np.float64)
    pair_counts = np.asarray(as_float @ as_float.T, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pair_ratio = (pair_counts / n_units) / np.outer(rates, rates)
    sentinel = -np.inf if most else np.inf
    pair_ratio = np.where(np.isfinite(pair_ratio), pair_ratio, sentinel)
    np.fill_diagonal(pair_ratio, sentinel)
    flat = int(np.argmax(pair_ratio) if most else np.argmin(pair_ratio))
    chosen = [flat // n_members, flat % n_members]
    chosen.sort()
    steps: list[SubsetStep] = []
    current = matrix[chosen[0]] & matrix[chosen[1]]

    def record() -> None:
        observed = float(current.mean())
        baseline = float(np.prod(rates[chosen]))
        steps.append(
            SubsetStep(len(chosen), tuple(chosen), observed, baseline, _ratio(observed, baseline))
        )

    record()
    while len(chosen) < top:
        remaining = np.array([m for m in range(n_members) if m not in chosen])
        # Every member's count (exact integers: 0/1 sums), then the remaining ones: no copy of
        # the remaining members' rows.
        counts = (as_float @ current.astype(as_float.dtype))[remaining]
        baseline = np.prod(rates[chosen]) * rates[remaining]
        with np.errstate(divide="ignore", invalid="ignore"):
            candidate_ratio = (counts / n_units) / baseline
        candidate_ratio = np.where(np.isfinite(candidate_ratio), candidate_ratio, sentinel)
        pick = int(remaining[np.argmax(candidate_ratio) if most else np.argmin(candidate_ratio)])
        chosen.append(pick)
        current = current & matrix[pick]
        record()
    return steps


def _participation_ratio(correlation: np.ndarray) -> float:
    k = correlation.shape[0]
    return float(k * k / np.sum(correlation * correlation))


def _cluster_moments(matrix: np.ndarray, cluster_of: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per cluster g: [n_g, sum_u x_u (k values), sum_u x_u x_u' (k*k values)], as one
    (n_clusters, 1 + k + k*k) array, so that any cluster weighting is one matrix product."""
    k = matrix.shape[0]
    moments = np.zeros((n_clusters, 1 + k + k * k))
    moments[:, 0] = np.bincount(cluster_of, minlength=n_clusters)
    for i in range(k):
        moments[:, 1 + i] = np.bincount(cluster_of, weights=matrix[i], minlength=n_clusters)
        for j in range(i, k):
            sums = np.bincount(cluster_of, weights=matrix[i] * matrix[j], minlength=n_clusters)
            moments[:, 1 + k + i * k + j] = moments[:, 1 + k + j * k + i] = sums
    return moments


def _resampled_ratios(moments: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Participation ratio of the weighted correlation for each row of cluster ``weights``."""
    totals = weights @ moments  # (resamples, 1 + k + k*k)
    n = totals[:, :1]
    mean = totals[:, 1 : 1 + k] / n
    second = totals[:, 1 + k :].reshape(-1, k, k) / n[:, :, None]
    cov = second - mean[:, :, None] * mean[:, None, :]
    sd = np.sqrt(np.clip(np.einsum("bii->bi", cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = cov / (sd[:, :, None] * sd[:, None, :])
        ratios = k * k / np.sum(correlation * correlation, axis=(1, 2))
    return ratios[np.all(sd > 0, axis=1) & np.isfinite(ratios)]


def effective_judges(
    fail: np.ndarray,
    rng: np.random.Generator | None = None,
    *,
    clusters: Sequence[int] | np.ndarray | None = None,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
) -> EffectiveJudges:
    """Participation ratio (sum lambda)^2 / sum lambda^2 of the failure correlation matrix.

    ``clusters`` (one integer per unit, e.g. the item of a graded answer) makes the bootstrap
    resample clusters, not units. Members whose failures never vary are excluded (listed); a
    resample in which a member's failures do not vary is skipped.
    """
    matrix = _failures(fail).astype(np.float64)
    _check_resamples(n_bootstrap, alpha)
    varies = matrix.std(axis=1) > 0
    excluded = tuple(int(m) for m in np.flatnonzero(~varies))
    kept = matrix[varies]
    n_kept, n_units = kept.shape
    if n_kept < 2:
        raise ValueError(
            f"fail: need at least 2 members whose failures vary; got {n_kept} "
            f"(members {list(excluded)} never or always fail)"
        )
    correlation = np.corrcoef(kept)
    eigenvalues = np.linalg.eigvalsh(correlation)[::-1]
    n_eff = _participation_ratio(correlation)
    ci = None
    if n_bootstrap:
        if rng is None:
            raise ValueError("rng: a numpy Generator is needed for the bootstrap")
        cluster_of = (
            np.arange(n_units)
            if clusters is None
            else np.unique(np.asarray(clusters), return_inverse=True)[1]
        )
        if cluster_of.shape[0] != n_units:
            raise ValueError(f"clusters: need one per unit ({n_units}); got {cluster_of.shape[0]}")
        n_clusters = int(cluster_of.max()) + 1
        # Sufficient statistics per cluster, then every resample is a weighting of clusters.
        moments = _cluster_moments(kept, cluster_of, n_clusters)
        chunks = []
        for start in range(0, n_bootstrap, BOOTSTRAP_CHUNK):
            size = min(BOOTSTRAP_CHUNK, n_bootstrap - start)
            weights = bootstrap_counts(rng, n_clusters, size)
            chunks.append(_resampled_ratios(moments, weights, n_kept))
        values = np.concatenate(chunks)
        if values.size:
            low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
            ci = (float(low), float(high))
    return EffectiveJudges(
        n_members=n_kept,
        n_units=n_units,
        n_eff=n_eff,
        ci95=ci,
        eigenvalues=tuple(float(v) for v in eigenvalues),
        excluded=excluded,
    )


def similarity_by_accuracy_bin(
    similarity: np.ndarray, accuracy: Sequence[float] | np.ndarray, *, n_bins: int = 5
) -> list[AccuracyBin]:
    """Mean pairwise similarity (e.g. CAPA) of the models within each accuracy bin.

    Goel et al. (2025, Fig. 6) ask whether more capable models make more similar mistakes.
    Bins are ``n_bins`` equal-width intervals over [min accuracy, max accuracy] (the last one
    closed); a pair counts in a bin when both models fall in it and its similarity is defined
    (not NaN). A bin with no such pair has ``mean_similarity`` None.
    """
    matrix = np.asarray(similarity, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    if n_bins < 1:
        raise ValueError(f"n_bins: must be >= 1; got {n_bins}")
    if matrix.shape != (acc.size, acc.size):
        raise ValueError(f"similarity: must be {acc.size} x {acc.size}; got {matrix.shape}")
    finite = np.isfinite(acc)
    if not finite.any():
        raise ValueError("accuracy: no model has a finite accuracy")
    low, high = float(acc[finite].min()), float(acc[finite].max())
    edges = np.linspace(low, high, n_bins + 1)
    which = np.full(acc.size, -1)
    which[finite] = np.clip(np.searchsorted(edges, acc[finite], side="right") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        members = np.flatnonzero(which == b)
        block = matrix[np.ix_(members, members)][np.triu_indices(members.size, k=1)]
        block = block[np.isfinite(block)]
        bins.append(
            AccuracyBin(
                low=float(edges[b]),
                high=float(edges[b + 1]),
                n_models=int(members.size),
                n_pairs=int(block.size),
                mean_similarity=float(block.mean()) if block.size else None,
            )
        )
    return bins
