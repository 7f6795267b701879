"""Model similarity: CAPA, discrete CAPA, error consistency and error agreement.

All four are computed for every pair of models at once, vectorized: the observed agreement of
all pairs is one matrix product of the stacked probability rows (SCIENCE.md section 1), and the
chance terms need only per-model (per shared item set) averages.

Probabilistic CAPA (Goel et al. 2025, arXiv 2502.04313), over the items D both models answered::

    c_obs  = mean_x  p_a(x) . p_b(x)
    pbar_a = mean_x  p_a(x)[g_x]                      (mean gold probability, not accuracy)
    frac   = mean_x  1 / (|O_x| - 1)
    c_exp  = pbar_a * pbar_b + frac * (1 - pbar_a) * (1 - pbar_b)
    kappa_p = (c_obs - c_exp) / (1 - c_exp)

Discrete CAPA is the same on one-hot vectors of the chosen options. Error consistency (Geirhos et
al. 2020) uses c_obs = share of items both right or both wrong and c_exp = acc_a acc_b +
(1 - acc_a)(1 - acc_b). Error agreement (Kim et al. 2025) is, among items both got wrong, the
share where they chose the same wrong option.

A value that is undefined (no shared item, chance agreement 1, no item both got wrong) is NaN in
``values`` and its reason is in ``reasons``; `SimilarityMatrix.pair` returns it as ``None`` with
the reason. Nothing warns.

Example (hand-worked): two models, two 2-option items, gold 0 on both, p_a = [.8, .2] twice and
p_b = [.6, .4] twice: c_obs = .56, pbar = (.8, .6), frac = 1, c_exp = .48 + .08 = .56, so
kappa_p = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

# The segment argmax is shared with the bundle's array view so both break ties identically.
from auditor.stats.responses import PROBABILITY_TOLERANCE, ResponseMatrix, segment_argmax

__all__ = [
    "METRICS",
    "UNDEFINED_REASONS",
    "Metric",
    "PairSimilarity",
    "SimilarityMatrix",
    "capa",
    "capa_matrix",
    "error_agreement",
    "error_consistency",
    "response_matrix_from_arrays",
    "similarity_matrix",
]

Metric = Literal["capa", "capa-discrete", "error-consistency", "error-agreement"]
METRICS: tuple[Metric, ...] = ("capa", "capa-discrete", "error-consistency", "error-agreement")

DENOMINATOR_EPSILON = 1e-12
"""1 - c_exp at or below this is treated as chance agreement 1 (the value is undefined).

lm-sim returns NaN only when 1 - c_exp is exactly 0. Between 0 and 1e-12 its finite value is
rounding noise divided by rounding noise (c_obs and c_exp then agree to ~1e-16 of their size), so
we report it as undefined rather than as a number."""

_OK, _NO_SHARED, _CHANCE_ONE, _NO_BOTH_WRONG = 0, 1, 2, 3
UNDEFINED_REASONS: dict[int, str] = {
    _NO_SHARED: "the two models answered no item in common",
    _CHANCE_ONE: "chance agreement is 1 (both models always right, or always certain of the "
    "same option), so the chance-adjusted agreement is 0/0",
    _NO_BOTH_WRONG: "no item on which both models are wrong",
}


@dataclass(frozen=True)
class PairSimilarity:
    """One pair's value, or ``None`` with the reason it is undefined."""

    value: float | None
    kind: Literal["probabilistic", "discrete"]
    n_items: int
    undefined_reason: str | None = None


@dataclass(frozen=True, eq=False)
class SimilarityMatrix:
    """A symmetric model-by-model similarity matrix.

    ``values[i, j]`` is NaN exactly where ``reasons[i, j]`` is non-zero (see `UNDEFINED_REASONS`).
    ``probabilistic[i, j]`` says whether the pair used probabilities (else chosen options);
    ``n_items[i, j]`` counts the items both models answered.
    """

    metric: Metric
    models: tuple[str, ...]
    values: np.ndarray
    reasons: np.ndarray
    probabilistic: np.ndarray
    n_items: np.ndarray

    def pair(self, a: str, b: str) -> PairSimilarity:
        i, j = self._index(a), self._index(b)
        code = int(self.reasons[i, j])
        return PairSimilarity(
            value=None if code else float(self.values[i, j]),
            kind="probabilistic" if self.probabilistic[i, j] else "discrete",
            n_items=int(self.n_items[i, j]),
            undefined_reason=UNDEFINED_REASONS.get(code),
        )

    def _index(self, model: str) -> int:
        try:
            return self._rows[model]
        except KeyError:
            raise KeyError(f"model {model!r} is not in the similarity matrix") from None

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {name: row for row, name in enumerate(self.models)}

    def to_json(self) -> dict:
        """JSON form: ``matrix`` with ``null`` where undefined, and the reasons listed."""
        values = np.where(self.reasons == 0, self.values, np.nan)
        matrix = [[None if np.isnan(v) else float(v) for v in row] for row in values]
        undefined = [
            {"a": self.models[i], "b": self.models[j], "reason": UNDEFINED_REASONS[int(code)]}
            for i, j in zip(*np.nonzero(np.triu(self.reasons)), strict=True)
            for code in [self.reasons[i, j]]
        ]
        kinds = [["probabilistic" if p else "discrete" for p in row] for row in self.probabilistic]
        return {
            "metric": self.metric,
            "models": list(self.models),
            "matrix": matrix,
            "kind": kinds,
            "n_items": self.n_items.tolist(),
            "undefined": undefined,
        }


# --- building blocks ------------------------------------------------------------------------------

_FLOAT32_EXACT_COUNT = 2**24
"""Sums of 0/1 products stay exact in float32 while every count is below 2**24."""


def _gram(matrix: np.ndarray) -> np.ndarray:
    """``matrix @ matrix.T`` (BLAS; symmetric by construction)."""
    return np.asarray(matrix @ matrix.T, dtype=np.float64)


def _count_gram(left: np.ndarray, right: np.ndarray | None = None) -> np.ndarray:
    """counts[a, b] = number of items x with left[a, x] and right[b, x] (right defaults to left).

    The indicators are 0/1, so a float32 product is exact (and twice as fast) below 2**24 items.
    """
    dtype = np.dtype(np.float32 if left.shape[1] < _FLOAT32_EXACT_COUNT else np.float64)
    first: np.ndarray = left.astype(dtype)
    second: np.ndarray = first if right is None else right.astype(dtype)
    return np.asarray(first @ second.T, dtype=np.float64)


def _same_option_counts(choice: np.ndarray, option_counts: np.ndarray) -> np.ndarray:
    """counts[a, b] = number of items on which a and b chose the same option (-1 = no choice).

    Equal to the Gram matrix of the stacked one-hot rows, computed one option index at a time
    over the items that have that option, so no (models x options) matrix is built.
    """
    counts = np.zeros((choice.shape[0], choice.shape[0]))
    for option in range(int(option_counts.max())):
        has_option = option_counts > option
        chosen = choice == option if has_option.all() else choice[:, has_option] == option
        counts += _count_gram(chosen)
    return counts


def _shared_sums(per_item: np.ndarray, present: np.ndarray) -> np.ndarray:
    """sums[a, b] = sum of per_item[a, x] over the items x that b answered (0 where a did not).

    ``per_item`` is bool (a count, exact in float32) or float (a float64 product).
    """
    if per_item.dtype == bool:
        return _count_gram(per_item, present)
    return np.asarray(per_item @ present.T.astype(np.float64), dtype=np.float64)


def _chance_adjusted(
    observed_sum: np.ndarray,
    gold_sum: np.ndarray,
    option_term: np.ndarray,
    present: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """kappa = (c_obs - c_exp) / (1 - c_exp) for all pairs; returns (values, reasons, shared).

    ``observed_sum[a, b]`` is the summed agreement over the items both answered. ``gold_sum``
    holds the summed gold probability (or correctness): when every output is present it is
    per model, ``gold_sum[a]`` over all items; otherwise ``gold_sum[a, b]`` sums over the items
    both a and b answered (see `_shared_sums`). ``option_term[x]`` is the chance weight of wrong
    options (1/(k-1) for CAPA, 1 for EC). Every mean is over the pair's shared items, and c_exp
    is formed so that it is exactly symmetric in (a, b).
    """
    n_models, n_items = present.shape
    if gold_sum.ndim == 1:
        # Every output is present: every pair shares every item and the means are per model.
        shared = np.full((n_models, n_models), float(n_items))
        pbar = gold_sum / n_items
        pbar_a, pbar_b = pbar[:, None], pbar[None, :]
        frac: np.ndarray | float = float(option_term.mean())
    else:
        shared = _count_gram(present)
        frac_sum = np.zeros((n_models, n_models))
        for term in np.unique(option_term):  # one count Gram per distinct option count
            frac_sum += term * _count_gram(present[:, option_term == term])
        with np.errstate(invalid="ignore", divide="ignore"):
            pbar_a = gold_sum / shared  # pbar_a[a, b]: a's mean over the items shared with b
            frac = frac_sum / shared
        pbar_b = pbar_a.T
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = observed_sum / shared
        expected = pbar_a * pbar_b + frac * ((1.0 - pbar_a) * (1.0 - pbar_b))
        denominator = 1.0 - expected
        values = (observed - expected) / denominator
    reasons = np.zeros((n_models, n_models), dtype=np.int8)
    reasons[denominator <= DENOMINATOR_EPSILON] = _CHANCE_ONE
    reasons[shared == 0] = _NO_SHARED
    values[reasons != 0] = np.nan
    return values, reasons, shared


def _option_term(responses: ResponseMatrix) -> np.ndarray:
    return 1.0 / (responses.option_counts - 1.0)


def _choices(responses: ResponseMatrix) -> np.ndarray:
    """Chosen option per (model, item), -1 where the model did not answer."""
    return np.where(responses.present, responses.choice, -1)


def _correct(responses: ResponseMatrix) -> np.ndarray:
    return (responses.choice == responses.gold[None, :]) & responses.present


# --- the metrics ---------------------------------------------------------------------------------


def _correctness_sum(responses: ResponseMatrix, correct: np.ndarray) -> np.ndarray:
    if responses.present.all():
        return correct.sum(axis=1).astype(np.float64)
    return _shared_sums(correct, responses.present)


def _discrete_capa(responses: ResponseMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _chance_adjusted(
        _same_option_counts(_choices(responses), responses.option_counts),
        _correctness_sum(responses, _correct(responses)),
        _option_term(responses),
        responses.present,
    )


def _probabilistic_capa(responses: ResponseMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Missing outputs are zero rows in ``probs``, so one product sums over shared items only.
    probs = responses.probs
    if responses.present.all():
        # Summed gold probability per model as one matrix-vector product: it streams ``probs``
        # once, about 3x faster than gathering the gold columns.
        gold_indicator = np.zeros(probs.shape[1])
        gold_indicator[responses.gold_columns] = 1.0
        gold_sum = probs @ gold_indicator
    else:
        gold_sum = _shared_sums(probs[:, responses.gold_columns], responses.present)
    return _chance_adjusted(_gram(probs), gold_sum, _option_term(responses), responses.present)


def capa_matrix(responses: ResponseMatrix) -> SimilarityMatrix:
    """CAPA of all pairs: probabilistic where both models gave probabilities, else discrete.

    Cost: one ``probs @ probs.T`` product plus O(models^2 + models * items) work when every
    output is present and every model is probabilistic; the discrete part (only computed if some
    model is discrete-only) costs about one more product of the same size in float32.
    """
    both_probabilistic = np.outer(responses.probabilistic, responses.probabilistic)
    if both_probabilistic.all():
        values, reasons, shared = _probabilistic_capa(responses)
    elif not both_probabilistic.any():
        values, reasons, shared = _discrete_capa(responses)
    else:
        values, reasons, shared = _probabilistic_capa(responses)
        discrete = _discrete_capa(responses)
        mixed = ~both_probabilistic
        for combined, part in zip((values, reasons, shared), discrete, strict=True):
            combined[mixed] = part[mixed]
    return SimilarityMatrix(
        "capa", responses.models, values, reasons, both_probabilistic, shared.astype(np.int64)
    )


def _discrete_matrix(
    metric: Metric, responses: ResponseMatrix, parts: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> SimilarityMatrix:
    values, reasons, shared = parts
    n_models = len(responses.models)
    return SimilarityMatrix(
        metric,
        responses.models,
        values,
        reasons,
        np.zeros((n_models, n_models), dtype=bool),
        shared.astype(np.int64),
    )


def error_consistency(responses: ResponseMatrix) -> SimilarityMatrix:
    """Error consistency (Geirhos et al. 2020) of all pairs, from chosen options."""
    correct = _correct(responses)
    wrong = responses.present & ~correct
    observed_sum = _count_gram(correct) + _count_gram(wrong)
    return _discrete_matrix(
        "error-consistency",
        responses,
        _chance_adjusted(
            observed_sum,
            _correctness_sum(responses, correct),
            np.ones(len(responses.items)),
            responses.present,
        ),
    )


def error_agreement(responses: ResponseMatrix) -> SimilarityMatrix:
    """Kim et al. (2025): among items both models got wrong, the share with the same answer.

    Undefined (reason in `UNDEFINED_REASONS`) when the pair has no item both got wrong.
    """
    wrong = responses.present & ~_correct(responses)
    both_wrong = _count_gram(wrong)
    same_wrong = _same_option_counts(np.where(wrong, responses.choice, -1), responses.option_counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = same_wrong / both_wrong
    reasons = np.where(both_wrong == 0, _NO_BOTH_WRONG, _OK).astype(np.int8)
    shared = _count_gram(responses.present)
    reasons[shared == 0] = _NO_SHARED
    values[reasons != 0] = np.nan
    return _discrete_matrix("error-agreement", responses, (values, reasons, shared))


def similarity_matrix(responses: ResponseMatrix, metric: Metric = "capa") -> SimilarityMatrix:
    """The all-pairs matrix of ``metric`` (one of `METRICS`)."""
    if metric == "capa":
        return capa_matrix(responses)
    if metric == "capa-discrete":
        return _discrete_matrix(metric, responses, _discrete_capa(responses))
    if metric == "error-consistency":
        return error_consistency(responses)
    if metric == "error-agreement":
        return error_agreement(responses)
    raise ValueError(f"metric: must be one of {', '.join(METRICS)}; got {metric!r}")


# --- one pair from plain arrays (the lm-sim style interface) -------------------------------------


def _gold_indices(gold: Sequence[int] | np.ndarray) -> np.ndarray:
    gold_array = np.asarray(gold)
    if gold_array.ndim != 1 or gold_array.size == 0:
        raise ValueError(
            f"gold: need a flat list of at least one option index; got shape {gold_array.shape}"
        )
    if gold_array.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(gold_array) | (gold_array != np.round(gold_array)))
        if bad.size:
            item = int(bad[0])
            raise ValueError(f"gold[{item}]: must be an integer index; got {gold_array[item]!r}")
    elif gold_array.dtype.kind not in "iu":
        raise ValueError(f"gold: must be integer option indices; got dtype {gold_array.dtype}")
    return gold_array.astype(np.int64)


def _side_by_side(
    name: str, vectors: Sequence[np.ndarray | Sequence[float]]
) -> tuple[np.ndarray, np.ndarray]:
    """One model's per-item vectors concatenated, and each item's option count."""
    try:
        block = np.asarray(vectors, dtype=np.float64)
    except ValueError:  # ragged: option counts differ between items
        block = None
    if block is not None and block.ndim == 2:
        return block.reshape(-1), np.full(block.shape[0], block.shape[1], dtype=np.int64)
    arrays = [np.asarray(vector, dtype=np.float64) for vector in vectors]
    for item, array in enumerate(arrays):
        if array.ndim != 1:
            raise ValueError(
                f"probs[{name!r}][{item}]: must be a flat vector; got shape {array.shape}"
            )
    return np.concatenate(arrays), np.array([array.size for array in arrays], dtype=np.int64)


def response_matrix_from_arrays(
    probs: Sequence[Sequence[np.ndarray | Sequence[float]]],
    gold: Sequence[int],
    *,
    names: Sequence[str] | None = None,
) -> ResponseMatrix:
    """Build a `ResponseMatrix` from per-model lists of per-item probability vectors.

    Every output is present and every model probabilistic; the chosen option is the argmax
    (ties to the lowest index). Validates at the boundary (raises `ValueError` naming the
    model, item and field): empty input, names that do not match the models, ragged model
    lists, option counts that differ between models, fewer than 2 options, gold that is not an
    integer or out of range (negative included), probabilities that are negative, not finite or
    do not sum to 1 within `PROBABILITY_TOLERANCE`.
    """
    if len(probs) == 0:
        raise ValueError("probs: need at least one model; got none")
    if names is None:
        names = tuple(f"model_{i}" for i in range(len(probs)))
    names = tuple(names)
    if len(names) != len(probs):
        raise ValueError(f"names: {len(names)} names for {len(probs)} models")
    if len(set(names)) != len(names):
        raise ValueError(f"names: must be unique; got {list(names)!r}")
    gold_array = _gold_indices(gold)
    n_items = gold_array.size

    counts: np.ndarray | None = None
    offsets = np.zeros(1, dtype=np.int64)
    rows = []
    for name, vectors in zip(names, probs, strict=True):
        if len(vectors) != n_items:
            raise ValueError(f"probs[{name!r}]: has {len(vectors)} items but gold has {n_items}")
        row, these = _side_by_side(name, vectors)
        if counts is None:
            counts = these
            if np.any(counts < 2):
                item = int(np.flatnonzero(counts < 2)[0])
                raise ValueError(
                    f"probs[{name!r}][{item}]: needs at least 2 options; got {counts[item]}"
                )
            offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        elif not np.array_equal(counts, these):
            item = int(np.flatnonzero(counts != these)[0])
            raise ValueError(
                f"probs[{name!r}][{item}]: has {these[item]} options but {names[0]!r} has "
                f"{counts[item]} on that item"
            )
        invalid = np.flatnonzero(~np.isfinite(row) | (row < 0))
        if invalid.size:
            item = int(np.searchsorted(offsets, invalid[0], side="right") - 1)
            raise ValueError(
                f"probs[{name!r}][{item}]: must be finite and non-negative; "
                f"got {row[offsets[item] : offsets[item + 1]].tolist()}"
            )
        off = np.flatnonzero(
            np.abs(np.add.reduceat(row, offsets[:-1]) - 1.0) > PROBABILITY_TOLERANCE
        )
        if off.size:
            item = int(off[0])
            raise ValueError(
                f"probs[{name!r}][{item}]: must sum to 1 within {PROBABILITY_TOLERANCE:g}; "
                f"sums to {row[offsets[item] : offsets[item + 1]].sum()!r}"
            )
        rows.append(row)
    assert counts is not None  # there is at least one model
    bad = np.flatnonzero((gold_array < 0) | (gold_array >= counts))
    if bad.size:
        item = int(bad[0])
        raise ValueError(
            f"gold[{item}]: must be an option index in 0..{counts[item] - 1}; "
            f"got {gold_array[item]}"
        )
    matrix = np.vstack(rows)
    return ResponseMatrix(
        models=names,
        items=tuple(str(x) for x in range(n_items)),
        offsets=offsets,
        gold=gold_array,
        probs=matrix,
        choice=segment_argmax(matrix, counts),
        present=np.ones((len(names), n_items), dtype=bool),
        probabilistic=np.ones(len(names), dtype=bool),
    )


def capa(
    probs_a: Sequence[np.ndarray | Sequence[float]],
    probs_b: Sequence[np.ndarray | Sequence[float]],
    gold: Sequence[int],
    *,
    probabilistic: bool = True,
) -> PairSimilarity:
    """CAPA of one pair from per-item probability vectors (discrete: argmax, ties to lowest).

    >>> round(capa([[.8, .2], [.8, .2]], [[.6, .4], [.6, .4]], [0, 0]).value, 12)
    0.0
    """
    responses = response_matrix_from_arrays([probs_a, probs_b], gold, names=("a", "b"))
    metric: Metric = "capa" if probabilistic else "capa-discrete"
    return similarity_matrix(responses, metric).pair("a", "b")
