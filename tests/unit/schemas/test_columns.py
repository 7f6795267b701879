"""The columnar bundle: the same rules and texts as the record-by-record path (`parse_bundle`,
the reference here), every problem at once, the same arrays, the same input hash, and the
JSON / JSONL / Parquet formats agreeing with each other."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from auditor.probes.affinity import analyze_affinity
from auditor.schemas.bundle import BundleError, parse_bundle, response_matrix
from auditor.schemas.canonical import canonical_sha256
from auditor.schemas.columns import (
    bundle_columns,
    bundle_sha256,
    canonical_json,
    columns_from_document,
    fast_path_matches_schema,
    response_matrix_from_columns,
)
from auditor.schemas.formats import load_columns, write_columns
from auditor.schemas.result import AnalysisSettings
from tests.support.cli import modules_loaded_by
from tests.support.worlds import three_family_document

ARRAYS = (
    "output_model",
    "output_item",
    "output_has_probs",
    "output_probs",
    "output_choice",
    "verdict_judge",
    "verdict_candidate",
    "verdict_item",
    "verdict_value",
)


def world_document(seed: int = 3) -> dict[str, Any]:
    return three_family_document(seed)


def mixed_document() -> dict[str, Any]:
    """Uneven option counts, choice-only and probs-only outputs, null verdicts, responses, raw
    texts, non-ASCII names and tiny probabilities (the float forms orjson and repr differ on)."""
    return {
        "schema_version": "1.0",
        "items": [
            {"id": "q1", "question": "Q1?", "options": ["a", "b", "c"], "gold": 2},
            {"id": "q2", "question": "Q2?", "options": ["yes", "no"], "gold": 0},
            {"id": "q3", "question": "Größe?", "options": ["x", "y", "z", "w"], "gold": 1},
        ],
        "models": [{"name": "m1", "family": "f"}, {"name": "m-é"}, {"name": "m3"}],
        "outputs": [
            {"model": "m1", "item": "q1", "probs": [0.2, 0.3, 0.5], "response": 'say "c"'},
            {"model": "m1", "item": "q2", "choice": 1},
            {"model": "m-é", "item": "q1", "probs": [1e-07, 2.5e-05, 0.999974900], "choice": 2},
            {"model": "m-é", "item": "q3", "probs": [0.25, 0.25, 0.25, 0.25]},
            {"model": "m3", "item": "q2", "probs": [1, 0]},
        ],
        "verdicts": [
            {"judge": "m1", "candidate": "m-é", "item": "q1", "verdict": 1, "raw": "1"},
            {"judge": "m1", "candidate": "m3", "item": "q2", "verdict": None, "raw": "hm"},
            {"judge": "m3", "candidate": "m1", "item": "q3", "verdict": 0},
        ],
    }


def rich_document() -> dict[str, Any]:
    """`mixed_document` plus answers and verdicts under prompt variants, pairwise comparisons
    and three-way labels (the sections other probes read)."""
    document = mixed_document()
    document["outputs"].append({"model": "m1", "item": "q1", "choice": 0, "variant": "terse"})
    document["verdicts"] += [
        {"judge": "m1", "candidate": "m-é", "item": "q1", "verdict": 0, "variant": "strict"},
        {"judge": "m1", "candidate": "m-é", "item": "q1", "verdict": 1, "variant": "lenient"},
    ]
    document["comparisons"] = [
        {
            "judge": "m1",
            "item": "q1",
            "candidate_a": "m-é",
            "candidate_b": "m3",
            "winner": "m3",
            "human": [{"annotator": "ann", "choice": "tie"}],
        }
    ]
    document["labels"] = [
        {"item": "q2", "candidate": "m3", "outcome": "avoidant", "annotator": "ann"}
    ]
    return document


def assert_same_columns(left: Any, right: Any) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(left, name), getattr(right, name), err_msg=name)
    assert left.output_response == right.output_response
    assert left.verdict_raw == right.verdict_raw
    assert left.items == right.items and left.models == right.models
    assert left.output_variant == right.output_variant
    assert left.verdict_variant == right.verdict_variant
    assert left.comparisons == right.comparisons and left.labels == right.labels


def write_parquet_tables(document: dict[str, Any], directory: Path) -> None:
    """The document's sections as Parquet tables as they are, unvalidated (every record given
    every column, so pyarrow does not infer the columns from the first record alone)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir()
    for name in ("items", "models", "outputs", "verdicts"):
        columns = list(dict.fromkeys(key for record in document[name] for key in record))
        rows = [{key: record.get(key) for key in columns} for record in document[name]]
        pq.write_table(pa.Table.from_pylist(rows), directory / f"{name}.parquet")


def problems_of(function: Any, *args: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(BundleError) as caught:
        function(*args, **kwargs)
    return [str(p) for p in caught.value.problems]


def test_the_fast_path_is_written_for_the_current_schema() -> None:
    # When this fails a field was added to Output, Verdict or Bundle: every load then takes
    # the slow record-by-record path until auditor/schemas/columns.py learns the field.
    assert fast_path_matches_schema()


@pytest.mark.parametrize("document", [world_document(), mixed_document(), rich_document()])
def test_columns_equal_the_record_path(document: dict[str, Any]) -> None:
    reference = bundle_columns(parse_bundle(copy.deepcopy(document)))
    columns = columns_from_document(copy.deepcopy(document))
    assert_same_columns(columns, reference)
    assert columns.to_bundle() == parse_bundle(copy.deepcopy(document))


@pytest.mark.parametrize("document", [world_document(), mixed_document(), rich_document()])
def test_response_matrix_equals_the_record_path(document: dict[str, Any]) -> None:
    bundle = parse_bundle(copy.deepcopy(document))
    columns = columns_from_document(copy.deepcopy(document))
    names = [m.name for m in bundle.models]
    for models in (None, names[::-1], names[:2]):
        expected = response_matrix(bundle, models)
        got = response_matrix_from_columns(columns, models)
        assert got.models == expected.models and got.items == expected.items
        for name in ("offsets", "gold", "probs", "choice", "present", "probabilistic"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), name)


def test_a_complete_bundle_shares_its_values_with_the_matrix() -> None:
    columns = columns_from_document(world_document())
    matrix = response_matrix_from_columns(columns)
    assert np.shares_memory(matrix.probs, columns.output_probs)


def uniform_tiny_document() -> dict[str, Any]:
    """Every output with probabilities over the same number of options (the block-at-once
    path of the canonical JSON), some of them values orjson and ``repr`` word differently."""
    document = world_document(seed=5)
    width = len(document["outputs"][0]["probs"])
    odd = [1e-07, 2.5e-05, 9.99e-05, 1e-4, 0.1 + 0.2]
    for k, output in enumerate(document["outputs"][: len(odd)]):
        probs = [odd[k]] + [(1 - odd[k]) / (width - 1)] * (width - 1)
        output["probs"] = probs
    return document


@pytest.mark.parametrize(
    "document", [world_document(), mixed_document(), rich_document(), uniform_tiny_document()]
)
def test_canonical_json_is_the_specified_expression(document: dict[str, Any]) -> None:
    bundle = parse_bundle(copy.deepcopy(document))
    expected = json.dumps(bundle.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    columns = columns_from_document(copy.deepcopy(document))
    assert canonical_json(columns) == expected
    assert bundle_sha256(columns) == bundle_sha256(bundle)


def test_analysis_of_columns_equals_analysis_of_records() -> None:
    document = world_document(seed=11)
    settings = AnalysisSettings(n_bootstrap=200, n_permutations=200, min_candidates=4)
    from_records = analyze_affinity(parse_bundle(copy.deepcopy(document)), settings)
    from_columns = analyze_affinity(columns_from_document(copy.deepcopy(document)), settings)
    exclude = {"provenance": {"created_at"}}
    assert from_columns.model_dump(exclude=exclude) == from_records.model_dump(exclude=exclude)


def judged_world_document(*, variants: bool = False) -> dict[str, Any]:
    """`world_document` with what makes the columnar probes' bookkeeping matter: a choice that
    overrides the argmax of the probabilities and a null verdict; with ``variants`` also an
    answer under a prompt variant after the primary one (the later answer decides correctness
    for self-preference) and a verdict under a variant."""
    document = world_document(seed=11)
    document["outputs"][1]["choice"] = 0
    document["verdicts"][0]["verdict"] = None
    if variants:
        first = document["outputs"][0]
        wrong = next(k for k in range(len(first["probs"])) if k != int(np.argmax(first["probs"])))
        document["outputs"].append(
            {"model": first["model"], "item": first["item"], "choice": wrong, "variant": "terse"}
        )
        verdict = next(
            v
            for v in document["verdicts"]
            if (v["candidate"], v["item"]) == (first["model"], first["item"])
            and v["verdict"] is not None
        )
        document["verdicts"].append(
            {**verdict, "verdict": 1 - verdict["verdict"], "variant": "strict"}
        )
    return document


@pytest.mark.parametrize(
    "document",
    [judged_world_document(), judged_world_document(variants=True), rich_document()],
)
def test_every_probe_checks_its_inputs_alike_on_columns_and_records(
    document: dict[str, Any],
) -> None:
    from auditor.probes import REGISTRY

    bundle = parse_bundle(copy.deepcopy(document))
    columns = columns_from_document(copy.deepcopy(document))
    for probe in REGISTRY:
        assert probe.missing_inputs(columns) == probe.missing_inputs(bundle), probe.name


@pytest.mark.parametrize("variants", [False, True])
def test_self_preference_on_columns_equals_records(variants: bool) -> None:
    import dataclasses

    from auditor.probes.base import ProbeContext
    from auditor.probes.self_preference import PROBE

    document = judged_world_document(variants=variants)
    bundle = parse_bundle(copy.deepcopy(document))
    columns = columns_from_document(copy.deepcopy(document))
    settings = AnalysisSettings()
    rng = np.random.default_rng(0)
    from_records = PROBE.compute(ProbeContext(bundle=bundle, settings=settings, rng=rng))
    from_columns = PROBE.compute(
        ProbeContext(bundle=bundle, settings=settings, rng=rng, columns=columns)
    )
    assert from_columns == from_records
    assert len(from_records.findings) == 2 and all(
        f.own_verdicts and f.other_verdicts for f in from_records.findings
    )
    if variants:  # the variant answer is the one that decides: it changes the tables
        primary = dataclasses.replace(
            columns,
            output_model=columns.output_model[:-1],
            output_item=columns.output_item[:-1],
            output_has_probs=columns.output_has_probs[:-1],
            output_choice=columns.output_choice[:-1],
            output_response=None,
            output_variant=None,
        )
        without = PROBE.compute(
            ProbeContext(bundle=bundle, settings=settings, rng=rng, columns=primary)
        )
        assert without != from_columns


def test_self_preference_on_uneven_options_equals_records() -> None:
    # Items with 3, 2 and 4 options: the argmax of an output's own probabilities, the later
    # (variant) answer of m1 on q1 deciding, a choice overriding the probabilities.
    from auditor.probes.base import ProbeContext
    from auditor.probes.self_preference import PROBE

    document = rich_document()
    document["verdicts"] += [
        {"judge": "m1", "candidate": "m-é", "item": "q3", "verdict": 1},
        {"judge": "m3", "candidate": "m1", "item": "q1", "verdict": 0},
        {"judge": "m1", "candidate": "m1", "item": "q1", "verdict": 1},
        {"judge": "m1", "candidate": "m3", "item": "q1", "verdict": 0},
    ]
    bundle = parse_bundle(copy.deepcopy(document))
    columns = columns_from_document(copy.deepcopy(document))
    settings, rng = AnalysisSettings(), np.random.default_rng(0)
    from_records = PROBE.compute(ProbeContext(bundle=bundle, settings=settings, rng=rng))
    from_columns = PROBE.compute(
        ProbeContext(bundle=bundle, settings=settings, rng=rng, columns=columns)
    )
    assert from_columns == from_records
    m1 = next(f for f in from_records.findings if f.judge == "m1")
    # own: m1 on q1; others: m-é on q1 (three templates) and q3; m3 on q2 is null and m3 has
    # no answer to q1, so neither counts
    assert (m1.own_verdicts, m1.other_verdicts) == (1, 4)


@pytest.mark.parametrize("responses", [False, True])
def test_full_analysis_of_columns_equals_analysis_of_records(
    monkeypatch: pytest.MonkeyPatch, responses: bool
) -> None:
    from auditor.probes.analysis import analyze

    document = judged_world_document()
    if not responses:
        for output in document["outputs"]:
            output.pop("response", None)
    settings = AnalysisSettings(n_bootstrap=200, n_permutations=200, min_candidates=4)
    from_records = analyze(parse_bundle(copy.deepcopy(document)), settings)
    assert {"affinity", "self_preference", "correlated_errors"} <= set(from_records.probes)
    # with free-form answers, verbosity fits the verdicts on answer length (on the columns too)
    assert ("verbosity" in from_records.probes) == responses
    columns = columns_from_document(copy.deepcopy(document))

    # The probes this bundle supports compute on the columns: the record form is never built.
    def no_records(self: Any) -> Any:
        raise AssertionError("the record form was built")

    monkeypatch.setattr(type(columns), "to_bundle", no_records)
    from_columns = analyze(columns, settings)
    exclude = {"provenance": {"created_at"}}
    assert from_columns.model_dump(exclude=exclude) == from_records.model_dump(exclude=exclude)


@pytest.mark.parametrize("normalize", ["sum", "softmax"])
def test_normalization_equals_the_record_path(normalize: str) -> None:
    document = mixed_document()
    document["outputs"][0]["probs"] = [2.0, 3.0, 5.0]
    document["outputs"][3]["probs"] = [-1.5, 0.0, float("-inf"), 2.0]
    document["outputs"][4]["probs"] = [1e308, 1e308]
    if normalize == "sum":
        document["outputs"][3]["probs"] = [1.5, 0.0, 0.0, 2.0]
    reference = bundle_columns(parse_bundle(copy.deepcopy(document), normalize=normalize))  # type: ignore[arg-type]
    columns = columns_from_document(copy.deepcopy(document), normalize=normalize)  # type: ignore[arg-type]
    np.testing.assert_allclose(columns.output_probs, reference.output_probs, rtol=0, atol=1e-15)


def test_cross_record_problems_read_like_the_record_path() -> None:
    document = mixed_document()
    document["items"].append({"id": "q1", "question": "again", "options": ["a", "b"], "gold": 3})
    document["models"].append({"name": "m3"})
    document["outputs"] += [
        {"model": "ghost", "item": "q9", "choice": 0},
        {"model": "m1", "item": "q1", "probs": [0.2, 0.3, 0.5]},
        {"model": "m3", "item": "q1"},
        {"model": "m3", "item": "q3", "probs": [0.5, 0.5]},
        {"model": "m1", "item": "q3", "probs": [0.5, 0.5, 0.5, -0.5], "choice": 4},
        {"model": "m1", "item": "q3", "probs": [0.1, 0.2, 0.3, 0.4000011]},
        {"model": "m3", "item": "q3", "probs": [float("nan"), 0.5, 0.25, 0.25]},
    ]
    document["verdicts"] += [
        {"judge": "nobody", "candidate": "m1", "item": "q1", "verdict": 1},
        {"judge": "m1", "candidate": "m-é", "item": "q1", "verdict": 0},
        {"judge": "m1", "candidate": "who", "item": "q0", "verdict": None},
    ]
    expected = problems_of(parse_bundle, copy.deepcopy(document))
    assert len(expected) >= 12
    assert problems_of(columns_from_document, copy.deepcopy(document)) == expected


def test_variant_and_section_problems_read_like_the_record_path() -> None:
    document = rich_document()
    document["outputs"].append({"model": "m1", "item": "q1", "choice": 1, "variant": "terse"})
    document["verdicts"].append(
        {"judge": "m1", "candidate": "m-é", "item": "q1", "verdict": 1, "variant": "strict"}
    )
    document["comparisons"][0]["winner"] = "nobody"
    document["labels"].append(
        {"item": "q9", "candidate": "m3", "outcome": "correct", "annotator": "ann"}
    )
    expected = problems_of(parse_bundle, copy.deepcopy(document))
    assert len(expected) == 4
    assert problems_of(columns_from_document, copy.deepcopy(document)) == expected


def test_type_problems_and_cross_record_problems_come_in_one_pass() -> None:
    document = mixed_document()
    document["outputs"] += [
        {"model": "m1", "item": "q3", "probs": "high", "extra": 1},
        {"model": "m3", "item": "q1", "probs": [0.5, 0.5, 0.5]},
    ]
    document["verdicts"].append({"judge": "m1", "candidate": "m3", "item": "q1", "verdict": 2})
    record_pass = problems_of(parse_bundle, copy.deepcopy(document))  # stops at the types
    problems = problems_of(columns_from_document, copy.deepcopy(document))
    assert set(record_pass) <= set(problems)
    assert any(
        p.startswith("outputs[5].probs") and "Input should be a valid list" in p for p in problems
    )
    assert any(p.startswith("outputs[5].extra") for p in problems)
    assert any(p.startswith("verdicts[3].verdict") for p in problems)
    # ... and, in the same run, the cross-record problem the record path shows only next time
    assert any(
        p.startswith("outputs[6] (model='m3', item='q1').probs") and "sum to 1" in p
        for p in problems
    )
    # in record order
    indices = [int(p.split("[")[1].split("]")[0]) for p in problems if p.startswith("outputs")]
    assert indices == sorted(indices)


def test_lax_values_are_accepted_as_pydantic_accepts_them() -> None:
    document = mixed_document()
    document["outputs"][1]["choice"] = 1.0  # an exact float for an int: pydantic takes it
    document["outputs"][0]["probs"] = ["0.2", 0.3, 0.5]  # a numeric string for a float
    reference = bundle_columns(parse_bundle(copy.deepcopy(document)))
    assert_same_columns(columns_from_document(copy.deepcopy(document)), reference)


def test_an_invalid_item_stops_reference_checks_but_not_record_checks() -> None:
    document = mixed_document()
    document["items"][0]["gold"] = "two"
    document["outputs"][1]["choice"] = "one"
    problems = problems_of(columns_from_document, document)
    assert any(p.startswith("items[0].gold") for p in problems)
    assert any(p.startswith("outputs[1].choice") for p in problems)
    assert not any("unknown" in p for p in problems)


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".parquet"])
def test_every_format_round_trips(tmp_path: Path, suffix: str) -> None:
    columns = columns_from_document(rich_document())
    path = write_columns(columns, tmp_path / f"bundle{suffix}")
    assert_same_columns(load_columns(path), columns)


def test_formats_report_the_same_problems(tmp_path: Path) -> None:
    document = mixed_document()
    document["outputs"] += [
        {"model": "ghost", "item": "q1", "choice": 0},
        {"model": "m1", "item": "q1", "probs": [0.2, 0.3, 0.6]},
        {"model": "m1", "item": "q2", "choice": 7},
    ]
    document["verdicts"].append({"judge": "m1", "candidate": "m3", "item": "q2", "verdict": 1})
    expected = problems_of(parse_bundle, copy.deepcopy(document))
    directory = tmp_path / "bad.parquet"
    write_parquet_tables(document, directory)
    assert problems_of(load_columns, directory) == expected
    jsonl = tmp_path / "bad.jsonl"
    lines = [json.dumps({"kind": "header", "schema_version": "1.0"})]
    for section, kind in (
        ("items", "item"),
        ("models", "model"),
        ("outputs", "output"),
        ("verdicts", "verdict"),
    ):
        lines += [json.dumps({"kind": kind, **record}) for record in document[section]]
    jsonl.write_text("\n".join(lines) + "\n")
    from_lines = problems_of(load_columns, jsonl)
    # JSONL names the line as well: "outputs[5] (bad.jsonl line 13, model='ghost', ...)"
    assert [p.replace(p[p.index("(") : p.index(", ") + 2], "(") for p in from_lines] == expected


def test_parquet_with_a_null_name_and_an_unknown_column_is_reported(tmp_path: Path) -> None:
    document = mixed_document()
    document["outputs"][2]["model"] = None
    document["outputs"][0]["logits"] = [0.0, 0.0, 0.0]
    directory = tmp_path / "b.parquet"
    write_parquet_tables(document, directory)
    problems = problems_of(load_columns, directory)
    assert any("outputs.parquet: unknown column 'logits'" in p for p in problems)
    assert any(p.startswith("outputs[2].model: Input should be a valid string") for p in problems)


@pytest.mark.parametrize("name", ["b.json", "b.parquet"])
def test_similarity_starts_without_the_heavy_service_modules(tmp_path: Path, name: str) -> None:
    # Parquet too: pyarrow's to_numpy would import pandas (~0.2 s); the usual columns are read
    # from their buffers (auditor.schemas.formats._view).
    path = write_columns(columns_from_document(world_document()), tmp_path / name)
    heavy = ["sqlalchemy", "cryptography", "litellm", "pingouin", "celery", "pandas", "scipy"]
    heavy += ["rich.console", "click", "typer.rich_utils"]  # it prints JSON: no rich, no help
    assert modules_loaded_by(["similarity", str(path)], heavy) == []


def test_analyze_starts_without_scipy_stats(tmp_path: Path) -> None:
    # The distributions the analysis needs come from scipy.special (auditor.stats.distributions):
    # scipy.stats costs 0.3-1 s of start-up.
    document = world_document()
    for output in document["outputs"]:  # no free-form answers: verbosity's logit (statsmodels)
        output.pop("response", None)
    path = write_columns(columns_from_document(document), tmp_path / "b.json")
    heavy = ["scipy.stats", "sqlalchemy", "litellm", "celery", "pandas", "matplotlib"]
    args = ["analyze", str(path), "--out", str(tmp_path / "out"), "--format", "json"]
    args += ["--n-bootstrap", "200", "--n-permutations", "200"]
    assert modules_loaded_by(args, heavy) == []
    assert (tmp_path / "out" / "report.json").exists()


AWKWARD_FLOATS = (
    1e-07, 2.5e-05, 1e-05, 9.99e-06, 9.99e-05, 1e-4, 5e-324, 2.2250738585072014e-308, 1e-300,
    -0.0, 0.0, 3.0000000000000004e-05, 0.00012,
)  # fmt: skip
"""Values whose text differs between orjson and ``repr`` (below 1e-4), sit on a boundary of
the two notations, are subnormal, negative zero, or have 17 significant digits."""
AWKWARD_TEXTS = ('say "c"', "ünïcødé ✓", "tab\there", "\\ back", "\u2028 sep", "emoji 🙂", "\x00")


def awkward_document(seed: int, *, uniform: bool) -> dict[str, Any]:
    """A random small bundle of edge cases: non-ASCII, quoted and escaped names and ids,
    probabilities built from `AWKWARD_FLOATS` (integers given as JSON integers too), outputs
    without probabilities, choices, responses and variants, null verdicts and raw texts, and
    models without their optional fields."""
    rng = np.random.default_rng(seed)
    width = int(rng.integers(2, 6))
    items = [
        {
            "id": f"q{k}-{AWKWARD_TEXTS[k % len(AWKWARD_TEXTS)]}",
            "question": f"Question {k}?",
            "options": [f"o{j}" for j in range(width if uniform else int(rng.integers(2, 6)))],
            "gold": 0,
        }
        for k in range(int(rng.integers(3, 8)))
    ]
    models = [{"name": "plain"}, {"name": 'mödel "x"', "family": "f-é"}, {"name": "m\\3"}]
    models += [{"name": f"m{k}", "provider": "p"} for k in range(int(rng.integers(1, 4)))]
    outputs: list[dict[str, Any]] = []
    for model in models:
        for item in items:
            n = len(item["options"])
            output: dict[str, Any] = {"model": model["name"], "item": item["id"]}
            if uniform or rng.random() < 0.8:
                tiny = [float(v) for v in rng.choice(AWKWARD_FLOATS, size=n - 1)]
                if rng.random() < 0.5:  # at most one value this large: they sum below 1
                    tiny[0] = [0.1 + 0.2, 1 / 3, 0.7][int(rng.integers(3))]
                probs: list[Any] = [*tiny, 1.0 - sum(tiny)]
                if rng.random() < 0.2:  # integers as JSON integers, read as floats
                    probs = [1] + [0] * (n - 1)
                output["probs"] = [probs[k] for k in rng.permutation(n)]
            if not uniform or rng.random() < 0.3:
                if "probs" not in output or rng.random() < 0.3:
                    output["choice"] = int(rng.integers(0, n))
                if rng.random() < 0.4:
                    output["response"] = AWKWARD_TEXTS[int(rng.integers(len(AWKWARD_TEXTS)))]
            outputs.append(output)
    if not uniform:
        outputs.append({"model": "plain", "item": items[0]["id"], "choice": 1, "variant": "v✓"})
    verdicts = [
        {
            "judge": models[0]["name"],
            "candidate": model["name"],
            "item": item["id"],
            "verdict": [0, 1, None][int(rng.integers(3))],
            **({"raw": AWKWARD_TEXTS[int(rng.integers(len(AWKWARD_TEXTS)))]} if seed % 2 else {}),
        }
        for model in models[1:]
        for item in items
    ]
    return {"items": items, "models": models, "outputs": outputs, "verdicts": verdicts}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("arrow", [False, True])
def test_canonical_json_of_awkward_bundles_is_the_record_recipe(
    seed: int, arrow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reference: `auditor.schemas.canonical`'s recipe over the record form built by pydantic
    (``canonical_sha256(bundle.model_dump(mode="json"))``), in blocks of 1, 3 and the default,
    by both ways of putting the outputs together (`_joined_outputs`, `_arrow_outputs`)."""
    import auditor.schemas.columns as columns_module

    document = awkward_document(seed, uniform=seed % 3 == 0)
    bundle = parse_bundle(copy.deepcopy(document))
    expected = json.dumps(bundle.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    monkeypatch.setattr(columns_module, "ARROW_MIN_OUTPUTS", 0 if arrow else 10**9)
    for block in (1, 3, columns_module.CANONICAL_BLOCK):
        monkeypatch.setattr(columns_module, "CANONICAL_BLOCK", block)
        columns = columns_from_document(copy.deepcopy(document))
        assert canonical_json(columns) == expected
        assert bundle_sha256(columns) == canonical_sha256(bundle.model_dump(mode="json"))


@pytest.mark.parametrize("seed", range(3))
def test_orjson_floats_reworded_as_repr_writes_them(seed: int) -> None:
    """Reference: ``repr`` of every value (what ``json.dumps`` writes), over magnitudes from
    the smallest subnormal to 1e15, both signs, the notation boundaries (1e-4, 1e-5) and
    values with 17 significant digits; as a list and as a matrix, as the hash writes them."""
    from auditor.schemas.columns import _python_float_text, _python_float_tokens

    rng = np.random.default_rng(seed)
    values = np.concatenate(
        [
            np.exp(rng.uniform(math.log(5e-324), math.log(1e15), 40_000)),
            rng.random(20_000) * 10.0 ** rng.integers(-12, 0, 20_000),
            rng.choice(
                [*AWKWARD_FLOATS, 10.00001, 100.00002, 1e-06, 1.0000000000000001e-05], 5_000
            ),
        ]
    )
    values *= np.where(rng.random(values.size) < 0.3, -1.0, 1.0)
    assert (np.abs(values) < 1e-5).sum() > 1_000 and (
        (np.abs(values) >= 1e-5) & (np.abs(values) < 1e-4)
    ).sum() > 100
    assert _python_float_tokens(values) == [repr(v) for v in values.tolist()]
    matrix = values.reshape(-1, 5)
    text = orjson.dumps(matrix, option=orjson.OPT_SERIALIZE_NUMPY)
    expected = "[" + ",".join("[" + ",".join(map(repr, row)) + "]" for row in matrix.tolist())
    assert _python_float_text(text) == (expected + "]").encode()


def test_awkward_bundles_hold_what_they_are_meant_to() -> None:
    # The edge cases of the test above are there (a guard against a generator that drifts).
    uniform = awkward_document(0, uniform=True)
    mixed = [awkward_document(seed, uniform=False) for seed in (1, 2, 4, 5)]
    values = [v for d in [uniform, *mixed] for o in d["outputs"] for v in o.get("probs") or []]
    assert {1e-07, 2.5e-05, 5e-324, 0.1 + 0.2}.issubset(values)
    assert any(type(v) is int for v in values) and any(math.copysign(1, v) < 0 for v in values)
    widths = {len(o["probs"]) for o in uniform["outputs"]}
    assert len(widths) == 1
    assert any("probs" not in o for d in mixed for o in d["outputs"])
    assert any("response" in o for d in mixed for o in d["outputs"])
    assert any(v["verdict"] is None for d in mixed for v in d["verdicts"])


def test_canonical_json_in_small_blocks_is_the_same_text(monkeypatch: pytest.MonkeyPatch) -> None:
    import auditor.schemas.columns as columns_module

    document = rich_document()
    whole = canonical_json(columns_from_document(copy.deepcopy(document)))
    monkeypatch.setattr(columns_module, "CANONICAL_BLOCK", 2)
    assert canonical_json(columns_from_document(copy.deepcopy(document))) == whole


def test_loading_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    import gc

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(mixed_document()))
    bad.write_text(json.dumps({**mixed_document(), "models": []}))
    assert gc.isenabled()
    load_columns(good)
    assert gc.isenabled()
    with pytest.raises(BundleError):
        load_columns(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        load_columns(good)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _chosen_by_records(document: dict[str, Any]) -> list[int]:
    """The rule, record by record: the stated choice, else the first maximum of the probs."""
    chosen = []
    for output in document["outputs"]:
        if output.get("choice") is not None:
            chosen.append(output["choice"])
        elif output.get("probs") is not None:
            probs = output["probs"]
            chosen.append(probs.index(max(probs)))
        else:
            chosen.append(-1)
    return chosen


def _mixed_outputs_document(seed: int, widths: list[int]) -> dict[str, Any]:
    """Outputs with a stated choice, with probabilities only (ties included), or with both."""
    rng = np.random.default_rng(seed)
    items = [
        {"id": f"q{x}", "question": "?", "options": [str(k) for k in range(w)], "gold": 0}
        for x, w in enumerate(widths)
    ]
    models = [{"name": f"m{m}"} for m in range(6)]
    outputs: list[dict[str, Any]] = []
    for m in range(6):
        for x, width in enumerate(widths):
            kind = rng.integers(3)
            output: dict[str, Any] = {"model": f"m{m}", "item": f"q{x}"}
            if kind != 1:
                probs = rng.dirichlet(np.ones(width))
                if rng.random() < 0.3:  # a tie for the maximum
                    probs[:] = 1.0 / width
                output["probs"] = probs.tolist()
            if kind != 0:
                output["choice"] = int(rng.integers(width))
            outputs.append(output)
    return {"schema_version": "1.0", "items": items, "models": models, "outputs": outputs}


@pytest.mark.parametrize("widths", [[4] * 30, [2, 3, 5, 4] * 8])
def test_chosen_options_follow_the_record_rule(widths: list[int]) -> None:
    document = _mixed_outputs_document(11, widths)
    columns = columns_from_document(document)
    reference = np.array(_chosen_by_records(document))
    assert (reference >= 0).all() and columns.output_choice.min() == -1  # both rules exercised
    assert np.array_equal(columns.chosen_options(), reference)
    rng = np.random.default_rng(5)
    for size in (1, 3, columns.n_outputs // 2, columns.n_outputs):  # copy a few rows / one pass
        rows = np.sort(rng.choice(columns.n_outputs, size=size, replace=False))
        assert np.array_equal(columns.chosen_options(rows), reference[rows])


@pytest.mark.parametrize("probe_name", ["position", "verbosity", "cues", "injection", "repeat"])
def test_battery_probes_on_columns_equal_records_without_building_them(probe_name: str) -> None:
    from auditor.probes import REGISTRY
    from auditor.probes.base import ProbeContext
    from tests.support.battery_world import Planted, simulate

    judges = {"clean": Planted(noise=0.02), "biased": Planted(position=0.3, verbosity=0.7)}
    bundle = simulate(judges, 40, seed=4)
    probe = next(p for p in REGISTRY if p.name == probe_name)
    settings = AnalysisSettings()

    def no_records() -> Any:
        raise AssertionError("the record form was built")

    from_records = probe.compute(ProbeContext(bundle, settings, np.random.default_rng(0)))
    columns = bundle_columns(bundle)
    context = ProbeContext(no_records, settings, np.random.default_rng(0), columns=columns)
    from_columns = probe.compute(context)
    assert from_columns.model_dump() == from_records.model_dump()
    assert any(f.status == "ok" for f in from_records.findings)
