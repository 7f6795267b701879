"""The battery end to end: a simulated audit with planted judge weaknesses, pairwise and
pointwise judging through litellm's real code path with the simulated provider, on SQLite.
Planted truth: each weakness is found in its judge, and the clean judge is flagged nowhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from auditor.probes import REGISTRY, ProbeContext
from auditor.schemas.bundle import validate_bundle
from auditor.schemas.spec import parse_spec
from auditor.services.audits import load_base, outcomes_of
from auditor.services.planning import assemble_bundle, check_design, plan_summary
from tests.support.pipeline import report_of, run_audit
from tests.support.specs import small_spec

WEAKNESSES = {
    "boreal-1": {"position": 0.4, "noise": 0.8},
    "cygnus-1": {"verbosity": 0.6, "injection": 0.4},
    "draco-1": {"cue": 0.8, "self_preference": 0.5},
}
PLANTED = {
    "position": "boreal-1",
    "repeat": "boreal-1",
    "verbosity": "cygnus-1",
    "injection": "cygnus-1",
    "cues": "draco-1",
    "self_preference": "draco-1",
}


def battery_spec(n_items: int = 50, **battery: Any) -> dict[str, Any]:
    spec = small_spec(n_items=n_items, sizes=2, families=("atlas", "boreal", "cygnus", "draco"))
    spec["simulation"]["judge_weaknesses"] = WEAKNESSES
    spec["battery"] = {"protocol": "both", **battery}
    return spec


@pytest.mark.slow
def test_planted_weaknesses_are_found_and_the_clean_judge_is_not_flagged(tmp_path: Path):
    store, audit_id = run_audit(f"sqlite:///{tmp_path / 'a.db'}", battery_spec())
    audit = store.get_audit(audit_id)
    # the audit itself completes, its pairwise comparisons analyzed beside the pointwise verdicts
    # (before: every comparison counted as a missing pointwise verdict and the analysis failed)
    assert audit.status == "succeeded", (audit.status, audit.error)
    stored = report_of(store, audit_id)
    for probe, judge in PLANTED.items():
        assert {f.judge: f.flagged for f in stored.probes[probe]}[judge], (probe, judge)
    assert not any(f.flagged for fs in stored.probes.values() for f in fs if f.judge == "atlas-1")
    spec, base = load_base(store, audit)
    bundle = validate_bundle(assemble_bundle(spec, base, outcomes_of(store, audit_id)))
    assert len(bundle.comparisons) > 0
    flagged = {}
    for probe in REGISTRY:
        if probe.name not in PLANTED:  # the battery's probes (others have their own tests)
            continue
        assert probe.missing_inputs(bundle) is None, probe.name
        context = ProbeContext(bundle, spec.analysis, np.random.default_rng(0))
        for finding in probe.compute(context).findings:
            flagged[(probe.name, finding.judge)] = finding.flagged
    for probe, judge in PLANTED.items():
        assert flagged[(probe, judge)], f"{probe}: planted in {judge} but not flagged"
    assert not any(v for (probe, judge), v in flagged.items() if judge == "atlas-1"), flagged


def test_design_check_and_plan_before_spending():
    spec = parse_spec(battery_spec(n_items=8))
    from auditor.services.planning import base_bundle

    base = base_bundle(spec, None)
    problems = check_design(spec, base)
    assert any("fewer than min_comparisons=20" in p for p in problems)
    parts = {p.part: p.calls for p in plan_summary(spec, base)}
    # 4 judges x 8 items: position, verbosity, injection 2 calls each, cues 3, repeat 2
    assert parts["position"] == parts["verbosity"] == parts["injection"] == 64
    assert parts["cues"] == 96 and parts["repeat"] == 64
    assert parts["pointwise"] == 4 * 7 * 8 and "self_preference" not in parts
    pointwise_only = parse_spec({**battery_spec(n_items=30), "battery": {"probes": ["position"]}})
    assert any("pairwise" in p for p in check_design(pointwise_only, base))


def test_cli_dry_run_prints_the_plan_and_sends_nothing(tmp_path: Path):
    import json

    from auditor.cli import app

    path = tmp_path / "spec.json"
    path.write_text(json.dumps(battery_spec(n_items=30)))
    result = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "position" in result.output and "total" in result.output and "$" in result.output
    path.write_text(json.dumps(battery_spec(n_items=5)))
    result = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2
    assert "design:" in result.output
