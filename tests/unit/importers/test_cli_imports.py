"""`auditor import ...` on the real-tool fixtures: what it prints, and exit 2 naming the file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from auditor.cli import app
from auditor.schemas.bundle import load_bundle

REAL = Path(__file__).parents[2] / "data" / "importers" / "real"
runner = CliRunner()


def test_import_inspect_prints_what_it_read_and_writes_the_bundle(tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    logs = [str(REAL / "inspect" / name) for name in ("mc.eval", "open-role.eval")]
    result = runner.invoke(app, ["import", "inspect", *logs, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "read: 2 logs, 12 samples",
        "note: judge 'openai-api/local/judge-c' (from the 'grader' model role) was served as "
        "'judge'",
        "imported: 6 items, 2 models, 6 outputs, 6 verdicts",
        f"wrote {out}",
    ]
    assert len(load_bundle(out).verdicts) == 6


def test_an_unreadable_eval_log_exits_2_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "cut.eval"
    broken.write_bytes((REAL / "inspect" / "mc.eval").read_bytes()[:5000])
    result = runner.invoke(app, ["import", "inspect", str(broken), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {broken}: ")


def test_import_lm_eval_takes_one_model_name_per_path(tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    runs = [str(REAL / "lm-eval" / "no-args"), str(REAL / "lm-eval" / "no-args-2")]
    result = runner.invoke(
        app,
        ["import", "lm-eval", *runs, "--model-name", "m1", "--model-name", "m2", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert [m.name for m in load_bundle(out).models] == ["m1", "m2"]


def test_import_helm_writes_the_bundle_and_refuses_a_malformed_judge_option(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bundle.json"
    runs = [str(REAL / "helm" / "tiny_joint_b")]
    result = runner.invoke(app, ["import", "helm", *runs, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {o.choice for o in load_bundle(out).outputs} == {1}
    result = runner.invoke(
        app, ["import", "helm", *runs, "--annotation-judge", "gpt", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --annotation-judge: expected SHORT=MODEL")


def test_import_table_reads_several_files_of_any_kind(tmp_path: Path) -> None:
    answers = tmp_path / "answers.csv"
    answers.write_text(
        ";item_id;question;option_A;option_B;gold;model;prob_A;prob_B\n"
        "0;q1;Capital of France?;Berlin;Paris;B;m1;0,2;0,8\n"
    )
    verdicts = tmp_path / "verdicts.jsonl"
    verdicts.write_text('{"item_id": "q1", "model": "m1", "judge": "j", "verdict": 1.0}\n')
    out = tmp_path / "bundle.json"
    result = runner.invoke(app, ["import", "table", str(answers), str(verdicts), "--out", str(out)])
    assert result.exit_code == 0, result.output
    bundle = load_bundle(out)
    assert bundle.outputs[0].probs == [0.2, 0.8]
    assert [v.verdict for v in bundle.verdicts] == [1]
    assert "read: 2 files" in result.stdout.splitlines()
