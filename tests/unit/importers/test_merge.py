"""`merge_bundles` / `auditor merge`: bundles from several tools into one, conflicts by record.

Sources: Inspect's own logs (tests/data/importers/real/inspect/) imported here, and a small
table of human verdicts written here. Expected records are the sources' records, counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.cli.imports import write_bundle
from auditor.importers import import_inspect, import_table
from auditor.importers.merge import merge_bundles
from auditor.schemas.bundle import BundleError, load_bundle

REAL = Path(__file__).parents[2] / "data" / "importers" / "real" / "inspect"
ITEMS = {
    "q1": ("What is the capital of France?", ["Berlin", "Paris", "Rome", "Madrid"], "B"),
    "q2": ("What is 2 + 2?", ["4", "3", "5", "22"], "A"),
}


def human_table(path: Path, gold_q2: str = "A", verdict_q1: int = 1) -> Path:
    rows = ["item_id,question,option_1,option_2,option_3,option_4,gold,model,judge,verdict"]
    for item, (question, options, gold) in ITEMS.items():
        gold = gold_q2 if item == "q2" else gold
        verdict = verdict_q1 if item == "q1" else 0
        rows.append(f'{item},"{question}",{",".join(options)},{gold},mockllm/model,human,{verdict}')
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path, Path]:
    answers = tmp_path / "answers.json"
    write_bundle(import_inspect([REAL / "mc.eval"]).bundle, answers)
    graded = tmp_path / "graded.json"
    write_bundle(import_inspect([REAL / "mc.eval", REAL / "open-two-graders.eval"]).bundle, graded)
    humans = tmp_path / "humans.json"
    table = import_table(human_table(tmp_path / "humans.csv"), table_format="csv")
    write_bundle(table.bundle, humans)
    return answers, graded, humans


def test_merge_keeps_each_record_once_and_counts_the_repeats(sources) -> None:
    answers, graded, humans = sources
    result = merge_bundles([answers, graded, humans])
    bundle = result.bundle
    assert len(bundle.items) == 6
    assert len(bundle.outputs) == 6  # the same six answers in answers.json and graded.json
    judges = sorted({v.judge for v in bundle.verdicts})
    assert judges == ["human", "openai-api/local/judge-a", "openai-api/local/judge-b"]
    assert len(bundle.verdicts) == 6 + 6 + 2
    # graded.json carries the free-form responses that answers.json leaves empty
    assert "outputs read twice, completed by the other bundle's fields: 6" in result.notes
    assert {o.item: o.response for o in bundle.outputs}["q1"] == "Paris"
    assert "items read twice, the same in both bundles: 8" in result.notes  # 6 + 2
    assert result.report()[0] == "read: 3 bundles"


def test_conflicting_gold_and_a_planted_answer_are_reported_by_record(
    sources, tmp_path: Path
) -> None:
    answers, _graded, _humans = sources
    other = tmp_path / "other.json"
    write_bundle(
        import_table(human_table(tmp_path / "h.csv", gold_q2="B"), table_format="csv").bundle,
        other,
    )
    # plant a mis-attribution: another model's answer under mockllm/model's name
    planted = tmp_path / "planted.json"
    document = json.loads(answers.read_text())
    document["outputs"][0]["choice"] = 3
    planted.write_text(json.dumps(document))
    with pytest.raises(BundleError) as error:
        merge_bundles([answers, other, planted])
    assert [str(p) for p in error.value.problems] == [
        f"items (id='q2'): {answers} has gold 0, {other} has gold 1",
        f"outputs (model='mockllm/model', item='q1'): {answers} has choice 1, {planted} has "
        "choice 3",
    ]


def test_merge_cli_writes_the_bundle_and_exits_2_on_conflicts(sources, tmp_path: Path) -> None:
    answers, graded, humans = sources
    out = tmp_path / "merged.json"
    runner = CliRunner()
    result = runner.invoke(
        app, ["merge", str(answers), str(graded), str(humans), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(load_bundle(out).verdicts) == 14
    assert result.stdout.splitlines()[-1] == f"wrote {out}"
    other = tmp_path / "other.json"
    write_bundle(
        import_table(human_table(tmp_path / "h.csv", verdict_q1=0), table_format="csv").bundle,
        other,
    )
    result = runner.invoke(app, ["merge", str(humans), str(other), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: verdicts (judge='human', candidate='mockllm/model', item='q1'): {humans} has "
        f"verdict 1, {other} has verdict 0"
    ]
