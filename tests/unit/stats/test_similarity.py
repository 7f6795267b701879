"""Tests of `auditor.stats.similarity`.

References: lm-sim 0.1.1 (`lmsim.metrics.CAPA`, `EC`, the authors' implementation of Goel et al.
2025) for probabilistic CAPA, discrete CAPA and error consistency; plain Python loops written
here for error agreement (Kim et al. 2025); hand-worked examples; a simulation with planted
truth (independent models) for the chance correction.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from lmsim.metrics import CAPA, EC

from auditor.schemas.bundle import Bundle, Item, ModelInfo, Output, ResponseMatrix, response_matrix
from auditor.stats.similarity import (
    METRICS,
    UNDEFINED_REASONS,
    Metric,
    capa,
    capa_matrix,
    error_agreement,
    error_consistency,
    response_matrix_from_arrays,
    similarity_matrix,
)

EXACT = 1e-12
NO_SHARED_REASON = "the two models answered no item in common"
CHANCE_ONE_PREFIX = "chance agreement is 1"
NO_BOTH_WRONG_REASON = "no item on which both models are wrong"


# --- inputs and references ------------------------------------------------------------------------


def ragged_inputs(
    rng: np.random.Generator, n_models: int, n_items: int, max_options: int = 8
) -> tuple[list[list[np.ndarray]], list[int]]:
    """Per-model lists of probability vectors on items with 2..max_options options.

    Concentrations vary per model so some models are sharp and some flat; every 7th item of
    model 0 is uniform, so its argmax is a tie (which must go to option 0).
    """
    counts = rng.integers(2, max_options + 1, size=n_items)
    gold = [int(rng.integers(0, k)) for k in counts]
    probs = []
    for m in range(n_models):
        concentration = rng.uniform(0.2, 2.0)
        vectors = [rng.dirichlet(np.full(k, concentration)) for k in counts]
        if m == 0:
            vectors = [
                np.full(k, 1.0 / k) if x % 7 == 0 else v
                for x, (k, v) in enumerate(zip(counts, vectors, strict=True))
            ]
        probs.append(vectors)
    return probs, gold


def one_hot_argmax(vector: np.ndarray) -> np.ndarray:
    """One-hot of the first maximal entry (the tie rule), written as a plain loop."""
    best = 0
    for index, value in enumerate(vector):
        if value > vector[best]:
            best = index
    out = np.zeros(len(vector))
    out[best] = 1.0
    return out


def lmsim_capa(a: list[np.ndarray], b: list[np.ndarray], gold: list[int]) -> float:
    return float(CAPA().compute_k(a, b, gold))


def lmsim_discrete_capa(a: list[np.ndarray], b: list[np.ndarray], gold: list[int]) -> float:
    return float(
        CAPA(prob=False).compute_k(
            [one_hot_argmax(v) for v in a], [one_hot_argmax(v) for v in b], gold
        )
    )


def lmsim_ec(a: list[np.ndarray], b: list[np.ndarray], gold: list[int]) -> float:
    return float(EC().compute_k(a, b, gold))


def slow_error_agreement(choices_a: list[int], choices_b: list[int], gold: list[int]) -> float:
    both_wrong = same = 0
    for a, b, g in zip(choices_a, choices_b, gold, strict=True):
        if a != g and b != g:
            both_wrong += 1
            same += a == b
    return same / both_wrong if both_wrong else math.nan


def argmax_choices(vectors: list[np.ndarray]) -> list[int]:
    return [int(np.flatnonzero(one_hot_argmax(v))[0]) for v in vectors]


REFERENCES = {
    "capa": lmsim_capa,
    "capa-discrete": lmsim_discrete_capa,
    "error-consistency": lmsim_ec,
}


def assert_all_pairs_equal_reference(
    probs: list[list[np.ndarray]], gold: list[int], metric: Metric, *, nan_allowed: bool = False
) -> None:
    """Every pair (self-pairs included) equals the reference; where the reference is NaN
    (only if ``nan_allowed``) ours is undefined with the chance-agreement reason."""
    responses = response_matrix_from_arrays(probs, gold)
    matrix = similarity_matrix(responses, metric)
    reference = REFERENCES[metric]
    finite = 0
    for i in range(len(probs)):
        for j in range(len(probs)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # lm-sim's 0/0
                expected = reference(probs[i], probs[j], gold)
            if math.isnan(expected):
                assert nan_allowed, (i, j)
                result = matrix.pair(f"model_{i}", f"model_{j}")
                assert result.value is None
                assert str(result.undefined_reason).startswith(CHANCE_ONE_PREFIX)
                continue
            assert matrix.values[i, j] == pytest.approx(expected, abs=EXACT, rel=0), (i, j)
            finite += 1
    assert finite >= len(probs)


def bundle_from(
    probs: list[list[np.ndarray]],
    gold: list[int],
    present: np.ndarray,
    discrete_only: frozenset[int] = frozenset(),
) -> Bundle:
    """A bundle holding output (m, x) where ``present[m, x]``; discrete-only models give only
    their argmax ``choice``."""
    items = [
        Item(id=f"q{x}", question=f"question {x}", options=[f"o{o}" for o in range(len(v))], gold=g)
        for x, (v, g) in enumerate(zip(probs[0], gold, strict=True))
    ]
    models = [ModelInfo(name=f"m{m}") for m in range(len(probs))]
    outputs = []
    for m, vectors in enumerate(probs):
        for x, vector in enumerate(vectors):
            if not present[m, x]:
                continue
            if m in discrete_only:
                outputs.append(Output(model=f"m{m}", item=f"q{x}", choice=int(np.argmax(vector))))
            else:
                outputs.append(Output(model=f"m{m}", item=f"q{x}", probs=vector.tolist()))
    return Bundle(items=items, models=models, outputs=outputs)


# --- equality with lm-sim ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("metric", ["capa", "capa-discrete", "error-consistency"])
def test_all_pairs_equal_lmsim_on_ragged_inputs(seed: int, metric: Metric) -> None:
    probs, gold = ragged_inputs(np.random.default_rng(seed), n_models=5, n_items=60)
    assert_all_pairs_equal_reference(probs, gold, metric)


def test_capa_matrix_equals_lmsim_pair_by_pair_for_many_models() -> None:
    probs, gold = ragged_inputs(np.random.default_rng(42), n_models=9, n_items=80)
    matrix = capa_matrix(response_matrix_from_arrays(probs, gold))
    assert matrix.values.shape == (9, 9)
    for i in range(9):
        for j in range(i, 9):
            assert matrix.values[i, j] == pytest.approx(
                lmsim_capa(probs[i], probs[j], gold), abs=EXACT, rel=0
            )


def _one_hot_models(rng: np.random.Generator, n_items: int, k: int) -> list[list[np.ndarray]]:
    return [[np.eye(k)[rng.integers(0, k)] for _ in range(n_items)] for _ in range(3)]


def _edge_cases() -> dict[str, tuple[list[list[np.ndarray]], list[int]]]:
    rng = np.random.default_rng(7)
    base, gold = ragged_inputs(rng, n_models=2, n_items=30)
    two, gold_two = ragged_inputs(rng, n_models=3, n_items=30, max_options=2)
    single, gold_single = ragged_inputs(rng, n_models=3, n_items=1, max_options=5)
    return {
        "one-hot models": (_one_hot_models(rng, 30, 4), [int(g) for g in rng.integers(0, 4, 30)]),
        "identical models": ([base[0], [v.copy() for v in base[0]], base[1]], gold),
        "single item": (single, gold_single),
        "two options": (two, gold_two),
    }


@pytest.mark.parametrize(
    "case", ["one-hot models", "identical models", "single item", "two options"]
)
@pytest.mark.parametrize("metric", ["capa", "capa-discrete", "error-consistency"])
def test_edge_cases_equal_lmsim(case: str, metric: Metric) -> None:
    probs, gold = _edge_cases()[case]
    if case == "single item":
        # One model right, one wrong, one probabilistic: on a single item a discrete model is
        # always right or always wrong, so some self-pairs have c_exp = 1 (lm-sim: NaN).
        k = len(probs[0][0])
        probs = [[np.eye(k)[gold[0]]], [np.eye(k)[(gold[0] + 1) % k]], probs[2]]
    assert_all_pairs_equal_reference(probs, gold, metric, nan_allowed=case == "single item")


def test_model_with_itself_equals_lmsim() -> None:
    probs, gold = ragged_inputs(np.random.default_rng(3), n_models=1, n_items=50)
    result = capa(probs[0], probs[0], gold)
    assert result.value == pytest.approx(lmsim_capa(probs[0], probs[0], gold), abs=EXACT, rel=0)
    assert result.kind == "probabilistic"
    assert result.n_items == 50


# --- undefined values ----------------------------------------------------------------------------


def _lmsim_quietly(function: Callable[..., float], *args: object) -> float:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(function(*args))
    assert any(issubclass(w.category, RuntimeWarning) for w in caught)
    return value


def test_undefined_where_lmsim_is_nan_both_always_right() -> None:
    gold = [0, 2, 1, 3]
    always_right = [np.eye(4)[g] for g in gold]
    assert math.isnan(_lmsim_quietly(CAPA().compute_k, always_right, always_right, gold))
    assert math.isnan(_lmsim_quietly(EC().compute_k, always_right, always_right, gold))
    for probabilistic in (True, False):
        result = capa(always_right, always_right, gold, probabilistic=probabilistic)
        assert result.value is None
        assert result.undefined_reason is not None
        assert str(result.undefined_reason).startswith(CHANCE_ONE_PREFIX)
        assert result.undefined_reason in UNDEFINED_REASONS.values()
    ec = error_consistency(response_matrix_from_arrays([always_right, always_right], gold))
    assert ec.pair("model_0", "model_1").value is None
    assert str(ec.pair("model_0", "model_1").undefined_reason).startswith(CHANCE_ONE_PREFIX)


def test_undefined_where_lmsim_is_nan_same_wrong_option_with_two_options() -> None:
    # Two options, both models certain of the wrong one on every item: pbar = 0, frac = 1.
    gold = [0, 1, 0]
    always_wrong = [np.eye(2)[1 - g] for g in gold]
    assert math.isnan(_lmsim_quietly(CAPA().compute_k, always_wrong, always_wrong, gold))
    result = capa(always_wrong, always_wrong, gold)
    assert result.value is None
    assert str(result.undefined_reason).startswith(CHANCE_ONE_PREFIX)


def test_undefined_values_are_nan_in_values_and_null_in_json() -> None:
    gold = [0, 1]
    always_right = [np.eye(2)[g] for g in gold]
    flat = [np.array([0.5, 0.5])] * 2
    matrix = capa_matrix(response_matrix_from_arrays([always_right, flat], gold))
    assert np.isnan(matrix.values[0, 0])
    assert matrix.values[0, 1] == pytest.approx(0.0, abs=EXACT)
    document = matrix.to_json()
    assert document["matrix"][0][0] is None
    assert document["undefined"] == [
        {
            "a": "model_0",
            "b": "model_0",
            "reason": matrix.pair("model_0", "model_0").undefined_reason,
        }
    ]


# --- properties (SCIENCE.md section 1) ------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_symmetric(metric: Metric) -> None:
    probs, gold = ragged_inputs(np.random.default_rng(11), n_models=7, n_items=120)
    rng = np.random.default_rng(12)
    present = rng.random((7, 120)) > 0.25
    responses = response_matrix(bundle_from(probs, gold, present, discrete_only=frozenset({2})))
    matrix = similarity_matrix(responses, metric)
    assert np.array_equal(matrix.values, matrix.values.T, equal_nan=True)
    assert np.array_equal(matrix.reasons, matrix.reasons.T)
    assert np.isfinite(matrix.values).sum() > 40


def test_kappa_p_of_model_with_itself_below_one_unless_one_hot() -> None:
    probs, gold = ragged_inputs(np.random.default_rng(5), n_models=6, n_items=100)
    rng = np.random.default_rng(6)
    one_hot = [np.eye(len(v))[rng.integers(0, len(v))] for v in probs[0]]
    matrix = capa_matrix(response_matrix_from_arrays([*probs, one_hot], gold))
    diagonal = np.diag(matrix.values)
    assert np.all(diagonal[:6] < 1.0 - 1e-3)
    assert diagonal[6] == pytest.approx(1.0, abs=EXACT)


def test_one_hot_always_right_model_has_zero_kappa_p_with_anything() -> None:
    probs, gold = ragged_inputs(np.random.default_rng(8), n_models=6, n_items=100)
    oracle = [np.eye(len(v))[g] for v, g in zip(probs[0], gold, strict=True)]
    rng = np.random.default_rng(9)
    one_hot_other = [np.eye(len(v))[rng.integers(0, len(v))] for v in probs[0]]
    matrix = capa_matrix(response_matrix_from_arrays([oracle, *probs, one_hot_other], gold))
    assert np.allclose(matrix.values[0, 1:], 0.0, atol=EXACT, rtol=0)
    # Not a trivial zero: the other models' values among themselves are not 0.
    assert np.abs(matrix.values[1:, 1:]).max() > 0.05


# --- error agreement (Kim et al. 2025) ------------------------------------------------------------


def test_error_agreement_hand_worked() -> None:
    # gold 0 everywhere, four options. Items where A and B are both wrong: 1 (1 vs 1, same),
    # 2 (2 vs 3), 3 (3 vs 3, same), 4 (1 vs 2); item 0 both right, item 5 A right. So 2 / 4.
    gold = [0] * 6
    choices = {"A": [0, 1, 2, 3, 1, 0], "B": [0, 1, 3, 3, 2, 1], "C": [0] * 6}
    probs = [[np.eye(4)[c] for c in chosen] for chosen in choices.values()]
    matrix = error_agreement(response_matrix_from_arrays(probs, gold, names=tuple(choices)))
    assert matrix.pair("A", "B").value == pytest.approx(0.5, abs=EXACT)
    assert matrix.pair("A", "A").value == pytest.approx(1.0, abs=EXACT)
    assert matrix.pair("A", "B").kind == "discrete"
    for other in ("A", "B", "C"):
        undefined = matrix.pair("C", other)
        assert undefined.value is None
        assert undefined.undefined_reason == NO_BOTH_WRONG_REASON


@pytest.mark.parametrize("seed", range(3))
def test_error_agreement_equals_slow_loop(seed: int) -> None:
    probs, gold = ragged_inputs(np.random.default_rng(100 + seed), n_models=6, n_items=70)
    matrix = error_agreement(response_matrix_from_arrays(probs, gold))
    choices = [argmax_choices(vectors) for vectors in probs]
    for i in range(6):
        for j in range(6):
            expected = slow_error_agreement(choices[i], choices[j], gold)
            assert math.isfinite(expected)
            assert matrix.values[i, j] == pytest.approx(expected, abs=EXACT, rel=0)


# --- missing outputs ------------------------------------------------------------------------------


def test_missing_outputs_equal_pair_on_shared_items() -> None:
    n_models, n_items = 6, 50
    probs, gold = ragged_inputs(np.random.default_rng(21), n_models, n_items)
    rng = np.random.default_rng(22)
    present = rng.random((n_models, n_items)) > 0.3
    present[4] = np.arange(n_items) < 10  # models 4 and 5 share no item
    present[5] = np.arange(n_items) >= 40
    responses = response_matrix(bundle_from(probs, gold, present))
    assert not responses.present.all()
    matrices = {metric: similarity_matrix(responses, metric) for metric in METRICS}
    checked = 0
    for i in range(n_models):
        for j in range(n_models):
            shared = np.flatnonzero(present[i] & present[j])
            for metric, matrix in matrices.items():
                result = matrix.pair(f"m{i}", f"m{j}")
                assert result.n_items == shared.size
                if shared.size == 0:
                    assert result.value is None
                    assert result.undefined_reason == NO_SHARED_REASON
                    continue
                a = [probs[i][x] for x in shared]
                b = [probs[j][x] for x in shared]
                g = [gold[x] for x in shared]
                if metric == "error-agreement":
                    expected = slow_error_agreement(argmax_choices(a), argmax_choices(b), g)
                else:
                    expected = REFERENCES[metric](a, b, g)
                assert math.isfinite(expected), (metric, i, j)
                assert result.value == pytest.approx(expected, abs=EXACT, rel=0), (metric, i, j)
                checked += 1
    assert checked >= 4 * (n_models * n_models - 2 - n_models)


# --- mixed kinds ----------------------------------------------------------------------------------


def test_discrete_only_model_with_probabilistic_model_uses_discrete_capa() -> None:
    probs, gold = ragged_inputs(np.random.default_rng(31), n_models=3, n_items=60)
    present = np.ones((3, 60), dtype=bool)
    responses = response_matrix(bundle_from(probs, gold, present, discrete_only=frozenset({0})))
    assert responses.probabilistic.tolist() == [False, True, True]
    matrix = capa_matrix(responses)

    mixed = matrix.pair("m0", "m1")
    assert mixed.kind == "discrete"
    assert mixed.value == pytest.approx(lmsim_discrete_capa(probs[0], probs[1], gold), abs=EXACT)
    # ... which differs from the probabilistic value of the same two models.
    assert mixed.value is not None
    assert abs(mixed.value - lmsim_capa(probs[0], probs[1], gold)) > 1e-3

    both = matrix.pair("m1", "m2")
    assert both.kind == "probabilistic"
    assert both.value == pytest.approx(lmsim_capa(probs[1], probs[2], gold), abs=EXACT)
    assert matrix.pair("m0", "m0").kind == "discrete"
    assert matrix.to_json()["kind"][0] == ["discrete", "discrete", "discrete"]
    assert matrix.to_json()["kind"][1] == ["discrete", "probabilistic", "probabilistic"]


# --- hand-worked examples -------------------------------------------------------------------------


def test_module_docstring_example() -> None:
    # c_obs = .56, pbar = (.8, .6), frac = 1, c_exp = .48 + .08 = .56, kappa_p = 0.
    result = capa([[0.8, 0.2], [0.8, 0.2]], [[0.6, 0.4], [0.6, 0.4]], [0, 0])
    assert result.value == pytest.approx(0.0, abs=EXACT)
    assert result.kind == "probabilistic"
    assert result.n_items == 2


def test_hand_worked_nonzero_example() -> None:
    # c_obs = ((.63 + .03) + (.08 + .48)) / 2 = .61; pbar = (.55, .55); frac = 1;
    # c_exp = .3025 + .2025 = .505; kappa_p = .105 / .495 = 7/33.
    result = capa([[0.9, 0.1], [0.2, 0.8]], [[0.7, 0.3], [0.4, 0.6]], [0, 0])
    assert result.value == pytest.approx(7 / 33, abs=EXACT)
    # Discrete: choices (0, 1) and (0, 1): c_obs = 1, acc = (.5, .5), c_exp = .5, kappa = 1.
    discrete = capa([[0.9, 0.1], [0.2, 0.8]], [[0.7, 0.3], [0.4, 0.6]], [0, 0], probabilistic=False)
    assert discrete.value == pytest.approx(1.0, abs=EXACT)
    assert discrete.kind == "discrete"


# --- boundary validation --------------------------------------------------------------------------

GOOD = [[0.5, 0.5], [0.2, 0.8]]


@pytest.mark.parametrize(
    ("probs", "gold", "names", "match"),
    [
        ([], [0, 1], None, r"^probs: need at least one model"),
        ([GOOD, GOOD], [], None, r"^gold: need"),
        ([GOOD, GOOD], [-1, 0], None, r"^gold\[0\]: must be an option index in 0\.\.1; got -1"),
        ([GOOD, GOOD], [0, 2], None, r"^gold\[1\]: must be an option index in 0\.\.1; got 2"),
        ([GOOD, GOOD], [0, 1.5], None, r"^gold\[1\]: must be an integer"),
        ([GOOD, [[0.5, 0.5], [0.2, 0.3, 0.5]]], [0, 1], ("a", "b"), r"^probs\['b'\]\[1\]: has 3"),
        ([GOOD, [[0.5, 0.5]]], [0, 1], ("a", "b"), r"^probs\['b'\]: has 1 items"),
        ([[[1.0], [0.2, 0.8]]] * 2, [0, 1], None, r"^probs\['model_0'\]\[0\]: needs at least 2"),
        ([GOOD, [[0.5, 0.5], [-0.2, 1.2]]], [0, 1], None, r"^probs\['model_1'\]\[1\]: .*non-neg"),
        ([GOOD, [[np.nan, 0.5], [0.2, 0.8]]], [0, 1], None, r"^probs\['model_1'\]\[0\]: .*finite"),
        (
            [GOOD, [[0.5, 0.5], [0.2, 0.7]]],
            [0, 1],
            None,
            r"^probs\['model_1'\]\[1\]: must sum to 1",
        ),
        (
            [GOOD, [[[0.5, 0.5]], [[0.2, 0.8]]]],
            [0, 1],
            None,
            r"^probs\['model_1'\]\[0\]: must be a flat vector",
        ),
        ([GOOD, GOOD], [0, 1], ("a",), r"^names: 1 names for 2 models"),
        ([GOOD, GOOD], [0, 1], ("a", "a"), r"^names: must be unique"),
    ],
)
def test_response_matrix_from_arrays_rejects_bad_input(
    probs: Any, gold: Any, names: tuple[str, ...] | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        response_matrix_from_arrays(probs, gold, names=names)


def test_capa_validates_like_the_matrix_builder() -> None:
    with pytest.raises(ValueError, match=r"^gold\[1\]: must be an option index"):
        capa(GOOD, GOOD, [0, -1])
    with pytest.raises(ValueError, match=r"must sum to 1"):
        capa(GOOD, [[0.5, 0.5], [0.5, 0.4]], [0, 1])
    with pytest.raises(ValueError, match=r"^gold: need"):
        capa([], [], [])


def test_probability_sum_tolerance_is_1e_minus_6() -> None:
    assert capa([[0.5, 0.5 + 9e-7]], [[0.5, 0.5]], [0]).value is not None
    with pytest.raises(ValueError, match="must sum to 1"):
        capa([[0.5, 0.5 + 2e-6]], [[0.5, 0.5]], [0])


def test_lmsim_silently_accepts_gold_minus_one_and_we_do_not() -> None:
    a = [np.array([0.7, 0.3]), np.array([0.4, 0.6])]
    b = [np.array([0.6, 0.4]), np.array([0.1, 0.9])]
    assert math.isfinite(CAPA().compute_k(a, b, [0, -1]))  # lm-sim reads p[-1], the last option
    with pytest.raises(ValueError, match=r"gold\[1\]"):
        capa(a, b, [0, -1])


# --- simulation with planted truth ----------------------------------------------------------------


def test_independent_models_have_kappa_near_zero_while_raw_agreement_rises() -> None:
    """Independent models: each picks gold with probability acc, else a uniform wrong option,
    and puts confidence c (drawn per model in [.5, .9]) on its pick and (1 - c)/3 on each other
    option. Then E[p_a(x)] = (q, (1-q)/3, ...) with q = acc c + (1 - acc)(1 - c)/3, so
    E[c_obs] = q_a q_b + (1 - q_a)(1 - q_b)/3 = c_exp and kappa_p is 0 up to sampling noise,
    while raw agreement, acc^2 + (1 - acc)^2 / 3, rises from .25 to .81.

    Tolerance: kappa_p of one pair has standard error about sd(p_a . p_b) / sqrt(D) / (1 -
    c_exp), measured from the data; the mean over a level's pairs is held to 4 times the
    largest single-pair standard error (a loose bound: averaging over pairs only shrinks it).
    """
    rng = np.random.default_rng(2025)
    n_items, k, per_level = 2000, 4, 6
    gold = rng.integers(0, k, n_items)
    levels = (0.3, 0.5, 0.7, 0.9)
    mean_kappa, raw, tolerance = {}, {}, {}
    for acc in levels:
        chosen_rows, prob_rows = [], []
        for _ in range(per_level):
            right = rng.random(n_items) < acc
            wrong = (gold + rng.integers(1, k, n_items)) % k  # uniform over the wrong options
            chosen = np.where(right, gold, wrong)
            confidence = rng.uniform(0.5, 0.9)
            p = np.full((n_items, k), (1 - confidence) / (k - 1))
            p[np.arange(n_items), chosen] = confidence
            chosen_rows.append(chosen)
            prob_rows.append(p)
        offsets = np.arange(n_items + 1) * k
        responses = ResponseMatrix(
            models=tuple(f"m{i}" for i in range(per_level)),
            items=tuple(str(x) for x in range(n_items)),
            offsets=offsets,
            gold=gold,
            probs=np.stack([p.reshape(-1) for p in prob_rows]),
            choice=np.stack(chosen_rows),
            present=np.ones((per_level, n_items), dtype=bool),
            probabilistic=np.ones(per_level, dtype=bool),
        )
        matrix = capa_matrix(responses)
        kappas, raws, errors = [], [], []
        for i in range(per_level):
            for j in range(i + 1, per_level):
                dots = np.sum(prob_rows[i] * prob_rows[j], axis=1)
                pbar_i = prob_rows[i][np.arange(n_items), gold].mean()
                pbar_j = prob_rows[j][np.arange(n_items), gold].mean()
                c_exp = pbar_i * pbar_j + (1 - pbar_i) * (1 - pbar_j) / (k - 1)
                errors.append(dots.std() / math.sqrt(n_items) / (1 - c_exp))
                kappas.append(matrix.values[i, j])
                raws.append(np.mean(chosen_rows[i] == chosen_rows[j]))
        mean_kappa[acc], raw[acc] = float(np.mean(kappas)), float(np.mean(raws))
        tolerance[acc] = 4 * max(errors)
        expected_raw = acc**2 + (1 - acc) ** 2 / (k - 1)
        # Raw agreement of one pair has sd <= .5 / sqrt(2000) = .011; 4 sd.
        assert raw[acc] == pytest.approx(expected_raw, abs=0.045)
    for acc in levels:
        assert tolerance[acc] < 0.05  # the bound is informative
        assert abs(mean_kappa[acc]) < tolerance[acc], (acc, mean_kappa[acc], tolerance[acc])
    assert raw[0.9] - raw[0.3] > 0.5
    assert all(raw[a] < raw[b] for a, b in itertools.pairwise(levels))


# --- similarity_matrix and its JSON form ----------------------------------------------------------


def test_similarity_matrix_dispatches_all_metrics() -> None:
    probs, gold = ragged_inputs(np.random.default_rng(51), n_models=4, n_items=40)
    responses = response_matrix_from_arrays(probs, gold, names=("a", "b", "c", "d"))
    direct = {
        "capa": capa_matrix(responses),
        "error-consistency": error_consistency(responses),
        "error-agreement": error_agreement(responses),
    }
    for metric in METRICS:
        matrix = similarity_matrix(responses, metric)
        assert matrix.metric == metric
        assert matrix.models == ("a", "b", "c", "d")
        if metric in direct:
            assert np.array_equal(matrix.values, direct[metric].values, equal_nan=True)
        expected_kind = "probabilistic" if metric == "capa" else "discrete"
        assert matrix.pair("a", "b").kind == expected_kind
        reference = (
            slow_error_agreement(argmax_choices(probs[0]), argmax_choices(probs[1]), gold)
            if metric == "error-agreement"
            else REFERENCES[metric](probs[0], probs[1], gold)
        )
        assert matrix.pair("a", "b").value == pytest.approx(reference, abs=EXACT)
    assert similarity_matrix(responses).metric == "capa"


def test_unknown_metric_raises() -> None:
    responses = response_matrix_from_arrays([GOOD, GOOD], [0, 1])
    with pytest.raises(ValueError, match=r"^metric: must be one of capa, capa-discrete"):
        similarity_matrix(responses, "kappa")  # type: ignore[arg-type]


def test_pair_of_unknown_model_raises_key_error() -> None:
    matrix = capa_matrix(response_matrix_from_arrays([GOOD, GOOD], [0, 1]))
    with pytest.raises(KeyError, match="nobody"):
        matrix.pair("model_0", "nobody")


@pytest.mark.parametrize("metric", METRICS)
def test_to_json_shape(metric: Metric) -> None:
    probs, gold = ragged_inputs(np.random.default_rng(61), n_models=3, n_items=20)
    present = np.ones((3, 20), dtype=bool)
    present[2, :] = np.arange(20) < 10
    present[1, :] = np.arange(20) >= 10  # m1 and m2 share nothing
    responses = response_matrix(bundle_from(probs, gold, present))
    matrix = similarity_matrix(responses, metric)
    document = matrix.to_json()
    assert set(document) == {"metric", "models", "matrix", "kind", "n_items", "undefined"}
    assert document["metric"] == metric
    assert document["models"] == ["m0", "m1", "m2"]
    assert len(document["matrix"]) == 3 and all(len(row) == 3 for row in document["matrix"])
    assert document["matrix"][1][2] is None and document["matrix"][2][1] is None
    assert document["matrix"][0][1] == pytest.approx(matrix.pair("m0", "m1").value)
    assert document["n_items"] == [[20, 10, 10], [10, 10, 0], [10, 0, 10]]
    assert {"a": "m1", "b": "m2", "reason": NO_SHARED_REASON} in document["undefined"]
    assert all(entry["reason"] in UNDEFINED_REASONS.values() for entry in document["undefined"])
    assert all(kind in ("probabilistic", "discrete") for row in document["kind"] for kind in row)
    json.dumps(document, allow_nan=False)  # strict JSON: no NaN anywhere
