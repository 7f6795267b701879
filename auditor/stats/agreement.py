"""Agreement of a judge with reference labels: Cohen's kappa, TPR/TNR, Rogan–Gladen correction.

- Cohen's kappa (Cohen 1960) of two raters over the same units, categories c:
  p_o = share of units rated alike, p_e = Σ_c p_a(c)·p_b(c) from the two marginals,
  κ = (p_o − p_e) / (1 − p_e). Standard errors of Fleiss, Cohen & Everitt (1969): the
  non-null one for the CI (κ ± z·se), the null one for the z-test of κ = 0; both equal
  ``statsmodels.stats.inter_rater.cohens_kappa``.
- Sensitivity (TPR) = TP / (TP + FN) and specificity (TNR) = TN / (TN + FP) of a binary
  judge against a binary reference (1 = positive), each with a Wilson interval.
- Rogan–Gladen (1978) corrected prevalence: with apparent positive rate p̂ of an imperfect
  classifier of sensitivity Se and specificity Sp, π̂ = (p̂ + Sp − 1) / (Se + Sp − 1), clipped
  to [0, 1]; undefined when Se + Sp ≤ 1 (the judge is no better than chance). Its percentile
  bootstrap CI resamples the labelled units (Se, Sp) and all units (p̂) independently.

Example: raters (1, 1, 0, 0, 1, 0) and (1, 0, 0, 0, 1, 1): p_o = 4/6, p_e = 0.5, κ = 1/3.
``rogan_gladen(0.6, 0.9, 0.8)`` = (0.6 + 0.8 − 1) / 0.7 ≈ 0.571.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.stats.distributions import norm_ppf, norm_sf
from auditor.stats.proportions import wilson_interval

__all__ = [
    "BinaryRates",
    "KappaResult",
    "binary_rates",
    "cohen_kappa",
    "rogan_gladen",
    "rogan_gladen_bootstrap",
]


@dataclass(frozen=True)
class KappaResult:
    """Cohen's kappa with its Fleiss–Cohen–Everitt standard errors."""

    n: int
    kappa: float
    std_error: float
    """Non-null asymptotic standard error (for the CI)."""
    std_error_null: float
    """Standard error under κ = 0 (for the z-test)."""
    ci95: tuple[float, float]
    p_value: float
    """Two-sided z-test of κ = 0."""


def _labels(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise ValueError(f"{name}: must be one-dimensional; got shape {array.shape}")
    return array


def cohen_kappa(rater_a: Sequence[Any], rater_b: Sequence[Any], alpha: float = 0.05) -> KappaResult:
    """Cohen's kappa of two raters' labels of the same units (any hashable categories).

    Raises ValueError for unequal lengths, fewer than 2 units, or p_e = 1 (both raters used
    one and the same category throughout, so kappa is undefined).
    """
    a, b = _labels("rater_a", rater_a), _labels("rater_b", rater_b)
    if a.shape != b.shape:
        raise ValueError(f"rater_b: has {b.size} labels but rater_a has {a.size}")
    n = a.size
    if n < 2:
        raise ValueError(f"rater_a: kappa needs at least 2 units; got {n}")
    categories = sorted(set(a.tolist()) | set(b.tolist()), key=repr)
    code = {category: index for index, category in enumerate(categories)}
    k = len(categories)
    table = np.zeros((k, k))
    np.add.at(table, ([code[x] for x in a], [code[x] for x in b]), 1.0)
    probs = table / n
    row, col = probs.sum(axis=1), probs.sum(axis=0)
    observed = float(np.trace(probs))
    expected = float(row @ col)
    if expected >= 1.0 - 1e-15:
        raise ValueError(
            f"rater_a: kappa is undefined when both raters give one category only ({categories!r})"
        )
    kappa = (observed - expected) / (1 - expected)
    term_a = float((np.diag(probs) * (1 - (row + col) * (1 - kappa)) ** 2).sum())
    cross = probs * (col[:, None] + row[None, :]) ** 2
    np.fill_diagonal(cross, 0.0)
    term_b = (1 - kappa) ** 2 * float(cross.sum())
    term_c = (kappa - expected * (1 - kappa)) ** 2
    variance = (term_a + term_b - term_c) / (1 - expected) ** 2 / n
    variance_null = (expected + expected**2 - float((row * col * (row + col)).sum())) / (
        (1 - expected) ** 2 * n
    )
    se, se_null = math.sqrt(max(variance, 0.0)), math.sqrt(max(variance_null, 0.0))
    z = float(norm_ppf(1 - alpha / 2))
    p_value = float(2 * norm_sf(abs(kappa) / se_null)) if se_null > 0 else math.nan
    return KappaResult(
        n=n,
        kappa=kappa,
        std_error=se,
        std_error_null=se_null,
        ci95=(kappa - z * se, kappa + z * se),
        p_value=p_value,
    )


@dataclass(frozen=True)
class BinaryRates:
    """Sensitivity and specificity of a binary judge against a binary reference."""

    true_positives: int
    false_negatives: int
    true_negatives: int
    false_positives: int
    tpr: float | None
    """None when the reference has no positives."""
    tpr_ci95: tuple[float, float] | None
    tnr: float | None
    """None when the reference has no negatives."""
    tnr_ci95: tuple[float, float] | None


def _binary(name: str, values: Any) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name}: must be one-dimensional; got shape {array.shape}")
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        raise ValueError(f"{name}: must hold 0 or 1 only; got {array[bad][0]!r}")
    return array.astype(bool)


def binary_rates(
    predicted: Sequence[int], reference: Sequence[int], alpha: float = 0.05
) -> BinaryRates:
    """TPR and TNR of ``predicted`` against ``reference`` (1 = positive), Wilson intervals."""
    judged, truth = _binary("predicted", predicted), _binary("reference", reference)
    if judged.shape != truth.shape:
        raise ValueError(f"reference: has {truth.size} labels but predicted has {judged.size}")
    tp = int((judged & truth).sum())
    fn = int((~judged & truth).sum())
    tn = int((~judged & ~truth).sum())
    fp = int((judged & ~truth).sum())
    return BinaryRates(
        true_positives=tp,
        false_negatives=fn,
        true_negatives=tn,
        false_positives=fp,
        tpr=tp / (tp + fn) if tp + fn else None,
        tpr_ci95=wilson_interval(tp, tp + fn, alpha) if tp + fn else None,
        tnr=tn / (tn + fp) if tn + fp else None,
        tnr_ci95=wilson_interval(tn, tn + fp, alpha) if tn + fp else None,
    )


def rogan_gladen(apparent: float, sensitivity: float, specificity: float) -> float | None:
    """Prevalence corrected for an imperfect classifier; None when Se + Sp ≤ 1."""
    for name, value in (
        ("apparent", apparent),
        ("sensitivity", sensitivity),
        ("specificity", specificity),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: must be a proportion in [0, 1]; got {value!r}")
    youden = sensitivity + specificity - 1.0
    if youden <= 0:
        return None
    return min(1.0, max(0.0, (apparent + specificity - 1.0) / youden))


def rogan_gladen_bootstrap(
    judged_all: Sequence[int],
    judged_labelled: Sequence[int],
    reference_labelled: Sequence[int],
    rng: np.random.Generator,
    n_resamples: int = 2000,
    alpha: float = 0.05,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the Rogan–Gladen prevalence.

    ``judged_all`` holds the judge's binary verdicts on every unit (its apparent rate);
    ``judged_labelled``/``reference_labelled`` the judge's and the reference's labels on the
    labelled units (its Se and Sp). Both samples are resampled independently; resamples in
    which Se + Sp ≤ 1 (or a class is absent) are dropped, and None is returned when more
    than half are.
    """
    everything = _binary("judged_all", judged_all).astype(float)
    judged = _binary("judged_labelled", judged_labelled)
    truth = _binary("reference_labelled", reference_labelled)
    if judged.shape != truth.shape:
        raise ValueError(
            f"reference_labelled: has {truth.size} labels but judged_labelled has {judged.size}"
        )
    if everything.size == 0 or judged.size == 0:
        raise ValueError("judged_all: needs at least one unit and one labelled unit")
    if n_resamples < 1:
        raise ValueError(f"n_resamples: must be positive; got {n_resamples}")
    apparent = everything[rng.integers(0, everything.size, (n_resamples, everything.size))].mean(1)
    picks = rng.integers(0, judged.size, (n_resamples, judged.size))
    j, t = judged[picks], truth[picks]
    positives, negatives = t.sum(1), (~t).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sensitivity = (j & t).sum(1) / positives
        specificity = (~j & ~t).sum(1) / negatives
        youden = sensitivity + specificity - 1.0
        corrected = np.clip((apparent + specificity - 1.0) / youden, 0.0, 1.0)
    usable = (positives > 0) & (negatives > 0) & (youden > 0)
    if usable.sum() * 2 < n_resamples:
        return None
    lower, upper = np.quantile(corrected[usable], [alpha / 2, 1 - alpha / 2])
    return float(lower), float(upper)
