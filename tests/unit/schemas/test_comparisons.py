"""Pairwise comparisons in the bundle: shape, validation naming record and field, JSONL records."""

from __future__ import annotations

import json

import pytest

from auditor.schemas.bundle import BundleError, parse_bundle, parse_records
from auditor.schemas.candidates import parse_candidate, variant_id


def _comparison(**overrides):
    record = {
        "judge": "j1",
        "item": "q1",
        "candidate_a": "m1",
        "candidate_b": "m2",
        "winner": "m1",
        "raw": "A",
    }
    record.update(overrides)
    return record


def _document(*comparisons):
    return {
        "items": [],
        "models": [{"name": "j1"}, {"name": "m1"}, {"name": "m2"}],
        "comparisons": list(comparisons),
    }


def test_a_bundle_of_comparisons_alone_is_valid():
    bundle = parse_bundle(
        _document(
            _comparison(),
            _comparison(
                candidate_a="m2",
                candidate_b="m1",
                winner="tie",
                gold="m1",
                human=[{"annotator": "h1", "choice": "m1"}, {"annotator": "h2", "choice": "tie"}],
            ),
            _comparison(candidate_b="m1::pad:restate", winner=None, raw="hmm"),
        )
    )
    assert len(bundle.comparisons) == 3 and bundle.items == [] and bundle.outputs == []
    assert bundle.comparisons[1].human[1].choice == "tie"


def test_an_empty_bundle_is_still_invalid():
    with pytest.raises(BundleError, match="items"):
        parse_bundle(_document())


@pytest.mark.parametrize(
    ("overrides", "where", "message"),
    [
        ({"judge": "nobody"}, "comparisons[0] (judge='nobody'", "judge: unknown model 'nobody'"),
        ({"winner": "m3"}, ").winner", "got 'm3'"),
        ({"gold": "A"}, ").gold", "got 'A'"),
        ({"candidate_b": "m1"}, ").candidate_b", "must differ"),
        ({"candidate_b": "m2::shout:x"}, ").candidate_b", "m2::shout:x"),
        ({"human": [{"annotator": "h", "choice": "B"}]}, ").human[0].choice", "got 'B'"),
        (
            {"human": [{"annotator": "h", "choice": "m1"}, {"annotator": "h", "choice": "m2"}]},
            ").human[1].annotator",
            "duplicate annotator 'h'",
        ),
    ],
)
def test_problems_name_record_field_and_value(overrides, where, message):
    with pytest.raises(BundleError) as caught:
        parse_bundle(_document(_comparison(**overrides)))
    text = str(caught.value)
    assert where in text and message in text


def test_duplicate_comparison_is_refused():
    with pytest.raises(BundleError, match="duplicate comparison"):
        parse_bundle(_document(_comparison(), _comparison(winner="m2")))


def test_jsonl_comparison_records_name_their_line():
    lines = [
        json.dumps({"kind": "model", "name": "j1"}),
        json.dumps({"kind": "model", "name": "m1"}),
        json.dumps({"kind": "comparison", **_comparison()}),
        json.dumps({"kind": "comparison", **_comparison(candidate_a="m2", winner="x")}),
    ]
    with pytest.raises(BundleError) as caught:
        parse_records(lines)
    assert "comparisons[1] (line 4," in str(caught.value)
    bundle = parse_records(lines[:3])
    assert bundle.comparisons[0].winner == "m1"


def test_candidate_grammar():
    assert parse_candidate("openai/gpt-4o").kind is None
    padded = parse_candidate("openai/gpt-4o::pad:restate")
    assert (padded.base, padded.kind, padded.name) == ("openai/gpt-4o", "pad", "restate")
    injected = parse_candidate(variant_id(None, "inject", "colon"))
    assert injected.base is None and injected.id == "::inject:colon"
    for bad in ("::pad:x", "m::inject:x", "m::cue:", "m::cue"):
        with pytest.raises(ValueError, match="candidate"):
            parse_candidate(bad)
