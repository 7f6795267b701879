"""Regression over model pairs of Kim et al. (2025): what predicts two models' shared errors.

Kim, Elliott, Bullard, Raghavan & Mullainathan (ICML 2025, "Correlated Errors in Large Language
Models") regress the both-wrong error agreement of every pair of models (among items both got
wrong, the share where they chose the same wrong option) on whether the pair shares a provider
and an architecture, on size, and on the two models' accuracies. Here, for the unordered pair
{a, b} with z-scored accuracies z_a, z_b (z = (acc - mean) / sd, sd with ddof = 1, over the
models in the matrix)::

    agreement_ab = b0 + b1 same_provider + b2 same_family + b3 acc_mean + b4 acc_product [+ size]
    acc_mean = (z_a + z_b) / 2,   acc_product = z_a z_b

Both accuracy terms are symmetric in (a, b), so the order of a pair cannot change a number.
When every model's parameter count is known, two symmetric size terms enter:
``log_params_mean = (log10 p_a + log10 p_b) / 2`` and ``log_params_diff = |log10 p_a - log10 p_b|``.
Pairs are not independent (each model appears in many), so standard errors are cluster-robust
(`auditor.stats.cluster_ols`): by default dyadic-conservative with t(G - 1) inference (correct
size on the planted-truth worlds; see that module), or two-way by the two models of the pair
(Cameron, Gelbach & Miller 2011, equal to statsmodels' ``cov_type="cluster"`` with both model
indices), or dyadic.

Pairs with no item both got wrong have no agreement: they are left out and counted. Models
whose provider (or, if the family term is used, family) is unknown are left out with their
pairs and listed, never guessed. A term that is constant over the included pairs (e.g. no two
models share a family) cannot be estimated: it is dropped and listed with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from auditor.stats.cluster_ols import ClusterKind, ClusterOLS, cluster_ols

__all__ = ["PAIR_TERMS", "PairRegression", "pair_design", "pair_regression"]

PAIR_TERMS: tuple[str, ...] = (
    "intercept",
    "same_provider",
    "same_family",
    "acc_mean",
    "acc_product",
    "log_params_mean",
    "log_params_diff",
)


@dataclass(frozen=True)
class PairDesign:
    """The pair table: one row per included unordered pair (first < second in model order)."""

    first: np.ndarray
    second: np.ndarray
    agreement: np.ndarray
    design: np.ndarray
    terms: tuple[str, ...]
    formula: str
    n_excluded_no_both_wrong: int
    excluded_models: dict[str, str]
    """Model -> why its pairs are left out (unknown provider, unknown family, no accuracy)."""
    dropped_terms: dict[str, str]
    """Term -> why it is not in the design (constant over pairs, no parameter counts)."""


@dataclass(frozen=True)
class PairRegression:
    design: PairDesign
    fit: ClusterOLS


def _same(labels: Sequence[str | None], first: np.ndarray, second: np.ndarray) -> np.ndarray:
    codes = {label: code for code, label in enumerate(sorted({x for x in labels if x}))}
    coded = np.array([codes.get(label, -1) if label else -1 for label in labels])
    return (coded[first] == coded[second]).astype(np.float64)


def pair_design(
    agreement: np.ndarray,
    models: Sequence[str],
    accuracy: Sequence[float] | np.ndarray,
    provider: Sequence[str | None],
    family: Sequence[str | None],
    params: Sequence[float | None] | None = None,
) -> PairDesign:
    """Build the pair table of the regression from a symmetric agreement matrix (NaN where a
    pair has no both-wrong item).

    Example: three models, providers (p, p, q), agreement 0.5 / 0.2 / 0.3 for the pairs
    (0,1) / (0,2) / (1,2): rows (0,1), (0,2), (1,2) with same_provider 1, 0, 0.
    """
    matrix = np.asarray(agreement, dtype=np.float64)
    n_models = len(models)
    if matrix.shape != (n_models, n_models):
        raise ValueError(f"agreement: must be {n_models} x {n_models}; got {matrix.shape}")
    acc = np.asarray(accuracy, dtype=np.float64)
    for name, values in (("accuracy", acc), ("provider", provider), ("family", family)):
        if len(values) != n_models:
            raise ValueError(f"{name}: need one value per model ({n_models}); got {len(values)}")

    excluded: dict[str, str] = {}
    dropped: dict[str, str] = {}
    use_family = any(family)
    if not use_family:
        dropped["same_family"] = "no model has a known family"
    for m, name in enumerate(models):
        if not np.isfinite(acc[m]):
            excluded[name] = "no accuracy (answered no item)"
        elif not provider[m]:
            excluded[name] = "provider unknown"
        elif use_family and not family[m]:
            excluded[name] = "family unknown"
    keep = np.array([name not in excluded for name in models])
    z = np.full(n_models, np.nan)
    if keep.sum() >= 2:
        kept_acc = acc[keep]
        sd = kept_acc.std(ddof=1)
        z[keep] = (kept_acc - kept_acc.mean()) / sd if sd > 0 else 0.0

    first, second = np.triu_indices(n_models, k=1)
    both_kept = keep[first] & keep[second]
    first, second = first[both_kept], second[both_kept]
    values = matrix[first, second]
    defined = np.isfinite(values)
    n_no_both_wrong = int((~defined).sum())
    first, second, values = first[defined], second[defined], values[defined]

    columns: dict[str, np.ndarray] = {
        "intercept": np.ones(first.size),
        "same_provider": _same(provider, first, second),
    }
    if use_family:
        columns["same_family"] = _same(family, first, second)
    columns["acc_mean"] = (z[first] + z[second]) / 2.0
    columns["acc_product"] = z[first] * z[second]
    known_params = params is not None and all(
        p is not None and p > 0 for p, k in zip(params, keep, strict=True) if k
    )
    if known_params and params is not None:
        log_params = np.array([np.log10(p) if p else np.nan for p in params])
        columns["log_params_mean"] = (log_params[first] + log_params[second]) / 2.0
        columns["log_params_diff"] = np.abs(log_params[first] - log_params[second])
    else:
        reason = "parameter counts not known for every model"
        dropped["log_params_mean"] = dropped["log_params_diff"] = reason
    for term in list(columns):
        if term != "intercept" and first.size and np.ptp(columns[term]) == 0:
            dropped[term] = f"constant over the included pairs (always {columns[term][0]:g})"
            del columns[term]
    terms = tuple(columns)
    formula = "agreement ~ " + " + ".join(terms[1:])
    design = np.column_stack([columns[t] for t in terms]) if first.size else np.empty((0, 0))
    return PairDesign(
        first=first,
        second=second,
        agreement=values,
        design=design,
        terms=terms,
        formula=formula,
        n_excluded_no_both_wrong=n_no_both_wrong,
        excluded_models=excluded,
        dropped_terms=dropped,
    )


def pair_regression(
    design: PairDesign,
    *,
    clustering: ClusterKind = "dyadic-conservative",
    use_t: bool = True,
    alpha: float = 0.05,
) -> PairRegression:
    """Fit the pair regression with cluster-robust SEs (clusters: the two models of a pair)."""
    groups = np.column_stack([design.first, design.second])
    fit = cluster_ols(
        design.agreement,
        design.design,
        groups,
        design.terms,
        clustering=clustering,
        use_t=use_t,
        alpha=alpha,
    )
    return PairRegression(design=design, fit=fit)
