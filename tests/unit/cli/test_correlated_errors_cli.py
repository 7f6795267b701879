"""`auditor correlated-errors BUNDLE --out DIR`: the JSON it writes, bad input as exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from auditor.cli import app
from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig

FAMILIES = [
    FamilyConfig(name=name, size=2, provider=provider)
    for name, provider in (("a", "P1"), ("b", "P1"), ("c", "P2"), ("d", "P2"))
]


def _bundle(tmp_path: Path, **config: object) -> Path:
    world = Ecosystem(EcosystemConfig(seed=3, n_items=40, families=FAMILIES, **config))  # type: ignore[arg-type]
    path = tmp_path / "bundle.json"
    path.write_text(world.bundle().model_dump_json())
    return path


def test_writes_the_fields_the_issue_lists(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path, provider_trap_strength=1.0)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "correlated-errors",
            str(bundle),
            "--out",
            str(out),
            "--format",
            "md",
            "--n-bootstrap",
            "50",
            "--n-permutations",
            "100",
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads((out / "correlated_errors.json").read_text())
    assert document["schema_version"] == "1.0"
    assert set(document["agreement"]) >= {"models", "matrix"}
    assert len(document["agreement"]["matrix"]) == 8
    regression = document["regression"]
    assert set(regression) >= {"n_pairs", "n_excluded", "formula", "clustering", "terms"}
    # The ecosystem's models carry a planted size (params), so the two size terms enter too.
    assert set(regression["terms"]) == {
        "intercept",
        "same_provider",
        "same_family",
        "acc_mean",
        "acc_product",
        "log_params_mean",
        "log_params_diff",
    }
    assert set(regression["terms"]["same_provider"]) == {"coef", "se", "ci95", "p"}
    assert document["monoculture"]["n_units"] == 40
    assert document["effective_judges"]["n_eff"] is not None
    assert len(document["inflation"]) == 4
    assert document["settings"]["n_bootstrap"] == 50
    assert (out / "correlated_errors.md").read_text().startswith("# Correlated errors")


def test_insufficient_data_is_a_result_not_a_traceback(tmp_path: Path) -> None:
    families = [f.model_copy(update={"provider": None}) for f in FAMILIES]
    world = Ecosystem(EcosystemConfig(seed=3, n_items=30, families=families))
    bundle = world.bundle(with_verdicts=False)
    models = [m.model_copy(update={"provider": None}) for m in bundle.models]
    path = tmp_path / "bundle.json"
    path.write_text(bundle.model_copy(update={"models": models}).model_dump_json())
    result = CliRunner().invoke(
        app, ["correlated-errors", str(path), "--out", str(tmp_path / "o"), "--n-bootstrap", "20"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(
        (tmp_path / "o" / "correlated_errors.json").read_text(), parse_constant=lambda c: 1 / 0
    )
    assert document["status"] == "insufficient_data"
    assert "provider" in document["regression"]["reason"]
    assert document["inflation"] is None


def test_bad_options_and_bundles_exit_2(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    runner = CliRunner()
    bad_format = runner.invoke(app, ["correlated-errors", str(bundle), "--format", "docx"])
    assert bad_format.exit_code == 2 and "--format" in bad_format.output
    bad_alpha = runner.invoke(app, ["correlated-errors", str(bundle), "--alpha", "2"])
    assert bad_alpha.exit_code == 2 and "--alpha" in bad_alpha.output
    bad_clustering = runner.invoke(app, ["correlated-errors", str(bundle), "--clustering", "x"])
    assert bad_clustering.exit_code == 2 and "--clustering" in bad_clustering.output
    missing = runner.invoke(app, ["correlated-errors", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "nope.json" in missing.output
