"""The `auditor` command line: exit codes, error lines and the files it writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig
from auditor.probes.affinity import analyze_affinity
from auditor.schemas.bundle import bundle_json_schema, load_bundle, response_matrix
from auditor.schemas.result import AnalysisSettings
from auditor.stats.similarity import capa_matrix

runner = CliRunner()


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    world = Ecosystem(
        EcosystemConfig(
            seed=5,
            n_items=30,
            families=[FamilyConfig(name=f, size=3) for f in ("a", "b")],
            judges=["a-1", "b-1"],
        )
    )
    path = tmp_path_factory.mktemp("cli") / "bundle.json"
    path.write_text(world.bundle().model_dump_json())
    return path


def test_similarity_prints_the_matrix_as_json(bundle_file: Path) -> None:
    result = runner.invoke(app, ["similarity", str(bundle_file)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    reference = capa_matrix(response_matrix(load_bundle(bundle_file)))
    assert document["models"] == list(reference.models)
    assert document["matrix"][0][1] == pytest.approx(reference.values[0, 1], abs=1e-15)
    assert document["kind"][0][1] == "probabilistic"


def test_analyze_writes_report_json_with_the_documented_fields(
    bundle_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "analyze",
            str(bundle_file),
            "--out",
            str(out),
            "--n-bootstrap",
            "100",
            "--n-permutations",
            "100",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    # --format json: the JSON only (the default also draws the HTML report, which the report
    # tests render and check)
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == "1.1"
    assert "affinity" in report["probes"] and report["probes"]["affinity"][0]["judge"]
    assert set(report["judges"][0]) >= {
        "judge",
        "n_candidates",
        "partial_r",
        "ci95",
        "p_value",
        "p_adjusted",
        "bootstrap_ci95",
        "permutation_p",
        "flagged",
    }
    assert set(report["pairs"][0]) >= {
        "judge",
        "candidate",
        "capa",
        "judgment_score",
        "accuracy",
        "n_valid",
        "n_invalid",
    }
    assert report["settings"]["n_bootstrap"] == 100
    reference = analyze_affinity(
        load_bundle(bundle_file), AnalysisSettings(n_bootstrap=100, n_permutations=100)
    )
    assert [j["partial_r"] for j in report["judges"]] == [j.partial_r for j in reference.judges]


def test_invalid_bundle_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    document = {
        "items": [{"id": "q1", "question": "?", "options": ["a", "b"], "gold": 5}],
        "models": [{"name": "m"}],
        "outputs": [
            {"model": "m", "item": "q1", "probs": [0.5, 0.6]},
            {"model": "ghost", "item": "q1", "choice": 0},
        ],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    # a real subprocess: what a user sees, traceback or not
    completed = subprocess.run(
        [sys.executable, "-m", "auditor.cli", "analyze", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert "Traceback" not in completed.stderr
    assert len(lines) == 3
    assert any("items[0]" in line and ".gold" in line and "got 5" in line for line in lines)
    assert any("outputs[0]" in line and ".probs" in line and "sum" in line for line in lines)
    assert any("outputs[1]" in line and "unknown model 'ghost'" in line for line in lines)


def test_bad_option_value_exits_2_naming_the_option(bundle_file: Path) -> None:
    result = runner.invoke(app, ["similarity", str(bundle_file), "--metric", "cosine"])
    assert result.exit_code == 2
    assert "--metric" in result.output and "cosine" in result.output


def test_schema_prints_the_bundle_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == bundle_json_schema()
