"""The response and CAPA matrices shared by the probes of one analysis (`SharedArrays`): the
same arrays as each probe computing its own (the reference: `response_matrix_from_columns`,
`response_matrix` and `capa_matrix` called directly), computed once, read-only, and the
analysis's results unchanged by the sharing."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from auditor.probes.affinity import analyze_affinity
from auditor.probes.base import ProbeContext, SharedArrays
from auditor.probes.correlated_errors import analyze_correlated_errors
from auditor.schemas.bundle import ResponseMatrix, parse_bundle, response_matrix
from auditor.schemas.columns import (
    BundleColumns,
    columns_from_document,
    response_matrix_from_columns,
)
from auditor.schemas.correlated_errors import CorrelatedErrorsSettings
from auditor.schemas.result import AnalysisSettings
from auditor.stats.similarity import SimilarityMatrix, capa_matrix
from tests.support.worlds import three_family_document

MATRIX_FIELDS = ("offsets", "gold", "probs", "choice", "present", "probabilistic")
CAPA_FIELDS = ("values", "reasons", "probabilistic", "n_items")


def world_document(seed: int = 3) -> dict[str, Any]:
    document = three_family_document(seed)
    # One model answers only by its choice (discrete CAPA for its pairs), one misses items.
    for output in document["outputs"]:
        if output["model"] == "c-2":
            output["choice"] = int(np.argmax(output["probs"]))
            output["probs"] = None
    document["outputs"] = [
        o for k, o in enumerate(document["outputs"]) if not (o["model"] == "b-3" and k % 4 == 0)
    ]
    return document


def assert_same_matrix(got: ResponseMatrix, expected: ResponseMatrix) -> None:
    assert got.models == expected.models and got.items == expected.items
    for name in MATRIX_FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), name)


def assert_same_capa(got: SimilarityMatrix, expected: SimilarityMatrix) -> None:
    assert got.models == expected.models
    for name in CAPA_FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), name)


@pytest.fixture(scope="module")
def columns() -> BundleColumns:
    return columns_from_document(world_document())


def test_shared_matrices_equal_each_probe_computing_its_own(columns: BundleColumns) -> None:
    names = [m.name for m in columns.models]
    arrays = SharedArrays(columns)
    for models in (names, names[::-1], names[2:7]):
        expected = response_matrix_from_columns(columns, models)
        assert_same_matrix(arrays.responses(models), expected)
        assert_same_capa(arrays.capa(models), capa_matrix(expected))
    # Records: the record-form stacking gives the same arrays.
    bundle = parse_bundle(world_document())
    from_records = SharedArrays(bundle)
    assert_same_matrix(from_records.responses(names), response_matrix(bundle, names))
    assert_same_capa(from_records.capa(names), capa_matrix(response_matrix(bundle, names)))


def test_shared_matrices_are_computed_once_and_read_only(columns: BundleColumns) -> None:
    names = [m.name for m in columns.models]
    arrays = SharedArrays(columns)
    responses, capa = arrays.responses(names), arrays.capa(names)
    assert arrays.responses(list(names)) is responses and arrays.capa(names) is capa
    with pytest.raises(ValueError, match="read-only"):
        responses.choice[0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        capa.values[0, 1] = 0.5
    # Another list of models replaces them (one response matrix held at a time).
    other = arrays.responses(names[:4])
    assert other.models == tuple(names[:4])
    assert arrays.responses(names) is not responses
    assert_same_matrix(arrays.responses(names), responses)


def test_a_context_alone_gets_its_own_arrays(columns: BundleColumns) -> None:
    bundle = parse_bundle(world_document())
    alone = ProbeContext(bundle=bundle, settings=AnalysisSettings(), rng=np.random.default_rng(0))
    names = [m.name for m in bundle.models]
    assert_same_matrix(alone.arrays.responses(names), response_matrix(bundle, names))


def test_probes_sharing_the_arrays_give_the_results_of_probes_computing_their_own(
    columns: BundleColumns,
) -> None:
    """Affinity then correlated errors on one `SharedArrays` (as `analyze` runs them) equal each
    computed alone with its own matrices."""
    settings = AnalysisSettings(n_bootstrap=200, n_permutations=200, min_candidates=4)
    fast = CorrelatedErrorsSettings(n_bootstrap=100, n_permutations=100)
    arrays = SharedArrays(columns)
    shared_affinity = analyze_affinity(columns, settings, arrays=arrays)
    shared_errors = analyze_correlated_errors(columns, fast, arrays=arrays)
    alone_affinity = analyze_affinity(copy.copy(columns), settings)
    alone_errors = analyze_correlated_errors(copy.copy(columns), fast)
    assert shared_affinity.model_dump() == alone_affinity.model_dump()
    assert shared_errors.model_dump() == alone_errors.model_dump()
    assert shared_errors.status == "ok" and shared_affinity.judges
