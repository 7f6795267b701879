"""The `auditor` command line: a thin shell over the services and the statistics core.

Heavy imports (litellm, celery, pingouin, matplotlib) happen inside the commands that need
them, so `auditor similarity` and `auditor schema` start fast.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from auditor.cli.options import DbOption, cli_settings, new_invocation, open_store
from auditor.cli.plain_help import plain_help
from auditor.cli.terminal import lazy_console
from auditor.schemas.problems import BundleError
from auditor.schemas.tasks import START_AUDIT

if TYPE_CHECKING:  # the result models are imported by the commands that use them (start-up)
    from rich.table import Table

    from auditor.schemas.bundle import Normalization
    from auditor.schemas.result import AffinityReport

app = typer.Typer(
    name="auditor",
    help="Judge Auditor: audit LLM judges for affinity bias (CAPA) and other judging biases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
plain_help()  # `--broker`, not `--broker <bool>`; `SPEC`, not `{spec}`
console = lazy_console(stderr=True)  # rich on first print: `similarity` prints JSON only
out = lazy_console()

EXIT_INVALID = 2
DEFAULT_TENANT = "default"
REPORT_FORMATS = ("html", "md", "json", "pdf")
DEFAULT_FORMATS = ("json", "html")
"""What every command that writes reports writes unless ``--format`` says otherwise."""
FORMAT_HELP = "Report format, repeatable: json, html, md, pdf, or all (default: json and html)."
DEMO_ITEMS = 30
DEMO_BATTERY_PAIRS = 12
"""Base pairs per judge in the demo's battery (288 pairwise calls in all)."""
DEMO_BATTERY_PROBES = ("position", "verbosity", "injection", "self_preference")


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        try:
            version = metadata.version("judge-auditor")
        except metadata.PackageNotFoundError:  # pragma: no cover - a source tree, not installed
            version = "unknown (not installed)"
        out.print(f"auditor (judge-auditor) {version}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Judge Auditor: audit LLM judges for affinity bias (CAPA) and other judging biases."""
    new_invocation()


def _formats(given: list[str] | None, allowed: tuple[str, ...] = REPORT_FORMATS) -> list[str]:
    """The report formats asked for (``all`` = every one ``allowed``; none = the defaults);
    exit 2 naming every unknown value."""
    if not given:
        return [f for f in DEFAULT_FORMATS if f in allowed]
    bad = [f for f in given if f != "all" and f not in allowed]
    if bad:
        _fail([f"--format: must be one of {', '.join(allowed)} or all; got {f!r}" for f in bad])
    wanted = allowed if "all" in given else given
    return [f for f in allowed if f in wanted]


def _fail(problems: list[str]) -> None:
    for problem in problems:  # one line each, never wrapped, so tools can read them
        sys.stderr.write(f"error: {problem}\n")
    raise typer.Exit(EXIT_INVALID)


def _load(path: Path, normalize: Normalization) -> Any:
    """The bundle at ``path`` (JSON, JSONL or Parquet) as columns, validated; exit 2 on
    problems, all of them listed."""
    from auditor.schemas.formats import load_columns

    try:
        return load_columns(path, normalize=normalize)
    except BundleError as error:
        _fail([str(p) for p in error.problems])


@app.command()
def schema(
    what: Annotated[str, typer.Argument(help="bundle, spec or result")] = "bundle",
) -> None:
    """Print the JSON Schema of the evaluation bundle (or of the audit spec / result)."""
    if what == "bundle":
        from auditor.schemas.bundle import bundle_json_schema

        document = bundle_json_schema()
    elif what == "spec":
        from auditor.schemas.spec import AuditSpec

        document = AuditSpec.model_json_schema()
    elif what == "result":
        from auditor.schemas.result import AffinityReport

        document = AffinityReport.model_json_schema()
    else:
        _fail([f"what: must be bundle, spec or result; got {what!r}"])
    out.print_json(json.dumps(document))


@app.command()
def similarity(
    bundle: Annotated[
        Path, typer.Argument(help="Evaluation bundle (.json, .jsonl or a Parquet directory).")
    ],
    metric: Annotated[
        str, typer.Option(help="capa, capa-discrete, error-consistency or error-agreement")
    ] = "capa",
    normalize: Annotated[
        str, typer.Option(help="none, sum or softmax (for scores, logits or log-probabilities)")
    ] = "none",
) -> None:
    """Print the model-by-model similarity matrix as JSON."""
    import orjson

    from auditor.schemas.columns import response_matrix_from_columns
    from auditor.stats.similarity import METRICS, similarity_matrix

    if metric not in METRICS:
        _fail([f"--metric: must be one of {', '.join(METRICS)}; got {metric!r}"])
    data = _load(bundle, _normalization(normalize))
    matrix = similarity_matrix(response_matrix_from_columns(data), metric)  # type: ignore[arg-type]
    sys.stdout.write(orjson.dumps(matrix.to_json()).decode() + "\n")


@app.command()
def convert(
    source: Annotated[
        Path, typer.Argument(help="Bundle to read: .json, .jsonl or a Parquet directory.")
    ],
    target: Annotated[
        Path, typer.Argument(help="Bundle to write: .json, .jsonl, or NAME.parquet (a directory).")
    ],
    to: Annotated[
        str | None,
        typer.Option(help="json, jsonl or parquet (default: by the target's name)."),
    ] = None,
    normalize: Annotated[
        str, typer.Option(help="none, sum or softmax: normalize probabilities on the way")
    ] = "none",
) -> None:
    """Convert a bundle between JSON, JSONL and Parquet (validated on the way, all problems
    listed)."""
    from auditor.schemas.formats import FORMATS, bundle_format, write_columns

    if to is not None and to not in FORMATS:
        _fail([f"--to: must be one of {', '.join(FORMATS)}; got {to!r}"])
    data = _load(source, _normalization(normalize))
    kind = to or bundle_format(target)
    write_columns(data, target, kind)  # type: ignore[arg-type]
    out.print(
        f"{target} ({kind}): {len(data.items)} items, {len(data.models)} models, "
        f"{data.n_outputs} outputs, {data.n_verdicts} verdicts"
    )


def _normalization(value: str) -> Normalization:
    if value not in ("none", "sum", "softmax"):
        _fail([f"--normalize: must be none, sum or softmax; got {value!r}"])
    return value  # type: ignore[return-value]


def _write_reports(report: AffinityReport, directory: Path, formats: list[str]) -> dict[str, Path]:
    from reports import write_reports  # matplotlib and jinja2: only when writing reports

    return write_reports(report, directory, formats=tuple(formats))  # type: ignore[arg-type]


def _judge_table(report: AffinityReport) -> Table:
    """The report's summary table in the terminal: the same order (flagged first, strongest
    first) and the same rounding; why a judge could not be tested has a column of its own."""
    from reports.content import CORRECTION_NAMES, ordered_judges
    from reports.formatting import MISSING, format_ci, format_p, format_value

    method = CORRECTION_NAMES.get(report.settings.correction, report.settings.correction)
    from rich.table import Table

    table = Table(title="Affinity bias per judge (partial r of score on CAPA, given accuracy)")
    for column in ("judge", "result", "n", "partial r", "95% CI", "p", f"p adj. ({method})"):
        table.add_column(column, justify="left" if column in ("judge", "result") else "right")
    insufficient = any(judge.status != "ok" for judge in report.judges)
    if insufficient:
        table.add_column("why not tested", overflow="fold", min_width=24)
    for judge in ordered_judges(report):
        if judge.status != "ok":
            row = [judge.judge, "[dim]insufficient data[/]", str(judge.n_candidates)]
            row += [MISSING] * 4
            table.add_row(*row, judge.reason or "insufficient data")
            continue
        row = [
            judge.judge,
            "[bold red]flagged[/]" if judge.flagged else "not flagged",
            str(judge.n_candidates),
            format_value(judge.partial_r),
            format_ci(judge.ci95),
            format_p(judge.p_value),
            format_p(judge.p_adjusted),
        ]
        table.add_row(*row, *([""] if insufficient else []))
    return table


def _print_outcome(report: AffinityReport, written: dict[str, Path]) -> None:
    """The judge table, the verdict in one line, the files and how to open the report."""
    from reports.content import verdict_line

    out.print(_judge_table(report))
    out.print(f"[bold]Verdict:[/] {verdict_line(report)}", highlight=False)
    for name, path in written.items():
        out.print(f"{name}: {path}", highlight=False)
    html = next((p for p in written.values() if p.name.endswith("report.html")), None)
    if html is not None:
        out.print(
            f"Open the report: {html.resolve().as_uri()} (in a browser), "
            f"or run: python -m webbrowser {html}",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def analyze(
    bundle: Annotated[
        Path, typer.Argument(help="Evaluation bundle with verdicts (.json, .jsonl, Parquet).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the report files.")] = (
        Path("audit-output")
    ),
    formats: Annotated[list[str] | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    normalize: Annotated[str, typer.Option(help="none, sum or softmax")] = "none",
    method: Annotated[str, typer.Option(help="pearson or spearman")] = "pearson",
    alpha: Annotated[float, typer.Option(help="Significance level for flags.")] = 0.05,
    correction: Annotated[str, typer.Option(help="holm or fdr_bh")] = "holm",
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 10_000,
    n_permutations: Annotated[int, typer.Option(help="Permutations.")] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of resampling.")] = 0,
    exclude_same_family: Annotated[
        bool, typer.Option(help="Exclude same-family candidates.")
    ] = False,
) -> None:
    """Analyze a bundle's verdicts for affinity bias and write the report."""
    from pydantic import ValidationError

    from auditor.services.analysis import analyze_now as run_analysis

    formats = _formats(formats)
    try:
        from auditor.schemas.result import AnalysisSettings

        settings = AnalysisSettings(
            method=method,  # type: ignore[arg-type]  # pydantic validates the value
            alpha=alpha,
            correction=correction,  # type: ignore[arg-type]
            n_bootstrap=n_bootstrap,
            n_permutations=n_permutations,
            seed=seed,
            exclude_same_family=exclude_same_family,
        )
    except ValidationError as error:
        _fail(
            [
                f"--{'-'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e['input']!r})"
                for e in error.errors()
            ]
        )
    data = _load(bundle, _normalization(normalize))
    if not data.n_verdicts:
        _fail([f"{bundle}: verdicts: the bundle has no judge verdicts to analyze"])
    with console.status("analyzing: partial correlations, bootstrap and permutation tests…"):
        report = run_analysis(data, settings)
    with console.status(f"writing reports: {', '.join(formats)}…"):
        written = _write_reports(report, out_dir, formats)
    _print_outcome(report, written)


@app.command("battery")
def battery(
    bundle: Annotated[Path, typer.Argument(help="Evaluation bundle (.json or .jsonl).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the report files.")] = (
        Path("audit-output")
    ),
    formats: Annotated[
        list[str] | None,
        typer.Option("--format", help="Report format, repeatable: json, html, or all (default)."),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    correction: Annotated[str, typer.Option(help="holm or fdr_bh, across judges x probes")] = (
        "holm"
    ),
    seed: Annotated[int, typer.Option(help="Seed of resampling.")] = 0,
) -> None:
    """The judge bias battery: position, verbosity, self-preference, cues, injection, repeat
    and human agreement, each where the bundle holds its inputs (the others are listed with
    the reason); writes battery.json (its "probes" map) and battery.html (scorecard first)."""
    import json

    from pydantic import ValidationError

    from auditor.schemas.result import AnalysisSettings
    from auditor.services.battery import run_battery

    formats = _formats(formats, ("json", "html"))
    try:
        settings = AnalysisSettings(alpha=alpha, correction=correction, seed=seed)  # type: ignore[arg-type]
    except ValidationError as error:
        _fail([f"--{e['loc'][0]}: {e['msg']} (got {e['input']!r})" for e in error.errors()])
    from auditor.schemas.bundle import load_bundle

    try:
        data = load_bundle(bundle)
    except BundleError as error:
        _fail([str(p) for p in error.problems])
    result = run_battery(data, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    if "json" in formats:
        document = {**result.model_dump(mode="json"), "probes": result.probes()}
        (out_dir / "battery.json").write_text(json.dumps(document, indent=2) + "\n")
    if "html" in formats:
        from reports.battery import render_battery_html  # matplotlib: only here

        (out_dir / "battery.html").write_bytes(render_battery_html(result))
    for skipped in result.skipped:
        console.print(f"{skipped.probe}: not run ({skipped.reason})")
    for probe_result in result.results:
        flagged = [f.judge for f in probe_result.findings if f.flagged]
        console.print(f"{probe_result.probe}: flagged {', '.join(flagged) or 'none'}")
    console.print(f"wrote {', '.join(formats)} to {out_dir}")


@app.command("correlated-errors")
def correlated_errors(
    bundle: Annotated[Path, typer.Argument(help="Evaluation bundle (.json or .jsonl).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the report files.")] = (
        Path("audit-output")
    ),
    formats: Annotated[list[str] | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    normalize: Annotated[str, typer.Option(help="none, sum or softmax")] = "none",
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    n_bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    n_permutations: Annotated[int, typer.Option(help="Permutations (inflation test).")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of resampling.")] = 0,
    clustering: Annotated[
        str, typer.Option(help="dyadic-conservative, dyadic or two-way (pair regression SEs)")
    ] = "dyadic-conservative",
) -> None:
    """Correlated errors (Kim et al. 2025): error agreement, the pair regression, judge
    inflation, monoculture and the effective number of judges; writes correlated_errors.json."""
    from pydantic import ValidationError

    from auditor.probes.correlated_errors import analyze_correlated_errors
    from auditor.schemas.correlated_errors import CorrelatedErrorsSettings

    formats = _formats(formats)
    try:
        settings = CorrelatedErrorsSettings(
            alpha=alpha,
            n_bootstrap=n_bootstrap,
            n_permutations=n_permutations,
            seed=seed,
            clustering=clustering,  # type: ignore[arg-type]  # pydantic validates the value
        )
    except ValidationError as error:
        _fail(
            [
                f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']} "
                f"(got {e['input']!r})"
                for e in error.errors()
            ]
        )
    data = _load(bundle, _normalization(normalize))
    result = analyze_correlated_errors(data, settings)
    from reports.correlated_errors import write_correlated_errors  # matplotlib: only here

    written = write_correlated_errors(result, out_dir, tuple(formats))
    if result.status != "ok":
        console.print(f"insufficient data: {result.reason}")
    regression = result.regression
    if regression is not None and regression.status == "ok":
        from rich.table import Table

        table = Table(title=f"{regression.formula} ({regression.n_pairs} pairs)")
        for column in ("term", "coef", "se", "95% CI", "p"):
            table.add_column(column)
        for name, term in regression.terms.items():
            table.add_row(
                name,
                f"{term.coef:.3f}",
                f"{term.se:.3f}",
                f"[{term.ci95[0]:.3f}, {term.ci95[1]:.3f}]",
                f"{term.p:.3g}",
            )
        out.print(table)
    for finding in result.findings:
        if finding.flagged:
            out.print(
                f"flagged: {finding.judge} inflates its own provider by {finding.estimate:.3f}"
            )
    for fmt, path in written.items():
        out.print(f"{fmt}: {path}")


# --- the pipeline ---------------------------------------------------------------------------


def demo_spec(seed: int = 7, n_items: int = DEMO_ITEMS) -> dict[str, Any]:
    """The demo: 24 simulated models in 6 families and 4 judges, two of which carry a planted
    affinity bias (s = 0.8) while two grade by the truth alone (s = 0); with planted
    reliability findings (avoidance falling with size, a judge whose false approval rises on
    easy items, a prompt-sensitive model and judge) shown by one paraphrase per role; and a small
    bias battery (`DEMO_BATTERY_PAIRS` pairs per judge, 288 pairwise calls) with planted
    self-preference (atlas-1), verbosity and injection (boreal-1) and position (cygnus-1)
    weaknesses; draco-1 has none of those (boreal-1's affinity bias also shows as a family
    preference: its kin share its errors).

    Sized for its findings: families share strong error tendencies (trap strength 4), so a
    judge's CAPA with its candidates spreads widely and 30 items (4,200 model calls) are enough
    for the two biased judges to be flagged and the two others not in 49 of 50 seeds (with 80
    items and trap strength 2.5, 11,200 calls: 14 of 20; `tests/unit/cli/test_demo.py`)."""
    families = ["atlas", "boreal", "cygnus", "draco", "eridan", "fornax"]
    affinity = {"atlas-1": 0.8, "boreal-1": 0.8, "cygnus-1": 0.0, "draco-1": 0.0}
    judges = list(affinity)
    weaknesses = {
        "atlas-1": {"self_preference": 0.5},
        "boreal-1": {"verbosity": 0.9, "injection": 0.9},
        "cygnus-1": {"position": 0.9},
    }
    return {
        "name": "demo: simulated judges, two with planted affinity bias",
        "simulation": {
            "seed": seed,
            "n_items": n_items,
            "families": [
                {"name": f, "size": 4, "provider": f"{f}-labs", "trap_strength": 4.0}
                for f in families
            ],
            "judges": judges,
            "judge_affinity": affinity,
            "judge_weaknesses": weaknesses,
            "p_hit": 0.95,
            "p_miss": 0.05,
            # reliability (Zhou et al. 2024): smaller models avoid more, cygnus-1 approves more
            # wrong answers on easy items, eridan-2 and draco-1 change with the prompt's wording
            "avoidance": 0.02,
            "judge_false_approval_slope": {"cygnus-1": 1.5},
            "model_prompt_sensitivity": {"eridan-2": 5.0, "draco-1": 5.0},
        },
        # one paraphrase each, on a few items (288 + 320 calls)
        "prompt_variants": {
            "mcq": ["mcq-terse"],
            "judge": ["judge-strict"],
            "max_items": 12,
            "judge_max_items": 4,
        },
        "judges": [{"model": f"sim/{j}", "name": j, "family": j.split("-")[0]} for j in judges],
        "candidates": [
            {"model": f"sim/{f}-{k}", "name": f"{f}-{k}", "family": f}
            for f in families
            for k in range(1, 5)
            if f"{f}-{k}" not in judges
        ],
        "analysis": {"n_bootstrap": 10_000, "n_permutations": 10_000, "seed": seed},
        # A small bias battery beside the affinity audit (288 pairwise calls): the probes that
        # find their planted weakness with this few pairs (cues and repeat need more; their
        # tests show it); self-preference reads the pointwise verdicts and costs no call.
        "battery": {
            "protocol": "both",
            "probes": list(DEMO_BATTERY_PROBES),
            "max_pairs": DEMO_BATTERY_PAIRS,
            "min_comparisons": 2 * min(DEMO_BATTERY_PAIRS, n_items),
        },
    }


def _planned_counts(spec: Any) -> dict[str, int]:
    """Calls per kind the audit plans (for totals from the first progress on); empty when the
    audit reads a stored evaluation, whose calls the service plans."""
    from auditor.schemas.bundle import load_bundle
    from auditor.services.planning import base_bundle, planned_call_counts

    if spec.evaluation_id is not None:
        return {}
    try:
        evaluation = load_bundle(spec.bundle) if spec.bundle is not None else None
        return planned_call_counts(spec, base_bundle(spec, evaluation))
    except (BundleError, ValueError, OSError):  # submitting checked it; show counts as they come
        return {}


def _run_spec(
    spec_document: dict[str, Any],
    *,
    db: str | None,
    out_dir: Path,
    broker: bool,
    formats: list[str],
    tenant: str,
) -> None:
    from auditor.cli.governance import write_signed_report
    from auditor.cli.progress import watch
    from auditor.schemas.spec import parse_spec
    from auditor.services import trail
    from auditor.services.audits import TERMINAL_STATUSES, audit_status, submit_audit

    try:
        spec = parse_spec(spec_document)
    except BundleError as error:
        _fail([str(p) for p in error.problems])
    store = open_store(db)
    try:
        audit, _ = submit_audit(store, spec, tenant=tenant)
    except (BundleError, KeyError) as error:
        problems = getattr(error, "problems", None)
        _fail([str(p) for p in problems] if problems else [str(error)])
    console.print(f"audit {audit.id}: {spec.name}", markup=False, highlight=False)
    done = threading.Event()
    failure: list[BaseException] = []
    if broker:
        from workers.app import app as celery_app

        celery_app.send_task(START_AUDIT, args=[audit.id])  # no litellm import here
        console.print(
            "submitted to the broker; waiting for workers (Ctrl-C stops waiting, not the audit)"
        )
    else:
        from workers.local import run_local

        settings = cli_settings(store.url)

        def run() -> None:
            try:
                run_local(settings, audit.id)
            except BaseException as error:  # shown below, after the progress display stops
                failure.append(error)
            finally:
                done.set()

        threading.Thread(target=run, name="audit", daemon=True).start()
    planned = _planned_counts(spec)  # while the first calls run
    simulated = all(m.model.startswith("sim/") for m in spec.all_models)
    status = watch(
        lambda: audit_status(store, store.get_audit(audit.id)),
        planned=planned,
        simulated=simulated,
        console=console,
        done=None if broker else done,
        terminal_statuses=TERMINAL_STATUSES,
    )
    if failure:
        raise failure[0]
    if status.status != "succeeded":
        console.print(f"audit {audit.id} ended {status.status}: {status.error or ''}", markup=False)
        for item in status.failures:
            console.print(f"  {item['model']}: {item['reason']}", markup=False)
        raise typer.Exit(1)
    from auditor.schemas.result import AffinityReport

    report = AffinityReport.model_validate(store.get_result(audit.id))
    slow = " (the PDF takes a few seconds)" if "pdf" in formats else ""
    writing = console.status(f"writing and signing the reports: {', '.join(formats)}{slow}…")
    with writing, trail.acting_as(trail.cli_actor()):
        written = write_signed_report(
            store, audit.id, out_dir, formats, key_path=cli_settings(db).signing.key_path
        )
    for item in status.failures:
        out.print(f"model failed for good: {item['model']}: {item['reason']}", markup=False)
    _print_outcome(report, written)
    default_demo = db == f"sqlite:///{DEMO_DATABASE.resolve()}"  # found without --db
    db_option = "" if db is None or default_demo else f" --db {db}"
    out.print(
        f"Later: auditor status {audit.id}{db_option} · auditor report {audit.id}{db_option} "
        f"--format pdf · auditor verify {written.get('manifest', out_dir)}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where reports go.")] = Path(
        "auditor-demo"
    ),
    items: Annotated[int, typer.Option(help="Items in the simulated benchmark.")] = DEMO_ITEMS,
    seed: Annotated[int, typer.Option(help="Seed of the simulated world.")] = 7,
    formats: Annotated[list[str] | None, typer.Option("--format", help=FORMAT_HELP)] = None,
) -> None:
    """Run a complete simulated audit offline (no keys, no network) and write its reports."""
    formats = _formats(formats)
    out_dir.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{(out_dir / 'auditor.sqlite').resolve()}"
    started = time.perf_counter()
    _run_spec(
        demo_spec(seed, items),
        db=db,
        out_dir=out_dir,
        broker=False,
        formats=formats,
        tenant=DEFAULT_TENANT,
    )
    out.print(f"demo finished in {time.perf_counter() - started:.1f} s", highlight=False)


def _print_plan(spec: Any) -> None:
    """The planned calls and estimated cost per part; exit 2 if the design cannot answer."""
    from auditor.schemas.bundle import load_bundle
    from auditor.services.planning import (
        base_bundle,
        check_design,
        plan_summary,
        simulation_api_base,
    )

    try:
        evaluation = load_bundle(spec.bundle) if spec.bundle is not None else None
        base = base_bundle(spec, evaluation) if spec.evaluation_id is None else None
    except (BundleError, ValueError) as error:
        problems = getattr(error, "problems", None)
        _fail([str(p) for p in problems] if problems else [str(error)])
    if base is None:  # a stored evaluation: planned by the service that loads it
        return
    problems = check_design(spec, base)
    parts = plan_summary(spec, base)
    prices = _prices(spec, simulation_api_base(spec))
    total_calls, total_cost, unknown = 0, 0.0, set()
    console.print("planned calls (upper bounds: every answer assumed to arrive):")
    for part in parts:
        cost = 0.0
        for model, (_, prompt, completion) in part.by_model.items():
            price = prices.get(model)
            if price is None:
                unknown.add(model)
                continue
            cost += prompt * price[0] + completion * price[1]
        total_calls += part.calls
        total_cost += cost
        console.print(f"  {part.part:<16} {part.calls:>8} calls  ~${cost:.4f}")
    note = f" (no price known for {sorted(unknown)})" if unknown else ""
    console.print(f"  {'total':<16} {total_calls:>8} calls  ~${total_cost:.4f}{note}")
    if problems:
        _fail([f"design: {p}" for p in problems])


def _prices(spec: Any, sim_base: str | None) -> dict[str, tuple[float, float]]:
    """Per display name: (input, output) USD per token from litellm's cost map, where known."""
    import litellm  # only `auditor run`, which calls models anyway, pays for this import

    from workers.simulated import PRICE_PER_TOKEN

    prices = {}
    for model in spec.all_models:
        if model.model.startswith("sim/"):
            prices[model.display_name] = PRICE_PER_TOKEN
            continue
        entry = litellm.model_cost.get(model.model) or litellm.model_cost.get(
            model.model.split("/", 1)[-1]
        )
        if entry and "input_cost_per_token" in entry:
            prices[model.display_name] = (
                float(entry["input_cost_per_token"]),
                float(entry.get("output_cost_per_token", 0.0)),
            )
    return prices


def _missing_bundle(spec: Path) -> list[str]:
    """The spec's bundle file, when it names one that does not exist: said together with the
    spec's field problems, so that one round of fixes is enough."""
    import yaml

    try:
        text = spec.read_text(encoding="utf-8")
        document = json.loads(text) if spec.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return []
    bundle = document.get("bundle") if isinstance(document, dict) else None
    if not isinstance(bundle, str) or (spec.parent / bundle).exists():
        return []
    return [f"bundle: no such file: {(spec.parent / bundle).resolve()}"]


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="Audit spec (YAML or JSON).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where reports go.")] = Path(
        "audit-output"
    ),
    broker: Annotated[
        bool,
        typer.Option(
            "--broker", help="Run on Redis workers (`auditor worker`) instead of in this process."
        ),
    ] = False,
    formats: Annotated[list[str] | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    db: DbOption = None,
    tenant: Annotated[str, typer.Option(help="Tenant that owns the audit.")] = DEFAULT_TENANT,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the planned calls and cost, send nothing.")
    ] = False,
) -> None:
    """Run an audit spec to completion and write its reports.

    First prints the calls each part of the audit plans (answers, pointwise verdicts, each
    battery probe) with their estimated cost, and checks that the design can answer the
    battery's questions; `--dry-run` stops there."""
    from auditor.schemas.spec import SpecError, load_spec

    try:
        loaded = load_spec(spec)
    except SpecError as error:
        _fail([str(p) for p in error.problems] + _missing_bundle(spec))
    formats = _formats(formats)
    _print_plan(loaded)
    if dry_run:
        return
    document = loaded.model_dump(mode="json")
    _run_spec(document, db=db, out_dir=out_dir, broker=broker, formats=formats, tenant=tenant)


DEMO_DATABASE = Path("auditor-demo") / "auditor.sqlite"
"""Where `auditor demo` keeps its database (with its default ``--out``); the commands that read
audits look there too when no ``--db`` is given."""


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _missing_sqlite(url: str) -> bool:
    """Whether ``url`` is a SQLite file that does not exist (reading must not create it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or ""
    return (
        parsed.get_backend_name() == "sqlite"
        and name not in ("", ":memory:")
        and (not Path(name).exists())
    )


def _databases(db: str | None) -> list[str]:
    """The databases a reading command searches: ``--db`` alone when given; else the
    configured one and, when it exists, the demo's."""
    if db is not None:
        return [db]
    urls = [cli_settings(None).database.url]
    demo = f"sqlite:///{DEMO_DATABASE.resolve()}"
    if DEMO_DATABASE.exists() and demo not in urls:
        urls.append(demo)
    return urls


def _find_audit(db: str | None, audit_id: str) -> tuple[Any, Any]:
    """The store holding ``audit_id`` and its row; exit 2 naming every database searched."""
    searched = []
    for url in _databases(db):
        if _missing_sqlite(url):
            searched.append(f"{_shown_url(url)} (no such file)")
            continue
        store = open_store(url)
        audit = store.get_audit(audit_id)
        if audit is not None:
            return store, audit
        searched.append(_shown_url(url))
    hint = "" if db is not None else f"; the demo's database is sqlite:///{DEMO_DATABASE}"
    _fail([f"audit: no audit {audit_id!r} in {' nor '.join(searched)} (pass --db URL{hint})"])
    raise AssertionError  # unreachable: _fail exits


@app.command()
def status(
    audit_id: Annotated[str, typer.Argument(help="Audit id.")],
    db: DbOption = None,
    watch: Annotated[bool, typer.Option(help="Follow until the audit ends.")] = False,
) -> None:
    """Show an audit's status and progress as JSON (without --db: the configured database,
    then the demo's)."""
    from auditor.cli.progress import watch as follow
    from auditor.services.audits import TERMINAL_STATUSES, audit_status

    store, audit = _find_audit(db, audit_id)
    if watch:
        follow(
            lambda: audit_status(store, store.get_audit(audit_id)),
            planned={},
            simulated=False,
            console=console,
            done=None,
            terminal_statuses=TERMINAL_STATUSES,
        )
        audit = store.get_audit(audit_id)
    sys.stdout.write(audit_status(store, audit).model_dump_json(indent=2) + "\n")


@app.command()
def report(
    audit_id: Annotated[str, typer.Argument(help="Audit id.")],
    formats: Annotated[list[str] | None, typer.Option("--format", help=FORMAT_HELP)] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory.")] = Path("audit-output"),
    db: DbOption = None,
) -> None:
    """Render a finished audit's stored result again (nothing is re-run), with a signed
    manifest of the files (`auditor verify` checks it) and an entry in the audit trail."""
    from auditor.cli.governance import write_signed_report
    from auditor.services import trail

    formats = _formats(formats)
    from auditor.services.audits import AuditNotFinished, AuditNotFound, finished_result

    store, audit = _find_audit(db, audit_id)
    try:
        finished_result(store, audit_id)
    except (AuditNotFinished, AuditNotFound):
        _fail(
            [
                f"audit: {audit_id!r} has no result yet: it is {audit.status} "
                f"(stage {audit.stage}){f': {audit.error}' if audit.error else ''}"
            ]
        )
    with trail.acting_as(trail.cli_actor()):
        written = write_signed_report(
            store, audit_id, out_dir, formats, key_path=cli_settings(db).signing.key_path
        )
    for name, path in written.items():
        out.print(f"{name}: {path}", highlight=False)


audits_app = typer.Typer(help="The audits in the database.", no_args_is_help=True)
app.add_typer(audits_app, name="audits")


def _when(moment: Any) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


@audits_app.command("list")
def list_audits(
    db: DbOption = None,
    tenant: Annotated[str, typer.Option(help="Tenant whose audits are listed.")] = DEFAULT_TENANT,
    status_filter: Annotated[
        str | None,
        typer.Option("--status", help="Only audits in this status (queued, running, …)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List audits, newest first (without --db: the configured database, then the demo's)."""
    for url in _databases(db):
        if _missing_sqlite(url):
            console.print(f"{_shown_url(url)}: no such file", markup=False)
            continue
        rows = open_store(url).list_audits(tenant=tenant, limit=limit, status=status_filter)
        from rich.table import Table

        table = Table(title=_shown_url(url), title_justify="left")
        for column in ("id", "name", "status", "stage", "created", "finished"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(
                row.id,
                row.name,
                row.status,
                row.stage,
                _when(row.created_at),
                _when(row.finished_at),
            )
        if not rows:
            console.print(f"{_shown_url(url)}: no audits", markup=False)
        else:
            out.print(table)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
    queues: Annotated[str | None, typer.Option(help="Queues to consume.")] = None,
) -> None:
    """Start a Celery worker (model calls) on the configured Redis broker."""
    from workers.app import app as celery_app

    open_store(None)  # migrate before taking work
    argv = ["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
    if queues:
        argv.append(f"--queues={queues}")
    celery_app.worker_main(argv)


@app.command()
def beat(
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Start Celery beat (sweeps of stalled audits, scheduled audits)."""
    from workers.app import app as celery_app

    open_store(None)
    schedule_file = os.environ.get("AUDITOR_BEAT_SCHEDULE", "celerybeat-schedule")
    celery_app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule_file}"])


@app.command()
def migrate(db: DbOption = None) -> None:
    """Create or upgrade the database schema."""
    store = open_store(db)
    out.print(f"schema is current: {store.url.split('@')[-1]}")


def _register_service_commands() -> None:
    from auditor.cli.governance import schedules_app, trail_app, verify
    from auditor.cli.imports import import_app, merge
    from auditor.cli.service import keys_app, serve

    app.add_typer(keys_app, name="keys")
    app.command()(serve)
    app.add_typer(schedules_app, name="schedules")
    app.add_typer(trail_app, name="trail")
    app.command()(verify)
    app.add_typer(import_app, name="import")
    app.command()(merge)


_register_service_commands()


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
