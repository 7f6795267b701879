"""Tests of `auditor.schemas.bundle`: validation messages, normalization, JSONL, loading, the JSON
schema, and the stacked array view (`response_matrix`) checked against hand-written arrays."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from auditor.schemas.bundle import (
    SCHEMA_VERSION,
    Bundle,
    BundleError,
    Item,
    ModelInfo,
    Output,
    Problem,
    Verdict,
    bundle_json_schema,
    load_bundle,
    parse_bundle,
    parse_records,
    response_matrix,
    validate_bundle,
)


def valid_document() -> dict[str, Any]:
    return {
        "schema_version": "1.0",
        "items": [
            {"id": "q1", "question": "Q1?", "options": ["a", "b", "c"], "gold": 2},
            {"id": "q2", "question": "Q2?", "options": ["yes", "no"], "gold": 0},
        ],
        "models": [{"name": "alpha", "provider": "x"}, {"name": "beta"}],
        "outputs": [
            {"model": "alpha", "item": "q1", "probs": [0.2, 0.3, 0.5]},
            {"model": "alpha", "item": "q2", "probs": [0.9, 0.1]},
            {"model": "beta", "item": "q1", "choice": 1},
            {"model": "beta", "item": "q2", "probs": [0.4, 0.6], "choice": 1},
        ],
        "verdicts": [
            {"judge": "alpha", "candidate": "beta", "item": "q1", "verdict": 1},
            {"judge": "beta", "candidate": "alpha", "item": "q2", "verdict": None, "raw": "?"},
        ],
    }


def edited(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = valid_document()
    edit(document)
    return document


def problems_of(document: dict[str, Any], **kwargs: Any) -> list[Problem]:
    with pytest.raises(BundleError) as caught:
        parse_bundle(document, **kwargs)
    assert isinstance(caught.value, ValueError)
    # The exception message carries the located problems too.
    for problem in caught.value.problems[:5]:
        assert str(problem) in str(caught.value)
    return caught.value.problems


def test_valid_document_parses() -> None:
    bundle = parse_bundle(valid_document())
    assert bundle.schema_version == SCHEMA_VERSION == "1.0"
    assert [item.id for item in bundle.items] == ["q1", "q2"]
    assert bundle.outputs[0].probs == [0.2, 0.3, 0.5]
    assert bundle.verdicts[1].verdict is None


def _set(section: str, index: int, field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document[section][index][field] = value

    return edit


def _append(section: str, record: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document[section].append(record)

    return edit


def _clear(section: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document[section] = []

    return edit


@pytest.mark.parametrize(
    ("edit", "record", "field", "message"),
    [
        (_set("outputs", 1, "probs", [1.2, -0.2]), "outputs[1]", ".probs", "non-negative"),
        (_set("outputs", 1, "probs", [math.nan, 0.5]), "outputs[1]", ".probs", "finite"),
        (_set("outputs", 1, "probs", [0.5, 0.5 + 2e-6]), "outputs[1]", ".probs", "sum to 1"),
        (_set("outputs", 1, "probs", [0.4, 0.4]), "outputs[1]", ".probs", "sum to 1"),
        (_set("outputs", 0, "probs", [0.5, 0.5]), "outputs[0]", ".probs", "item has 3 options"),
        (_set("items", 0, "gold", 3), "items[0]", ".gold", "0..2; got 3"),
        (_set("items", 1, "gold", -1), "items[1]", ".gold", "0..1; got -1"),
        (_set("outputs", 2, "choice", 3), "outputs[2]", ".choice", "0..2; got 3"),
        (_set("outputs", 2, "choice", -1), "outputs[2]", ".choice", "0..2; got -1"),
        (_set("outputs", 0, "model", "gamma"), "outputs[0]", ".model", "unknown model 'gamma'"),
        (_set("outputs", 0, "item", "q9"), "outputs[0]", ".item", "unknown item 'q9'"),
        (_set("verdicts", 0, "judge", "gamma"), "verdicts[0]", ".judge", "unknown model"),
        (_set("verdicts", 1, "candidate", "gamma"), "verdicts[1]", ".candidate", "unknown model"),
        (_set("verdicts", 1, "item", "q9"), "verdicts[1]", ".item", "unknown item 'q9'"),
        (_set("items", 1, "id", "q1"), "items[1]", ".id", "duplicate item id 'q1'"),
        (_set("models", 1, "name", "alpha"), "models[1]", ".name", "duplicate model name"),
        (_set("items", 1, "options", ["only"]), "items[1]", ".options", "at least 2 options"),
        (_clear("items"), "items", "", "at least one item"),
        (_clear("models"), "models", "", "at least one model"),
        (
            _append("outputs", {"model": "beta", "item": "q2"}),
            "outputs[4]",
            "",
            "`probs`, `choice`",
        ),
        (
            _append("outputs", {"model": "alpha", "item": "q1", "choice": 0}),
            "outputs[4]",
            "",
            "duplicate output",
        ),
        (
            _append(
                "verdicts", {"judge": "alpha", "candidate": "beta", "item": "q1", "verdict": 0}
            ),
            "verdicts[2]",
            "",
            "duplicate verdict",
        ),
    ],
)
def test_validation_problem_names_record_and_field(
    edit: Callable[[dict[str, Any]], None], record: str, field: str, message: str
) -> None:
    problems = problems_of(edited(edit))
    matching = [p for p in problems if p.path.startswith(record) and message in p.message]
    assert matching, problems
    if field:
        assert matching[0].path.endswith(field), matching[0].path


def test_output_problem_path_names_model_and_item() -> None:
    (problem,) = problems_of(edited(_set("outputs", 3, "probs", [0.7, 0.7])))
    assert problem.path == "outputs[3] (model='beta', item='q2').probs"


def test_probabilities_within_tolerance_are_accepted() -> None:
    bundle = parse_bundle(edited(_set("outputs", 1, "probs", [0.5, 0.5 + 9e-7])))
    assert bundle.outputs[1].probs == [0.5, 0.5 + 9e-7]  # accepted as given, not repaired


def test_every_problem_is_reported() -> None:
    def edit(document: dict[str, Any]) -> None:
        document["outputs"][0]["probs"] = [-1.0, 1.0, 1.0]
        document["outputs"][2]["choice"] = 7
        document["verdicts"][0]["judge"] = "nobody"

    problems = problems_of(edited(edit))
    assert [p.path.split(" ")[0] for p in problems] == ["outputs[0]", "outputs[2]", "verdicts[0]"]


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (_set("items", 0, "gold", "first"), "items[0].gold"),
        (_set("outputs", 1, "probs", "0.5 0.5"), "outputs[1].probs"),
        (_set("outputs", 1, "color", "red"), "outputs[1].color"),
        (_set("verdicts", 0, "verdict", 2), "verdicts[0].verdict"),
    ],
)
def test_schema_level_problems_name_record_and_field(
    edit: Callable[[dict[str, Any]], None], path: str
) -> None:
    assert path in [p.path for p in problems_of(edited(edit))]


def test_document_must_be_an_object() -> None:
    with pytest.raises(BundleError, match="must be a JSON object"):
        parse_bundle([valid_document()])


# --- normalization -------------------------------------------------------------------------------


def test_normalize_sum_divides_by_the_total() -> None:
    document = edited(_set("outputs", 0, "probs", [2.0, 1.0, 1.0]))
    with pytest.raises(BundleError, match="normalize sum"):
        parse_bundle(document)
    bundle = parse_bundle(document, normalize="sum")
    assert bundle.outputs[0].probs == pytest.approx([0.5, 0.25, 0.25], abs=1e-15)
    assert bundle.outputs[1].probs == pytest.approx([0.9, 0.1], abs=1e-15)  # already summed to 1


def test_normalize_sum_rejects_negative_and_zero_totals() -> None:
    negative = problems_of(edited(_set("outputs", 0, "probs", [2.0, -1.0, 1.0])), normalize="sum")
    assert "non-negative" in negative[0].message and negative[0].path.startswith("outputs[0]")
    zero = problems_of(edited(_set("outputs", 0, "probs", [0.0, 0.0, 0.0])), normalize="sum")
    assert "cannot be normalized" in zero[0].message


def test_huge_values_do_not_overflow_the_checks() -> None:
    huge = [1e308, 1e308]
    (problem,) = problems_of(edited(_set("outputs", 1, "probs", huge)))
    assert problem.path.endswith(".probs") and "they sum to inf" in problem.message
    bundle = parse_bundle(edited(_set("outputs", 1, "probs", huge)), normalize="sum")
    assert bundle.outputs[1].probs == [0.5, 0.5]
    (problem,) = problems_of(edited(_set("outputs", 1, "probs", [math.inf, 0.0])))
    assert "finite" in problem.message


def test_normalize_softmax_turns_logprobs_and_logits_into_probabilities() -> None:
    logprobs = [math.log(0.2), math.log(0.3), math.log(0.5)]
    logits = [v + 17.0 for v in logprobs]  # softmax ignores a constant shift
    for values in (logprobs, logits):
        bundle = parse_bundle(edited(_set("outputs", 0, "probs", values)), normalize="softmax")
        assert bundle.outputs[0].probs == pytest.approx([0.2, 0.3, 0.5], abs=1e-12)
    with_zero = [math.log(0.4), -math.inf, math.log(0.6)]
    bundle = parse_bundle(edited(_set("outputs", 0, "probs", with_zero)), normalize="softmax")
    assert bundle.outputs[0].probs == pytest.approx([0.4, 0.0, 0.6], abs=1e-12)
    # exp(1) / (exp(1) + exp(0)) for unnormalized logits [1, 0]
    bundle = parse_bundle(edited(_set("outputs", 1, "probs", [1.0, 0.0])), normalize="softmax")
    assert bundle.outputs[1].probs == pytest.approx([math.e / (math.e + 1), 1 / (math.e + 1)])


def test_normalize_softmax_rejects_nan_and_all_minus_infinity() -> None:
    nan = problems_of(edited(_set("outputs", 1, "probs", [math.nan, 0.0])), normalize="softmax")
    assert nan[0].path.startswith("outputs[1]") and nan[0].path.endswith(".probs")
    gone = problems_of(
        edited(_set("outputs", 1, "probs", [-math.inf, -math.inf])), normalize="softmax"
    )
    assert "every value is -inf" in gone[0].message


def test_unknown_normalization_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^normalize: must be one of none, sum, softmax"):
        parse_bundle(valid_document(), normalize="max")  # type: ignore[arg-type]


def test_validate_bundle_returns_the_same_bundle_without_normalization() -> None:
    bundle = Bundle.model_validate(valid_document())
    assert validate_bundle(bundle) is bundle


# --- JSONL ---------------------------------------------------------------------------------------


def jsonl_lines(document: dict[str, Any]) -> list[str]:
    lines = [json.dumps({"kind": "header", "schema_version": document["schema_version"]})]
    for section, kind in (
        ("items", "item"),
        ("models", "model"),
        ("outputs", "output"),
        ("verdicts", "verdict"),
    ):
        lines += [json.dumps({"kind": kind, **record}) for record in document[section]]
    return lines


def test_parse_records_equals_parse_bundle() -> None:
    lines = jsonl_lines(valid_document())
    lines.insert(3, "   ")  # blank lines are skipped
    from_records = parse_records(lines)
    assert from_records.model_dump() == parse_bundle(valid_document()).model_dump()
    assert isinstance(from_records.outputs[0], Output)
    assert isinstance(from_records.items[0], Item)
    assert isinstance(from_records.models[0], ModelInfo)
    assert isinstance(from_records.verdicts[0], Verdict)


def test_parse_records_interleaved_kinds() -> None:
    lines = jsonl_lines(valid_document())
    reordered = [
        lines[0],
        lines[5],
        lines[1],
        lines[3],
        lines[6],
        lines[2],
        *lines[4:5],
        *lines[7:],
    ]
    assert sorted(reordered) == sorted(lines)
    bundle = parse_records(reordered)
    assert len(bundle.outputs) == 4 and len(bundle.items) == 2


@pytest.mark.parametrize(
    ("line", "path", "message"),
    [
        ('{"kind": "item", "id": "q3", ', "line 3", "not valid JSON"),
        ('["item"]', "line 3", "must be a JSON object"),
        ('{"kind": "answer", "model": "alpha"}', "line 3.kind", "got 'answer'"),
        ('{"model": "alpha"}', "line 3.kind", "got None"),
        ('{"kind": "header", "schema_version": "9.9"}', "line 3.schema_version", "unsupported"),
        (
            '{"kind": "output", "model": "alpha", "item": "q1", "probs": "x"}',
            "line 3 (output).probs",
            "",
        ),
        (
            '{"kind": "item", "id": "q3", "question": "?", "options": ["a", "b"]}',
            "line 3 (item).gold",
            "",
        ),
    ],
)
def test_parse_records_problems_name_the_line(line: str, path: str, message: str) -> None:
    lines = jsonl_lines(valid_document())
    lines.insert(2, line)
    with pytest.raises(BundleError) as caught:
        parse_records(lines)
    matching = [p for p in caught.value.problems if p.path == path and message in p.message]
    assert matching, caught.value.problems


def test_parse_records_cross_record_problem_names_record_and_line() -> None:
    document = edited(_set("outputs", 2, "choice", 5))
    lines = jsonl_lines(document)  # header, 2 items, 2 models, then outputs: outputs[2] is line 8
    with pytest.raises(BundleError) as caught:
        parse_records(lines, source="run.jsonl line")
    (problem,) = caught.value.problems
    assert problem.path == "outputs[2] (run.jsonl line 8, model='beta', item='q1').choice"


def test_parse_records_normalizes() -> None:
    lines = jsonl_lines(edited(_set("outputs", 0, "probs", [1.0, 1.0, 2.0])))
    assert parse_records(lines, normalize="sum").outputs[0].probs == [0.25, 0.25, 0.5]


# --- files ---------------------------------------------------------------------------------------


def test_load_bundle_json_and_jsonl(tmp_path: Path) -> None:
    as_json = tmp_path / "bundle.json"
    as_json.write_text(json.dumps(valid_document()), encoding="utf-8")
    as_jsonl = tmp_path / "bundle.jsonl"
    as_jsonl.write_text("\n".join(jsonl_lines(valid_document())) + "\n", encoding="utf-8")
    expected = parse_bundle(valid_document()).model_dump()
    assert load_bundle(as_json).model_dump() == expected
    assert load_bundle(str(as_jsonl)).model_dump() == expected


def test_load_bundle_jsonl_problem_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    lines = jsonl_lines(valid_document())
    lines[4] = "{not json"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(BundleError) as caught:
        load_bundle(path)
    assert caught.value.problems[0].path == "run.jsonl line 5"


def test_load_bundle_normalizes(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(edited(_set("outputs", 1, "probs", [3.0, 1.0]))), encoding="utf-8")
    assert load_bundle(path, normalize="sum").outputs[1].probs == [0.75, 0.25]


def test_load_bundle_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(BundleError) as caught:
        load_bundle(missing)
    assert caught.value.problems[0].path == str(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "items": [\n  oops', encoding="utf-8")
    with pytest.raises(BundleError, match=r"broken\.json: not valid JSON at line 3"):
        load_bundle(broken)


# --- JSON schema ---------------------------------------------------------------------------------


def test_bundle_json_schema_is_a_valid_schema_with_the_fields() -> None:
    schema = bundle_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == {
        "schema_version",
        "items",
        "models",
        "outputs",
        "verdicts",
        "comparisons",
        "labels",
    }
    assert set(schema["required"]) == {"items", "models"}
    definitions = schema["$defs"]
    assert {"id", "question", "options", "gold"} <= set(definitions["Item"]["properties"])
    assert {"model", "item", "probs", "choice", "response", "variant"} == set(
        definitions["Output"]["properties"]
    )
    assert {"judge", "candidate", "item", "verdict", "raw", "variant"} == set(
        definitions["Verdict"]["properties"]
    )
    assert definitions["Output"]["properties"]["probs"]["description"]
    # The schema accepts a valid document and rejects a structurally broken one.
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(valid_document())
    broken = valid_document()
    del broken["items"][0]["gold"]
    assert not validator.is_valid(broken)
    json.dumps(schema)


# --- the array view ------------------------------------------------------------------------------


def tiny_bundle() -> Bundle:
    """Items: q1 (3 options, gold 2), q2 (2 options, gold 0), q3 (4 options, gold 1).

    p: probabilistic on q1 and q2 (q2 is a tie -> option 0), missing q3.
    d: discrete-only, choices on q1 (0) and q3 (3), missing q2.
    m: probs on q1, only a choice on q2 -> discrete-only; missing q3.
    s: probs and a stated choice that is not the argmax on all three items.
    e: no outputs.
    """
    return parse_bundle(
        {
            "items": [
                {"id": "q1", "question": "?", "options": ["a", "b", "c"], "gold": 2},
                {"id": "q2", "question": "?", "options": ["a", "b"], "gold": 0},
                {"id": "q3", "question": "?", "options": ["a", "b", "c", "d"], "gold": 1},
            ],
            "models": [{"name": name} for name in ("p", "d", "m", "s", "e")],
            "outputs": [
                {"model": "p", "item": "q2", "probs": [0.5, 0.5]},
                {"model": "d", "item": "q3", "choice": 3},
                {"model": "p", "item": "q1", "probs": [0.1, 0.6, 0.3]},
                {"model": "d", "item": "q1", "choice": 0},
                {"model": "m", "item": "q1", "probs": [0.2, 0.2, 0.6]},
                {"model": "m", "item": "q2", "choice": 1},
                {"model": "s", "item": "q1", "probs": [0.7, 0.2, 0.1], "choice": 2},
                {"model": "s", "item": "q2", "probs": [0.25, 0.75], "choice": 0},
                {"model": "s", "item": "q3", "probs": [0.1, 0.2, 0.3, 0.4], "choice": 1},
            ],
        }
    )


def test_response_matrix_hand_checked_arrays() -> None:
    responses = response_matrix(tiny_bundle())
    assert responses.models == ("p", "d", "m", "s", "e")
    assert responses.items == ("q1", "q2", "q3")
    assert responses.offsets.tolist() == [0, 3, 5, 9]
    assert responses.option_counts.tolist() == [3, 2, 4]
    assert responses.gold.tolist() == [2, 0, 1]
    assert responses.gold_columns.tolist() == [2, 3, 6]
    expected_probs = np.array(
        [
            # q1 ........  q2 ......  q3 ...............
            [0.1, 0.6, 0.3, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0],  # p
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # d: one-hot choices
            [0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # m: one-hot (argmax on q1)
            [0.7, 0.2, 0.1, 0.25, 0.75, 0.1, 0.2, 0.3, 0.4],  # s
            [0.0] * 9,  # e
        ]
    )
    assert np.array_equal(responses.probs, expected_probs)
    assert responses.choice.tolist() == [
        [1, 0, -1],
        [0, -1, 3],
        [2, 1, -1],
        [2, 0, 1],  # stated choices win over the argmax
        [-1, -1, -1],
    ]
    assert responses.present.tolist() == [
        [True, True, False],
        [True, False, True],
        [True, True, False],
        [True, True, True],
        [False, False, False],
    ]
    assert responses.probabilistic.tolist() == [True, False, False, True, False]
    assert responses.probs.dtype == np.float64 and responses.choice.dtype == np.int64
    assert responses.index("m") == 2


def test_response_matrix_selects_and_orders_models() -> None:
    responses = response_matrix(tiny_bundle(), ["s", "p"])
    assert responses.models == ("s", "p")
    assert responses.choice.tolist() == [[2, 0, 1], [1, 0, -1]]
    assert responses.probabilistic.tolist() == [True, True]
    with pytest.raises(KeyError, match="'d'"):
        responses.index("d")
    with pytest.raises(ValueError, match="'p' is named more than once"):
        response_matrix(tiny_bundle(), ["p", "s", "p"])
    with pytest.raises(ValueError, match="'zeta'"):
        response_matrix(tiny_bundle(), ["p", "zeta"])


def test_response_matrix_argmax_ties_go_to_lowest_index() -> None:
    document = valid_document()
    document["outputs"] = [
        {"model": "alpha", "item": "q1", "probs": [0.4, 0.2, 0.4]},
        {"model": "beta", "item": "q1", "probs": [0.2, 0.4, 0.4]},
        {"model": "alpha", "item": "q2", "probs": [0.5, 0.5]},
    ]
    responses = response_matrix(parse_bundle(document))
    assert responses.choice.tolist() == [[0, 0], [1, -1]]


def test_response_matrix_matches_a_per_output_loop_on_a_larger_bundle() -> None:
    rng = np.random.default_rng(0)
    counts = rng.integers(2, 7, size=40)
    document: dict[str, Any] = {
        "items": [
            {"id": f"q{x}", "question": "?", "options": ["o"] * int(k), "gold": int(k) - 1}
            for x, k in enumerate(counts)
        ],
        "models": [{"name": f"m{i}"} for i in range(12)],
        "outputs": [],
    }
    for i in range(12):
        for x, k in enumerate(counts):
            if rng.random() < 0.2:
                continue
            record: dict[str, Any] = {"model": f"m{i}", "item": f"q{x}"}
            if i != 3 or x % 2:
                record["probs"] = rng.dirichlet(np.ones(k)).tolist()
            if "probs" not in record or (i == 4 and rng.random() < 0.7):
                record["choice"] = int(rng.integers(0, k))
            document["outputs"].append(record)
    rng.shuffle(document["outputs"])
    bundle = parse_bundle(copy.deepcopy(document))
    responses = response_matrix(bundle)
    # Reference: fill the arrays output by output.
    offsets = np.concatenate([[0], np.cumsum(counts)])
    probs = np.zeros((12, offsets[-1]))
    choice = -np.ones((12, 40), dtype=int)
    discrete = set()
    for output in document["outputs"]:
        i, x = int(output["model"][1:]), int(output["item"][1:])
        if "probs" in output:
            probs[i, offsets[x] : offsets[x + 1]] = output["probs"]
        else:
            discrete.add(i)
        p = output.get("probs")
        choice[i, x] = output["choice"] if "choice" in output else int(np.argmax(p))
    for i in discrete:
        probs[i] = 0.0
        for x in range(40):
            if choice[i, x] >= 0:
                probs[i, offsets[x] + choice[i, x]] = 1.0
    assert discrete == {3}
    assert np.array_equal(responses.probs, probs)
    assert np.array_equal(responses.choice, choice)
    assert np.array_equal(responses.present, choice >= 0)
    assert responses.probabilistic.tolist() == [i != 3 for i in range(12)]
