"""The battery service (one correction across judges x probes) and its report: scorecard first,
flagged cells linking to their sections, one section with a figure per probe."""

from __future__ import annotations

import json
from html import escape

import pytest
from statsmodels.stats.multitest import multipletests
from typer.testing import CliRunner

from auditor.services.battery import run_battery
from reports.battery import render_battery_html
from tests.support.battery_world import Planted, simulate

JUDGES = {
    "clean": Planted(noise=0.02),
    "biased": Planted(position=0.3, verbosity=0.75, cue=0.4, injection=0.3, noise=0.5),
}


@pytest.fixture(scope="module")
def battery():
    return run_battery(simulate(JUDGES, n_items=60, seed=5))


def test_one_holm_correction_across_judges_and_probes(battery):
    findings = [f for r in battery.results for f in r.findings if f.p_value is not None]
    expected = multipletests([f.p_value for f in findings], method="holm")[1]
    assert [f.p_adjusted for f in findings] == pytest.approx(list(expected))
    assert all(f.p_adjusted >= f.p_value for f in findings)
    flagged = {(r.probe, f.judge) for r in battery.results for f in r.findings if f.flagged}
    assert {("position", "biased"), ("verbosity", "biased"), ("injection", "biased")} <= flagged
    assert not any(judge == "clean" for _, judge in flagged)
    assert {s.probe for s in battery.skipped} == set()
    probes = battery.probes()
    assert set(probes["position"][0]) >= {
        "judge",
        "n",
        "estimate",
        "ci95",
        "p_value",
        "flagged",
        "consistency",
        "first_slot_win_rate",
        "accuracy",
        "accuracy_both_orders",
    }


def test_report_scorecard_links_flagged_cells_to_sections(battery):
    rendered = render_battery_html(battery)
    html = rendered.decode()
    scorecard = html[: html.index("<section")]
    assert scorecard.count(' score-flag"') == sum(
        f.flagged for r in battery.results for f in r.findings
    )
    for result in battery.results:
        assert f'id="probe-{result.probe}"' in html
        assert f'href="#probe-{result.probe}"' in scorecard
    assert html.count("<svg") == len(battery.results)
    assert render_battery_html(battery) == rendered  # deterministic: a second render, same bytes


def test_cli_battery_on_a_pairwise_only_bundle(tmp_path):
    from auditor.cli import app

    bundle = simulate(JUDGES, n_items=40, seed=2, parts={"pairs", "placebo", "cues"})
    document = bundle.model_dump(mode="json")
    document["items"], document["outputs"], document["verdicts"] = [], [], []
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(document))
    result = CliRunner().invoke(app, ["battery", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "self_preference: not run (no pointwise verdicts)" in result.output
    written = json.loads((tmp_path / "out" / "battery.json").read_text())
    assert set(written["probes"]) == {"position", "cues", "repeat", "human_agreement"}
    assert (tmp_path / "out" / "battery.html").exists()


@pytest.fixture(scope="module")
def audit_result():
    from auditor.probes.analysis import analyze
    from auditor.schemas.result import AnalysisSettings

    settings = AnalysisSettings(n_bootstrap=200, n_permutations=200)
    return analyze(simulate(JUDGES, n_items=60, seed=5), settings)


def test_audit_report_has_the_scorecard_and_each_section_states_its_correction(audit_result):
    from reports.html import render_html
    from reports.markdown import render_markdown

    family = audit_result.multiple_testing
    assert family is not None and family.family == "judges x probes"
    html = render_html(audit_result).decode()
    probes_part = html[html.index('<section id="probes"') :]
    card = probes_part[probes_part.index('id="scorecard"') : probes_part.index("</table>")]
    assert card.index('id="scorecard"') < probes_part.index('<h3 id="probe-')
    judges = {j.judge for j in audit_result.judges}
    measured = {n for n, fs in audit_result.probes.items() if any(f.judge in judges for f in fs)}
    assert {"affinity", "position", "verbosity", "injection"} <= measured
    for name in measured:
        assert f'href="#probe-{name}"' in card and f'id="probe-{name}"' in probes_part
    flagged = [
        (name, f.judge)
        for name, fs in audit_result.probes.items()
        for f in fs
        if f.flagged and f.judge in judges
    ]
    assert {("position", "biased"), ("injection", "biased")} <= set(flagged)
    assert card.count(' score-flag"') == len(flagged)
    assert family.label in card
    # every section says which family and method its flags come from
    assert probes_part.count(f"its p adjusted by {family.label}") == len(audit_result.probes)
    assert escape(family.statement) in probes_part
    markdown = render_markdown(audit_result).decode()
    assert "Scorecard: each judge's estimate per probe" in markdown
    assert markdown.count("**⚑ ") == len(flagged)
    assert markdown.count(f"its p adjusted by {family.label}") == len(audit_result.probes)


def test_a_stored_battery_result_round_trips_with_each_probes_own_fields(battery):
    from auditor.schemas.battery import BatteryResult
    from auditor.schemas.position import PositionResult

    back = BatteryResult.model_validate_json(battery.model_dump_json())
    assert back == battery
    assert [type(r) for r in back.results] == [type(r) for r in battery.results]
    position = next(r for r in back.results if r.probe == "position")
    assert isinstance(position, PositionResult)
    assert position.findings[0].first_slot_win_rate is not None
    assert back.multiple_testing == battery.multiple_testing
    assert json.loads(back.model_dump_json()) == json.loads(battery.model_dump_json())
