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
