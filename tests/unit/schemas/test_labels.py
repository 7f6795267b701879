"""Three-way labels and template variants in the bundle: validation names record and field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from auditor.schemas.bundle import (
    BundleError,
    parse_bundle,
    parse_records,
    primary_view,
    response_matrix,
)


def _document() -> dict[str, Any]:
    return {
        "items": [
            {"id": "q1", "question": "2+2?", "options": ["3", "4"], "gold": 1, "difficulty": 0.2},
            {"id": "q2", "question": "3+3?", "options": ["6", "7"], "gold": 0},
        ],
        "models": [{"name": "a"}, {"name": "j"}],
        "outputs": [
            {"model": "a", "item": "q1", "choice": 1, "response": "4"},
            {"model": "a", "item": "q1", "choice": 0, "variant": "mcq-p1"},
            {"model": "a", "item": "q2", "choice": 0, "response": "I don't know"},
        ],
        "verdicts": [
            {"judge": "j", "candidate": "a", "item": "q1", "verdict": 1},
            {"judge": "j", "candidate": "a", "item": "q1", "verdict": 0, "variant": "judge-p1"},
        ],
        "labels": [
            {"item": "q1", "candidate": "a", "outcome": "correct", "annotator": "ann-1"},
            {"item": "q2", "candidate": "a", "outcome": "avoidant", "annotator": "ann-1"},
            {
                "item": "q2",
                "candidate": "a",
                "outcome": "avoidant",
                "annotator": "grader",
                "source": "grader",
            },
        ],
    }


def _problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(BundleError) as raised:
        parse_bundle(document)
    return [str(p) for p in raised.value.problems]


def test_labels_and_variants_are_accepted_and_the_primary_view_drops_variants() -> None:
    bundle = parse_bundle(_document())
    assert [label.outcome for label in bundle.labels] == ["correct", "avoidant", "avoidant"]
    assert bundle.labels[2].source == "grader" and bundle.labels[0].source == "human"
    primary = primary_view(bundle)
    assert [o.variant for o in primary.outputs] == [None, None]
    assert [v.variant for v in primary.verdicts] == [None]
    # The array view reads the primary template's answers only (choice 1, not the variant's 0).
    assert response_matrix(bundle).choice.tolist() == [[1, 0], [-1, -1]]
    document = _document()
    clean = parse_bundle(
        {**document, "outputs": document["outputs"][:1], "verdicts": document["verdicts"][:1]}
    )
    assert primary_view(clean) is clean


def test_outcome_outside_the_three_values_names_record_and_field() -> None:
    document = _document()
    document["labels"][1]["outcome"] = "wrong"
    (problem,) = _problems(document)
    assert problem.startswith("labels[1].outcome:")
    assert "'correct', 'avoidant' or 'incorrect'" in problem and "'wrong'" in problem


def test_labels_naming_unknown_items_or_candidates_name_record_and_field() -> None:
    document = _document()
    document["labels"][0]["item"] = "q9"
    document["labels"][1]["candidate"] = "ghost"
    problems = _problems(document)
    assert problems == [
        "labels[0] (item='q9', candidate='a', annotator='ann-1').item: unknown item 'q9'",
        "labels[1] (item='q2', candidate='ghost', annotator='ann-1').candidate: "
        "unknown model 'ghost'",
    ]


def test_duplicates_count_the_variant() -> None:
    document = _document()
    document["outputs"].append({"model": "a", "item": "q1", "choice": 1, "variant": "mcq-p1"})
    document["labels"].append(dict(document["labels"][0]))
    problems = _problems(document)
    assert problems == [
        "outputs[3] (model='a', item='q1'): duplicate output for this model, item and variant",
        "labels[3] (item='q1', candidate='a', annotator='ann-1'): duplicate label for this "
        "item, candidate and annotator",
    ]


def test_jsonl_label_records_name_their_line() -> None:
    document = _document()
    lines = [json.dumps({"kind": "item", **item}) for item in document["items"]]
    lines += [json.dumps({"kind": "model", **model}) for model in document["models"]]
    lines.append(
        json.dumps(
            {
                "kind": "label",
                "item": "q1",
                "candidate": "a",
                "outcome": "incorrect",
                "annotator": "x",
            }
        )
    )
    assert parse_records(lines).labels[0].outcome == "incorrect"
    lines.append(
        json.dumps(
            {"kind": "label", "item": "q1", "candidate": "a", "outcome": "maybe", "annotator": "y"}
        )
    )
    with pytest.raises(BundleError, match=r"line 6 \(label\)\.outcome"):
        parse_records(lines)
