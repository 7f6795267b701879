"""`auditor import pairwise`: the table round-trips exactly; bad rows name file, line, column."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.importers.pairwise import import_pairwise, write_pairwise
from auditor.schemas.bundle import BundleError, load_bundle

ROWS = [
    {
        "judge": "gpt-4o",
        "item": "81",
        "candidate_a": "vicuna-13b",
        "candidate_b": "alpaca-13b",
        "winner": "vicuna-13b",
        "raw": "[[A]]",
        "gold": "vicuna-13b",
        "human": '{"expert_1": "vicuna-13b", "expert_2": "tie"}',
        "question": 'Compose a travel blog post, "Hawaii".',
        "text_a": "Aloha!\nLine two, with a comma.",
        "text_b": "Hawaii is nice.",
    },
    {
        "judge": "gpt-4o",
        "item": "81",
        "candidate_a": "alpaca-13b",
        "candidate_b": "vicuna-13b",
        "winner": "",
        "raw": "I cannot decide",
        "gold": "vicuna-13b",
        "human": "",
        "question": 'Compose a travel blog post, "Hawaii".',
        "text_a": "Hawaii is nice.",
        "text_b": "Aloha!\nLine two, with a comma.",
    },
    {
        "judge": "claude",
        "item": "82",
        "candidate_a": "vicuna-13b::pad:restate",
        "candidate_b": "vicuna-13b",
        "winner": "tie",
        "raw": "[[C]]",
        "gold": "",
        "human": '{"expert_1": null}',
        "question": "",
        "text_a": "",
        "text_b": "",
    },
]


def _write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_csv_round_trips_exactly(tmp_path):
    source = tmp_path / "mt_bench.csv"
    _write_csv(source, ROWS)
    result = import_pairwise(source)
    bundle = result.bundle
    assert [m.name for m in bundle.models] == ["gpt-4o", "claude"]
    assert bundle.comparisons[0].human[1].choice == "tie"
    assert bundle.comparisons[1].winner is None  # unparseable, not coerced
    again = tmp_path / "again.csv"
    write_pairwise(bundle, again)
    assert again.read_text(encoding="utf-8") == source.read_text(encoding="utf-8")


def test_jsonl_round_trips_exactly(tmp_path):
    source = tmp_path / "arena.jsonl"
    rows = [{k: (v if v != "" else None) for k, v in row.items()} for row in ROWS]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    bundle = import_pairwise(source).bundle
    again = tmp_path / "again.jsonl"
    write_pairwise(bundle, again)
    assert again.read_text(encoding="utf-8") == source.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "located", "message"),
    [
        ({"winer": "x"}, "t.csv line 1.winer", "unknown column"),
        ({"winner": "gpt-5"}, "t.csv line 2: comparisons[0]", "got 'gpt-5'"),
        ({"human": "{not json"}, "t.csv line 2.human", "not a JSON object"),
        ({"candidate_b": ""}, "t.csv line 2.candidate_b", "must not be empty"),
    ],
)
def test_bad_rows_are_located(tmp_path, change, located, message):
    row = dict(ROWS[0])
    row.update(change)
    source = tmp_path / "t.csv"
    _write_csv(source, [row])
    with pytest.raises(BundleError) as caught:
        import_pairwise(source)
    text = str(caught.value)
    assert located in text and message in text


def test_missing_required_column(tmp_path):
    source = tmp_path / "t.csv"
    _write_csv(source, [{k: v for k, v in ROWS[0].items() if k != "raw"}])
    with pytest.raises(BundleError, match=r"t.csv line 1.raw: required column is missing"):
        import_pairwise(source)


def test_cli_import_pairwise(tmp_path):
    source = tmp_path / "p.csv"
    _write_csv(source, ROWS)
    out = tmp_path / "bundle.jsonl"
    result = CliRunner().invoke(app, ["import", "pairwise", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 comparisons" in result.output
    assert len(load_bundle(out).comparisons) == 3
    bad = tmp_path / "bad.csv"
    _write_csv(bad, [{**ROWS[0], "winner": "nobody"}])
    result = CliRunner().invoke(app, ["import", "pairwise", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "bad.csv line 2" in result.output
