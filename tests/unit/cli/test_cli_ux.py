"""What a newcomer sees from the `auditor` command line: help screens, the version, progress
with totals, percentage and ETA, the end-of-run table in the report's order and rounding,
and reading commands that find the demo's database without creating an empty one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.cli.main import _judge_table, demo_spec
from auditor.cli.progress import ProgressClock, format_duration, progress_lines
from auditor.schemas.result import AffinityReport
from auditor.schemas.spec import parse_spec
from auditor.services.audits import AuditStatus, StageProgress, submit_audit
from auditor.services.planning import base_bundle, planned_call_counts
from auditor.storage.store import Store
from tests.support.cli import modules_loaded_by
from tests.support.reports import small_report

runner = CliRunner()


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize(
    "args", [["--help"], ["run", "--help"], ["report", "--help"], ["analyze", "--help"]]
)
def test_help_shows_flags_without_types_and_arguments_in_capitals(args: list[str]) -> None:
    result = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    text = _plain(result.output)
    assert "<bool>" not in text
    assert not re.search(r"\{[a-z_]+\}", text), text
    if args[0] == "run":
        assert "auditor run [OPTIONS] SPEC" in text
        assert re.search(r"--broker\s+Run on Redis", text), text
    if args[0] == "report":
        assert "[OPTIONS] AUDIT_ID" in text
    if args == ["--help"]:  # a docstring's line breaks are not kept: one sentence, one flow
        assert "(validated on the way, all problems listed)." in text, text
        assert not any(line.strip("│ ") == "listed)." for line in text.splitlines()), text


def test_version_prints_the_installed_version() -> None:
    from importlib import metadata

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"auditor (judge-auditor) {metadata.version('judge-auditor')}"


def test_format_all_and_unknown_formats_are_named_at_once(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["report", "x", "--format", "docx", "--format", "all", "--format", "txt"]
    )
    assert result.exit_code == 2
    assert "'docx'" in result.stderr and "'txt'" in result.stderr


def _status(stage: str, **kinds: tuple[int, int, int]) -> AuditStatus:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return AuditStatus(
        id="a1",
        name="n",
        status="running",
        stage=stage,
        progress={k: StageProgress(done=d, failed=f, pending=p) for k, (d, f, p) in kinds.items()},
        cost_usd=0.0123,
        budget_usd=None,
        budget_exhausted=False,
        failures=[],
        error=None,
        evaluation_id=None,
        created_at=now,
        updated_at=now,
        finished_at=None,
    )


def test_progress_shows_planned_totals_before_a_stage_starts_with_percent_and_eta() -> None:
    planned = {"mcq": 100, "answer": 100, "judge": 800}
    clock = ProgressClock(started=0.0)
    # t = 2 s: the first calls answered; no rate yet (too few since the first progress)
    first = progress_lines(
        _status("collect", mcq=(10, 0, 90), answer=(10, 0, 90)), planned, clock, 2.0, simulated=True
    )
    assert first[0].startswith("collecting: the models answer")
    assert "20 of 1,000 calls (2%)" in first[1]
    assert "calls/s" not in first[1]
    assert "simulated cost $0.0123 (not billed)" in first[1]
    assert any(line.split()[:2] == ["judge", "0/800"] for line in first[2:]), first
    # t = 12 s: 200 calls more in 10 s -> 20 calls/s; 780 left -> 39 s
    later = progress_lines(
        _status("judge", mcq=(100, 0, 0), answer=(100, 0, 0), judge=(20, 2, 778)),
        planned,
        clock,
        12.0,
        simulated=False,
    )
    assert "222 of 1,000 calls (22%)" in later[1]
    assert "20 calls/s" in later[1] and "about 39 s left" in later[1]
    assert "cost $0.0123" in later[1] and "simulated" not in later[1]
    judge_line = next(line for line in later if line.split()[0] == "judge")
    assert "22/800" in judge_line and "(2 failed)" in judge_line
    analyzing = progress_lines(
        _status("analyze", mcq=(100, 0, 0), answer=(100, 0, 0), judge=(800, 0, 0)),
        planned,
        clock,
        20.0,
        simulated=True,
    )
    assert analyzing[0].startswith("analyzing:")
    assert "1,000 calls answered; analyzing for 0 s" in analyzing[1]
    # done: the totals are the calls the audit made (the plan's judging count was an upper
    # bound: 28 verdicts were never needed), and the headline says so
    done = progress_lines(
        _status("done", mcq=(100, 0, 0), answer=(100, 0, 0), judge=(772, 0, 0)),
        planned,
        clock,
        25.0,
        simulated=True,
    )
    assert "972 of 972 calls (100%)" in done[1]
    assert "28 planned calls not needed" in done[1]
    judge_line = next(line for line in done if line.split()[0] == "judge")
    assert judge_line.split()[1:3] == ["772/772", "100%"], judge_line


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0.4, 9.6, 60, 75.2, 3600, 3725)] == [
        "0 s",
        "10 s",
        "1 min",
        "1 min 15 s",
        "1 h",
        "1 h 2 min",
    ]


def test_planned_call_counts_of_the_demo_are_its_calls() -> None:
    spec = parse_spec(demo_spec(n_items=10))
    counts = planned_call_counts(spec, base_bundle(spec, None))
    # the demo's prompt variants (one per role) on the first max_items / judge_max_items items
    variants = spec.prompt_variants
    mcq_items, judge_items = min(10, variants.max_items or 10), min(10, variants.judge_items or 10)
    assert counts["mcq"] == len(spec.all_models) * (10 + mcq_items)
    candidates = [c.display_name for c in spec.candidate_models]
    assert counts["answer"] == len(candidates) * 10
    # every judge on every candidate but itself, on every item (one verdict a call)
    graded = sum(len([c for c in candidates if c != j.display_name]) for j in spec.judges)
    assert counts["judge"] == graded * (10 + judge_items)
    # the demo's small battery: per judge and pair (one an item, 10 here) the pair in both
    # orders, its padded copy in both orders and an injected answer in both orders
    assert counts["compare"] == len(spec.judges) * 10 * 6
    assert set(counts) == {"mcq", "answer", "judge", "compare"}


def test_the_demo_plans_its_small_battery_and_its_design_holds() -> None:
    from auditor.cli.main import DEMO_BATTERY_PAIRS, DEMO_BATTERY_PROBES
    from auditor.services.planning import check_design, plan_summary

    spec = parse_spec(demo_spec())
    base = base_bundle(spec, None)
    assert check_design(spec, base) == []
    parts = {p.part: p.calls for p in plan_summary(spec, base)}
    pairwise = [p for p in DEMO_BATTERY_PROBES if p != "self_preference"]
    assert {p: parts[p] for p in pairwise} == {p: 4 * DEMO_BATTERY_PAIRS * 2 for p in pairwise}
    assert planned_call_counts(spec, base)["compare"] == 288  # deduplicated across probes
    weaknesses = spec.simulation.judge_weaknesses
    assert set(weaknesses) == {"atlas-1", "boreal-1", "cygnus-1"}  # draco-1 is the clean judge
    small = parse_spec(demo_spec(n_items=5))  # `auditor demo --items 5` still checks out
    assert check_design(small, base_bundle(small, None)) == []


def test_judge_table_follows_the_report_order_rounding_and_names_why_not_tested() -> None:
    from rich.console import Console

    report: AffinityReport = small_report()
    console = Console(width=160, record=True)
    console.print(_judge_table(report))
    text = console.export_text()
    rows = [line for line in text.splitlines() if line.startswith("│")]
    names = [row.split("│")[1].strip() for row in rows]
    from reports.content import ordered_judges

    assert names == [j.judge for j in ordered_judges(report)]
    for judge, row in zip(ordered_judges(report), rows, strict=True):
        if judge.status == "ok":
            assert f"{judge.partial_r:.3f}" in row
        else:
            assert "insufficient data" in row and "…" not in row
            assert judge.reason is not None and judge.reason in " ".join(text.split())


def test_reading_commands_search_the_demo_database_and_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDITOR_DATABASE_URL", raising=False)
    missing = runner.invoke(app, ["status", "nope"])
    assert missing.exit_code == 2
    assert "no audit 'nope' in sqlite:///auditor.sqlite (no such file)" in missing.stderr
    assert not (tmp_path / "auditor.sqlite").exists()

    (tmp_path / "auditor-demo").mkdir()
    store = Store(f"sqlite:///{tmp_path / 'auditor-demo' / 'auditor.sqlite'}")
    store.migrate()
    audit, _ = submit_audit(store, parse_spec(demo_spec(n_items=5)), tenant="default")
    found = runner.invoke(app, ["status", audit.id])
    assert found.exit_code == 0, found.output
    assert f'"id": "{audit.id}"' in found.stdout
    listed = runner.invoke(app, ["audits", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert audit.id in listed.stdout and "queued" in listed.stdout
    unfinished = runner.invoke(app, ["report", audit.id])
    assert unfinished.exit_code == 2
    assert "has no result yet: it is queued" in unfinished.stderr
    assert not (tmp_path / "auditor.sqlite").exists()


def test_run_refuses_a_design_whose_judges_cannot_be_tested_before_any_call(
    tmp_path: Path,
) -> None:
    import json

    from tests.support.specs import small_spec

    # 2 families of 2: a judge's test has the 3 other models; it needs 4
    spec = small_spec(n_items=5, sizes=2, families=("atlas", "boreal"))
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    db, out = f"sqlite:///{tmp_path / 'a.db'}", str(tmp_path / "out")
    result = runner.invoke(app, ["run", str(path), "--db", db, "--out", out])
    assert result.exit_code == 2, result.output
    problems = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(problems) == 2  # every judge named at once
    assert "'atlas-1' would have 3 candidate(s) in its affinity test" in result.stderr
    assert "analysis.min_candidates is 4" in result.stderr
    assert not (tmp_path / "a.db").exists()  # nothing submitted, nothing sent
    testable = small_spec(n_items=5, sizes=3, families=("atlas", "boreal"))  # 5 a judge
    path.write_text(json.dumps(testable))
    dry = runner.invoke(app, ["run", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output


def test_run_names_field_problems_and_a_missing_bundle_at_once(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: x\nbundle: missing.json\njudges: [{model: openai/j}]\n"
        "candidates: [{model: openai/c}]\nsampling: {temperature: -1}\nanalysis: {alpha: 2}\n"
    )
    result = runner.invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [p.split(":")[1].strip() for p in problems] == [
        "sampling.temperature",
        "analysis.alpha",
        "bundle",
    ], problems
    assert str(tmp_path / "missing.json") in problems[-1]


def test_the_terminal_width_is_each_invocations_own(tmp_path: Path) -> None:
    # The consoles are built at the first print (start-up time); the first invocation's COLUMNS
    # must not stay for the next ones. `convert` prints one line of ~80 characters here.
    bundle = tmp_path / "bundle.json"
    bundle.write_text(
        '{"items": [{"id": "q", "question": "?", "options": ["a", "b"], "gold": 0}],'
        ' "models": [{"name": "m"}], "outputs": [{"model": "m", "item": "q", "choice": 1}]}'
    )
    target = tmp_path / ("a-directory-with-a-long-name-" * 2) / "bundle.jsonl"
    widths = {}
    for columns in ("50", "170", "50"):
        result = runner.invoke(app, ["convert", str(bundle), str(target)], env={"COLUMNS": columns})
        assert result.exit_code == 0, result.output
        widths.setdefault(columns, []).append(max(map(len, result.output.splitlines())))
    assert max(widths["50"]) <= 50 < min(widths["170"])


def test_each_command_reads_the_environment_once_and_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditor.settings

    reads: list[str] = []
    load = auditor.settings.load_settings

    def counted() -> auditor.settings.Settings:
        settings = load()
        reads.append(settings.database.url)
        return settings

    monkeypatch.setattr(auditor.settings, "load_settings", counted)
    urls = [f"sqlite:///{tmp_path / name}" for name in ("first.db", "second.db")]
    audit_ids = []
    for url in urls:
        store = Store(url)
        store.migrate()
        audit_ids.append(
            submit_audit(store, parse_spec(demo_spec(n_items=5)), tenant="default")[0].id
        )
    for url, audit_id in zip(urls, audit_ids, strict=True):
        monkeypatch.setenv("AUDITOR_DATABASE_URL", url)
        before = len(reads)
        listed = runner.invoke(app, ["audits", "list"], env={"COLUMNS": "200"})
        assert listed.exit_code == 0, listed.output
        (other,) = set(audit_ids) - {audit_id}
        assert audit_id in listed.stdout and other not in listed.stdout
        assert reads[before:] == [url]  # once per command, from this command's environment


@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_the_version_and_help_start_without_numpy_or_pydantic_models(
    args: list[str],
) -> None:
    # numpy, pydantic and the bundle models cost 0.3-0.5 s of start-up (about 1 s on a loaded
    # machine): asking for the version or for help does not pay for them.
    heavy = ["numpy", "pydantic", "auditor.schemas.bundle"]
    assert modules_loaded_by(args, heavy) == []
