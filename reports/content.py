"""The report's content, built once from an `AffinityReport` and shared by HTML and Markdown.

Everything here selects, orders and formats what the result object holds; nothing is estimated.
Each table cell carries its display text, the exact value it shows (for checking), and, where the
value is undefined, a footnote with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from auditor.schemas.prompts import BUILTIN_JUDGE_TEMPLATES, JudgeTemplate
from auditor.schemas.result import AffinityReport, AnalysisSettings, JudgeResult, PairResult
from reports.formatting import (
    MISSING,
    exact,
    format_ci,
    format_count,
    format_p,
    format_value,
    is_missing,
)

__all__ = [
    "CORRECTION_NAMES",
    "Cell",
    "Column",
    "Finding",
    "PairSection",
    "ReportContent",
    "Table",
    "build_content",
    "family_order",
    "ordered_judges",
    "verdict_line",
]

CORRECTION_NAMES = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}
NO_FAMILY = "(no family)"
_NOTE_MARKERS = "abcdefghijklmnopqrstuvwxyz"

Align = Literal["left", "right", "center"]


@dataclass(frozen=True)
class Cell:
    """One table cell: display text, the exact value shown, and an optional footnote marker."""

    text: str
    value: str | None = None
    note: str | None = None
    align: Align = "right"
    css: str = ""
    field: str | None = None


@dataclass(frozen=True)
class Column:
    label: str
    help: str = ""
    align: Align = "right"
    width: str = ""
    """CSS width (e.g. ``"12%"``); print uses a fixed table layout, so widths matter there."""


def _widths(columns: list[Column], widths: list[int]) -> list[Column]:
    return [Column(c.label, c.help, c.align, f"{w}%") for c, w in zip(columns, widths, strict=True)]


@dataclass
class Table:
    id: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    caption: str = ""

    @property
    def note_map(self) -> dict[str, str]:
        return dict(self.notes)

    def note_for(self, reason: str) -> str:
        """The footnote marker of ``reason`` (a new one the first time it is seen)."""
        for marker, text in self.notes:
            if text == reason:
                return marker
        marker = _NOTE_MARKERS[len(self.notes) % len(_NOTE_MARKERS)]
        self.notes.append((marker, reason))
        return marker

    def missing(self, reason: str, *, field: str | None = None, align: Align = "right") -> Cell:
        return Cell(MISSING, None, self.note_for(reason), align, "na", field)


@dataclass(frozen=True)
class Finding:
    """One judge's result in plain words: ``judge`` then ``headline``, then ``detail``."""

    judge: str
    family: str
    status: Literal["flagged", "not_flagged", "insufficient"]
    headline: str
    detail: str


@dataclass(frozen=True)
class PairSection:
    judge: str
    summary: str
    table: Table


@dataclass
class ReportContent:
    title: str
    audit_id: str | None
    audit_name: str | None
    simulated: bool
    created_at: str
    created_human: str
    result_sha256: str
    input_sha256: str
    schema_version: str
    glance: list[tuple[str, str]]
    headline: str
    method_line: str
    findings: list[Finding]
    pooled_sentence: str
    summary_table: Table
    judge_table: Table
    robustness_table: Table
    ols_table: Table
    model_table: Table
    pair_sections: list[PairSection]
    coverage_table: Table
    data_gaps: list[str]
    coverage_line: str
    n_tested: int
    tested_what: str
    """What the n_tested p-values are: "judges" or "findings (judges × probes)"."""
    testing_statement: str
    """The result's one multiple-testing correction in a sentence (`multiple_testing`)."""
    settings_table: Table
    correction_name: str
    settings: AnalysisSettings
    prompt_parts: list[tuple[str, str]]
    prompt_note: str
    manifest_table: Table
    software_table: Table
    provenance_models_table: Table
    template_table: Table
    spec_json: str | None
    extra_provenance_json: str | None
    renderer: list[tuple[str, str]]
    flagged_judges: list[str]
    code_commit: str | None = None
    figure_notes: dict[str, str] = field(default_factory=dict)


# --- helpers -------------------------------------------------------------------------------------


def family_order(report: AffinityReport) -> dict[str, str]:
    """Model -> family label (``(no family)`` when unknown), in the order families appear."""
    return {m.name: m.family or NO_FAMILY for m in report.models}


def _sorted_by_family(names: Iterable[str], family: dict[str, str]) -> list[str]:
    families = list(dict.fromkeys(family.values()))
    rank = {f: i for i, f in enumerate(families)}
    return sorted(names, key=lambda n: (rank.get(family.get(n, NO_FAMILY), len(rank)), n))


def _number(
    table: Table, value: float | None, reason: str, *, field: str, kind: str = "value"
) -> Cell:
    if value is None or is_missing(value):
        return table.missing(reason, field=field)
    text = format_p(value) if kind == "p" else format_value(value)
    return Cell(text, exact(value), field=field)


def _interval(
    table: Table, interval: tuple[float, float] | None, reason: str, *, field: str
) -> Cell:
    if interval is None or any(is_missing(v) for v in interval):
        return table.missing(reason, field=field)
    return Cell(format_ci(interval), exact(interval), field=field)


def _text(text: str, *, field: str | None = None, css: str = "") -> Cell:
    return Cell(text, text, align="left", css=css, field=field)


def _count(value: int, *, field: str | None = None) -> Cell:
    return Cell(format_count(value), str(value), field=field)


def _undefined_reason(report: AffinityReport, judge: JudgeResult, what: str) -> str:
    """Why a judge's value is undefined, from what the result says."""
    if judge.status != "ok":
        return f"{judge.judge}: {judge.reason or 'insufficient data'}"
    settings = report.settings
    if what == "bootstrap" and settings.n_bootstrap == 0:
        return "not computed: the bootstrap was switched off (n_bootstrap = 0)"
    if what == "permutation" and settings.n_permutations == 0:
        return "not computed: the permutation test was switched off (n_permutations = 0)"
    if judge.reason:
        return f"{judge.judge}: {judge.reason}"
    return "undefined in the result; no reason recorded"


def _status_text(judge: JudgeResult) -> tuple[str, str]:
    if judge.status != "ok":
        return "Insufficient data", "status-insufficient"
    if judge.flagged:
        return "Flagged", "status-flagged"
    return "Not flagged", "status-clear"


def _range(interval: tuple[float, float] | None) -> str:
    if interval is None or any(is_missing(v) for v in interval):
        return "CI undefined"
    return f"95% CI {format_value(interval[0])} to {format_value(interval[1])}"


def human_time(moment: str | None) -> str:
    """An ISO 8601 time as people read it: ``"2026-12-07T05:27:12.5+00:00"`` ->
    ``"7 December 2026, 05:27 UTC"``; other offsets are kept (``"… 06:27 UTC+01:00"``)."""
    from datetime import datetime

    if not moment:
        return "not recorded"
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    offset = parsed.utcoffset()
    zone = "" if offset is None else " UTC" if not offset else f" UTC{parsed:%z}"
    if zone.startswith(" UTC+") or zone.startswith(" UTC-"):
        zone = f"{zone[:-2]}:{zone[-2:]}"
    return f"{parsed.day} {parsed:%B %Y, %H:%M}{zone}"


def is_simulated(report: AffinityReport) -> bool:
    """Whether every model of the audit was simulated (a ``simulation`` in the spec, or every
    model called through the ``sim/`` provider)."""
    provenance = report.provenance
    if (provenance.spec or {}).get("simulation"):
        return True
    called = [m.get("model") for m in provenance.models if isinstance(m, dict)]
    return bool(called) and all(isinstance(m, str) and m.startswith("sim/") for m in called)


# --- the summary -------------------------------------------------------------------------------


def _finding(report: AffinityReport, judge: JudgeResult, family: str) -> Finding:
    settings = report.settings
    method = CORRECTION_NAMES[settings.correction]
    if judge.status != "ok":
        return Finding(
            judge.judge,
            family,
            "insufficient",
            "could not be tested: " + (judge.reason or "insufficient data") + ".",
            ""
            if judge.reason
            else f"{judge.n_candidates} candidates; at least {settings.min_candidates} needed.",
        )
    numbers = (
        f"partial r = {format_value(judge.partial_r)} ({_range(judge.ci95)}), "
        f"{method}-adjusted p = {format_p(judge.p_adjusted)}, "
        f"{judge.n_candidates} candidates."
    )
    if judge.flagged:
        return Finding(
            judge.judge,
            family,
            "flagged",
            "scores candidates that make its own mistakes higher, beyond what their accuracy "
            "explains.",
            numbers,
        )
    r, p = judge.partial_r, judge.p_adjusted
    significant = p is not None and not is_missing(p) and p < settings.alpha
    if significant and r is not None and r < 0:
        headline = (
            "scores candidates that make its own mistakes lower, beyond what their accuracy "
            "explains (the opposite of affinity bias); not flagged."
        )
    elif significant:
        headline = (
            "shows a significant association that is not above the minimum effect of interest "
            f"(partial r > {settings.min_effect:g}); not flagged."
        )
    else:
        headline = (
            f"shows no statistically significant affinity bias (α = {settings.alpha:g}, "
            f"{method} correction). This is not proof of absence"
            + (
                f": effects up to r = {format_value(judge.ci95[1])} are not ruled out."
                if judge.ci95 is not None and not is_missing(judge.ci95[1])
                else "."
            )
        )
    return Finding(judge.judge, family, "not_flagged", headline, numbers)


def _summary_table(report: AffinityReport, ordered: list[JudgeResult], family: dict) -> Table:
    method = CORRECTION_NAMES[report.settings.correction]
    table = Table(
        "summary-table",
        _widths(
            [
                Column("Judge", "The judging model", "left"),
                Column("Family", "Model family of the judge", "left"),
                Column(
                    "Result", "Flagged: adjusted p < alpha and partial r > minimum effect", "left"
                ),
                Column("Candidates", "Candidates in the judge's test (n)"),
                Column("Partial r", "Correlation of score and CAPA, controlling for accuracy"),
                Column("95% CI", "Fisher-z 95% confidence interval of the partial r"),
                Column(f"Adjusted p ({method})", f"p-value adjusted across {_family(report)}"),
            ],
            [15, 12, 14, 12, 10, 18, 19],
        ),
        caption="Affinity bias per judge. The numbers are the partial correlation between the "
        "judge's scores and its CAPA with each candidate, controlling for candidate accuracy.",
    )
    for judge in ordered:
        status, css = _status_text(judge)
        table.rows.append(
            [
                _text(judge.judge, field="judge"),
                _text(family.get(judge.judge, NO_FAMILY), field="family"),
                _text(status, field="status", css=css),
                _count(judge.n_candidates, field="n_candidates"),
                _number(
                    table,
                    judge.partial_r,
                    _undefined_reason(report, judge, "r"),
                    field="partial_r",
                ),
                _interval(table, judge.ci95, _undefined_reason(report, judge, "r"), field="ci95"),
                _number(
                    table,
                    judge.p_adjusted,
                    _undefined_reason(report, judge, "p"),
                    field="p_adjusted",
                    kind="p",
                ),
            ]
        )
    return table


def ordered_judges(report: AffinityReport) -> list[JudgeResult]:
    """The judges in the report's order: flagged first (strongest effect first), then not
    flagged (strongest first), then insufficient data; the figures and the CLI use it too."""

    def key(judge: JudgeResult) -> tuple:
        group = 2 if judge.status != "ok" else (0 if judge.flagged else 1)
        r = (
            judge.partial_r
            if judge.partial_r is not None and not is_missing(judge.partial_r)
            else 0
        )
        return (group, -r, judge.judge)

    return sorted(report.judges, key=key)


def verdict_line(report: AffinityReport) -> str:
    """The result in one line, judges named in the report's order: ``"2 of 4 judges flagged for
    affinity bias (boreal-1, atlas-1); 2 not flagged (draco-1, cygnus-1)."``"""
    ordered = ordered_judges(report)
    flagged = [j.judge for j in ordered if j.status == "ok" and j.flagged]
    clear = [j.judge for j in ordered if j.status == "ok" and not j.flagged]
    insufficient = [j.judge for j in ordered if j.status != "ok"]
    named = ", ".join
    parts = [f"{len(flagged)} of {len(report.judges)} judges flagged for affinity bias"]
    if flagged:
        parts[0] += f" ({named(flagged)})"
    if clear:
        parts.append(f"{len(clear)} not flagged ({named(clear)})")
    if insufficient:
        parts.append(f"{len(insufficient)} with insufficient data ({named(insufficient)})")
    return "; ".join(parts) + "."


# --- detail tables -------------------------------------------------------------------------------


def _family(report: AffinityReport) -> str:
    """Which p-values the flags were adjusted across (the result's `multiple_testing`)."""
    testing = report.multiple_testing
    if testing is None or testing.family == "judges":
        return "judges"
    return f"all {testing.n_tests} findings of judges × probes"


def _judge_table(report: AffinityReport, ordered: list[JudgeResult]) -> Table:
    method = CORRECTION_NAMES[report.settings.correction]
    table = Table(
        "judge-table",
        _widths(
            [
                Column("Judge", align="left"),
                Column("Status", align="left"),
                Column("n", "Candidates in the test"),
                Column("Partial r"),
                Column("95% CI (Fisher z)"),
                Column("p", "Two-sided p-value of the partial r (t test, n − 3 df)"),
                Column("p Holm", "Holm-adjusted across judges"),
                Column("p BH", "Benjamini–Hochberg-adjusted across judges"),
                Column("Flagged", align="center"),
            ],
            [15, 14, 6, 9, 17, 10, 10, 10, 9],
        ),
        caption=f"The test of every judge. Flagging uses the {method}-adjusted p across "
        f"{_family(report)} (the result's one correction); the p Holm and p BH columns are "
        "adjusted across the judges tested alone.",
    )
    for judge in ordered:
        status, css = _status_text(judge)
        why = _undefined_reason(report, judge, "r")
        table.rows.append(
            [
                _text(judge.judge, field="judge"),
                _text(status, field="status", css=css),
                _count(judge.n_candidates, field="n_candidates"),
                _number(table, judge.partial_r, why, field="partial_r"),
                _interval(table, judge.ci95, why, field="ci95"),
                _number(table, judge.p_value, why, field="p_value", kind="p"),
                _number(table, judge.p_holm, why, field="p_holm", kind="p"),
                _number(table, judge.p_fdr_bh, why, field="p_fdr_bh", kind="p"),
                Cell(
                    "yes" if judge.flagged else "no",
                    str(judge.flagged),
                    align="center",
                    css="flag-yes" if judge.flagged else "",
                    field="flagged",
                ),
            ]
        )
    return table


def _robustness_table(report: AffinityReport, ordered: list[JudgeResult]) -> Table:
    settings = report.settings
    table = Table(
        "robustness-table",
        _widths(
            [
                Column("Judge", align="left"),
                Column(
                    "Bootstrap 95% CI",
                    f"Percentile bootstrap over candidates ({settings.n_bootstrap:,} resamples)",
                ),
                Column(
                    "Permutation p",
                    f"Freedman–Lane permutation test ({settings.n_permutations:,} permutations)",
                ),
                Column("Pearson r", "Raw correlation of score and CAPA, no control for accuracy"),
                Column("Candidates left out of the test", align="left"),
            ],
            [15, 18, 13, 11, 43],
        ),
        caption="Checks that do not rely on the normal approximation, the raw correlation that "
        "ignores accuracy, and who was left out (reasons in the pair tables).",
    )
    for judge in ordered:
        excluded = judge.excluded_candidates
        table.rows.append(
            [
                _text(judge.judge, field="judge"),
                _interval(
                    table,
                    judge.bootstrap_ci95,
                    _undefined_reason(report, judge, "bootstrap"),
                    field="bootstrap_ci95",
                ),
                _number(
                    table,
                    judge.permutation_p,
                    _undefined_reason(report, judge, "permutation"),
                    field="permutation_p",
                    kind="p",
                ),
                _number(
                    table,
                    judge.pearson_r,
                    _undefined_reason(report, judge, "r"),
                    field="pearson_r",
                ),
                Cell(
                    f"{len(excluded)}: {', '.join(excluded)}" if excluded else "none",
                    ", ".join(excluded),
                    align="left",
                    css="small",
                    field="excluded_candidates",
                ),
            ]
        )
    return table


_COEFFICIENT_NAMES = {
    "intercept": "Intercept",
    "const": "Intercept",
    "Intercept": "Intercept",
    "capa": "CAPA slope",
    "accuracy": "Accuracy slope",
}


def coefficient(coefficients: dict[str, float], name: str) -> float | None:
    """A coefficient by role (``intercept``, ``capa``, ``accuracy``), whatever its key."""
    for key, value in coefficients.items():
        if _COEFFICIENT_NAMES.get(key, key) == _COEFFICIENT_NAMES[name]:
            return value
    return None


def _ols_table(report: AffinityReport, ordered: list[JudgeResult]) -> Table:
    table = Table(
        "ols-table",
        _widths(
            [
                Column("Judge", align="left"),
                Column("n"),
                Column("Intercept (SE)"),
                Column("CAPA slope (SE)"),
                Column("p (CAPA)"),
                Column("Accuracy slope (SE)"),
                Column("p (accuracy)"),
                Column("R²"),
            ],
            [14, 6, 15, 15, 11, 15, 13, 11],
        ),
        caption="Ordinary least squares fit judgment score ~ CAPA + accuracy per judge "
        "(the CAPA slope is the change in score per unit of CAPA at equal accuracy).",
    )
    for judge in ordered:
        ols = judge.ols
        if ols is None:
            reason = _undefined_reason(report, judge, "ols")
            table.rows.append([_text(judge.judge)] + [table.missing(reason) for _ in range(7)])
            continue
        row = [_text(judge.judge, field="judge"), _count(ols.n, field="n")]
        for role, with_p in (("intercept", False), ("capa", True), ("accuracy", True)):
            estimate = coefficient(ols.coefficients, role)
            error = coefficient(ols.std_errors, role)
            if estimate is None:
                row.append(table.missing(f"no {role} coefficient in the stored fit"))
            else:
                row.append(
                    Cell(
                        f"{format_value(estimate)} ({format_value(error)})",
                        exact((estimate, error if error is not None else float("nan"))),
                        field=role,
                    )
                )
            if with_p:
                p = coefficient(ols.p_values, role)
                row.append(
                    _number(
                        table, p, f"no p-value for {role} in the stored fit", field=role, kind="p"
                    )
                )
        row.append(Cell(format_value(ols.r_squared), exact(ols.r_squared), field="r_squared"))
        table.rows.append(row)
    return table


def _model_table(report: AffinityReport, family: dict[str, str]) -> Table:
    table = Table(
        "model-table",
        _widths(
            [
                Column("Model", align="left"),
                Column("Provider", align="left"),
                Column("Family", align="left"),
                Column("Role", align="left"),
                Column("Accuracy", "Ground-truth multiple-choice accuracy"),
                Column("Items answered"),
                Column("CAPA inputs", "Probabilities, or only the chosen option", "left"),
            ],
            [15, 11, 12, 16, 10, 11, 25],
        ),
        caption="Models, their roles and ground-truth accuracy.",
    )
    by_name = {m.name: m for m in report.models}
    for name in _sorted_by_family(by_name, family):
        model = by_name[name]
        roles = [
            r for r, on in (("judge", model.is_judge), ("candidate", model.is_candidate)) if on
        ]
        table.rows.append(
            [
                _text(model.name),
                _text(model.provider)
                if model.provider
                else table.missing("not given in the input", align="left"),
                _text(family[name]),
                _text(" + ".join(roles) if roles else "neither"),
                _number(table, model.accuracy, "the model answered no item", field="accuracy"),
                _count(model.n_items, field="n_items"),
                _text(
                    "probabilities"
                    if model.probabilistic
                    else "chosen option only (discrete CAPA)",
                    css="" if model.probabilistic else "warn",
                ),
            ]
        )
    return table


def _pair_sections(
    report: AffinityReport, ordered: list[JudgeResult], family: dict[str, str]
) -> list[PairSection]:
    by_judge: dict[str, list[PairResult]] = {}
    for pair in report.pairs:
        by_judge.setdefault(pair.judge, []).append(pair)
    sections = []
    judge_names = [j.judge for j in ordered] + sorted(set(by_judge) - {j.judge for j in ordered})
    for judge in judge_names:
        pairs = {p.candidate: p for p in by_judge.get(judge, [])}
        table = Table(
            f"pairs-{judge}",
            _widths(
                [
                    Column("Candidate", align="left"),
                    Column("Family", align="left"),
                    Column("CAPA"),
                    Column("CAPA kind", align="left"),
                    Column("Judgment score", "#1 / (#1 + #0) over valid verdicts"),
                    Column("Accuracy", "Ground-truth accuracy of the candidate"),
                    Column("Valid verdicts"),
                    Column("Invalid verdicts", "Unparseable, excluded from the score"),
                    Column("In test", "Used in the judge's partial correlation", "left"),
                ],
                [14, 11, 7, 11, 9, 8, 8, 9, 23],
            ),
        )
        for candidate in _sorted_by_family(pairs, family):
            pair = pairs[candidate]
            table.rows.append(
                [
                    _text(candidate, field="candidate"),
                    _text(family.get(candidate, NO_FAMILY)),
                    _number(
                        table,
                        pair.capa,
                        f"CAPA undefined: {pair.capa_undefined_reason or 'no reason recorded'}",
                        field="capa",
                    ),
                    _text(pair.capa_kind, css="" if pair.capa_kind == "probabilistic" else "warn"),
                    _number(table, pair.judgment_score, "no valid verdict", field="judgment_score"),
                    _number(table, pair.accuracy, "accuracy unknown", field="accuracy"),
                    _count(pair.n_valid, field="n_valid"),
                    Cell(
                        format_count(pair.n_invalid),
                        str(pair.n_invalid),
                        css="warn" if pair.n_invalid else "",
                        field="n_invalid",
                    ),
                    _text("yes")
                    if not pair.excluded
                    else _text(f"no: {pair.exclusion_reason or 'no reason recorded'}", css="muted"),
                ]
            )
        used = sum(1 for p in pairs.values() if not p.excluded)
        invalid = sum(p.n_invalid for p in pairs.values())
        summary = (
            f"{judge}: {len(pairs)} pairs, {used} in the test, {len(pairs) - used} excluded, "
            f"{format_count(invalid)} invalid verdicts"
        )
        sections.append(PairSection(judge, summary, table))
    return sections


def _coverage(report: AffinityReport) -> tuple[Table, list[str]]:
    coverage = report.coverage
    table = Table(
        "coverage-table", [Column("Quantity", align="left"), Column("Value", align="left")]
    )

    def row(label: str, cell: Cell) -> None:
        table.rows.append([_text(label), cell])

    row("Items", _count(coverage.n_items, field="n_items"))
    row("Model outputs (answers to items)", _count(coverage.n_outputs, field="n_outputs"))
    row("Judge verdicts", _count(coverage.n_verdicts, field="n_verdicts"))
    row(
        "Unparseable verdicts (excluded from scores)",
        _count(coverage.n_invalid_verdicts, field="n_invalid_verdicts"),
    )
    row(
        "Judge–candidate pairs with no valid verdict",
        _count(coverage.pairs_without_verdicts, field="pairs_without_verdicts"),
    )
    if coverage.failed_calls:
        failed = ", ".join(f"{stage}: {n:,}" for stage, n in sorted(coverage.failed_calls.items()))
    else:
        failed = "none recorded"
    row("Model calls that failed for good", _text(failed, field="failed_calls"))
    row(
        "Models with only chosen options (discrete CAPA)",
        _text(", ".join(coverage.discrete_only_models) or "none", field="discrete_only_models"),
    )

    gaps: list[str] = list(coverage.notes)
    for judge in report.judges:
        if judge.status != "ok":
            gaps.append(
                f"Judge {judge.judge} was not tested: {judge.reason or 'insufficient data'}."
            )
    for pair in report.pairs:
        if pair.n_invalid:
            gaps.append(
                f"{pair.judge} on {pair.candidate}: {pair.n_invalid:,} unparseable verdicts "
                f"excluded ({pair.n_valid:,} valid)."
            )
        if pair.capa is None or is_missing(pair.capa):
            gaps.append(
                f"{pair.judge} and {pair.candidate}: CAPA undefined "
                f"({pair.capa_undefined_reason or 'no reason recorded'})."
            )
        if pair.excluded and pair.judge != pair.candidate:
            reason = pair.exclusion_reason or "no reason recorded"
            gaps.append(f"{pair.judge} on {pair.candidate}: excluded from the test ({reason}).")
    return table, gaps


# --- methodology and provenance ------------------------------------------------------------------


def _settings_table(settings: AnalysisSettings) -> Table:
    table = Table(
        "settings-table",
        _widths(
            [
                Column("Setting", align="left"),
                Column("Value", align="left"),
                Column("Meaning", align="left"),
            ],
            [20, 16, 64],
        ),
    )
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, list):
            shown = (
                "; ".join(" / ".join(v) if isinstance(v, tuple | list) else str(v) for v in value)
                or "none"
            )
        else:
            shown = (
                format_count(value)
                if isinstance(value, int) and not isinstance(value, bool) and name.startswith("n_")
                else str(value)
            )
        table.rows.append(
            [_text(name, css="mono"), _text(shown, field=name), _text(info.description or "")]
        )
    return table


def _prompt_parts(prompt: object) -> list[tuple[str, str]]:
    if isinstance(prompt, str):
        return [("template", prompt)]
    if isinstance(prompt, dict):
        # Text lives in "system" and "user"; a spec's "template" is only a built-in's name.
        return [
            (key, value)
            for key in ("system", "user")
            if isinstance(value := prompt.get(key), str) and value
        ]
    return []


def _hash_check(name: str | None, parts: list[tuple[str, str]], recorded: dict[str, str]) -> str:
    """Whether the shown text hashes to the SHA-256 recorded for the template name."""
    texts = dict(parts)
    if not name or name not in recorded or "user" not in texts:
        return "No recorded SHA-256 to check this text against."
    digest = JudgeTemplate(name=name, system=texts.get("system", ""), user=texts["user"]).sha256
    if digest == recorded[name]:
        return f"Its SHA-256 matches the one recorded for {name!r} ({digest[:12]}…)."
    return (
        f"WARNING: its SHA-256 ({digest[:12]}…) differs from the one recorded for {name!r} "
        f"({recorded[name][:12]}…)."
    )


def _prompt(report: AffinityReport) -> tuple[list[tuple[str, str]], str]:
    """The judge prompt text, where the result holds it, with a check against its hash."""
    provenance = report.provenance
    recorded = provenance.prompt_templates
    spec_prompt = (provenance.spec or {}).get("judge_prompt")
    sources = (
        ("provenance.judge_prompt", (provenance.model_extra or {}).get("judge_prompt")),
        ("provenance.spec.judge_prompt", spec_prompt),
    )
    for source, prompt in sources:
        parts = _prompt_parts(prompt)
        if parts:
            name = None
            if isinstance(prompt, dict):
                name = prompt.get("name") or prompt.get("template")
            elif len(recorded) == 1:
                name = next(iter(recorded))
            shown = f"Template {name!r}, as recorded in {source}." if name else f"From {source}."
            return parts, f"{shown} {_hash_check(name, parts, recorded)}"
    for name, digest in recorded.items():
        builtin = BUILTIN_JUDGE_TEMPLATES.get(name)
        if builtin is not None and builtin.sha256 == digest:
            return [("system", builtin.system), ("user", builtin.user)], (
                f"The result records the built-in template {name!r} by name and SHA-256; the "
                "text below is today's built-in template, whose SHA-256 matches the record."
            )
    if recorded:
        return [], (
            "The result does not store the template text; it records the templates used by "
            "name and SHA-256: " + ", ".join(f"{k} ({v[:12]}…)" for k, v in recorded.items()) + "."
        )
    return [], "The result records no judge prompt template."


def _seeds(value: object, path: str = "spec") -> list[tuple[str, str]]:
    """Every ``seed`` field in the spec, with where it is (e.g. ``spec.sampling.seed``)."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}"
            if key == "seed" and not isinstance(inner, dict | list):
                found.append((where, json.dumps(inner)))
            else:
                found += _seeds(inner, where)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _seeds(inner, f"{path}[{index}]")
    return found


def _keyed_table(table_id: str, rows: Iterable[tuple[str, str]], key: str, value: str) -> Table:
    table = Table(table_id, [Column(key, align="left"), Column(value, align="left")])
    for k, v in rows:
        table.rows.append([_text(k), _text(v, css="mono")])
    return table


def _dict_rows_table(table_id: str, rows: list[dict]) -> Table:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    table = Table(table_id, [Column(k, align="left") for k in keys])
    for row in rows:
        table.rows.append(
            [
                _text(
                    json.dumps(row[k], sort_keys=True, ensure_ascii=False)
                    if isinstance(row.get(k), dict | list)
                    else str(row[k]),
                    css="mono",
                )
                if k in row and row[k] is not None
                else table.missing("not set (null or absent in the result)", align="left")
                for k in keys
            ]
        )
    return table


def build_content(
    report: AffinityReport, result_sha256: str, renderer: list[tuple[str, str]]
) -> ReportContent:
    """Select, order and format everything the report shows."""
    family = family_order(report)
    ordered = ordered_judges(report)
    settings = report.settings
    method = CORRECTION_NAMES[settings.correction]
    provenance = report.provenance

    flagged = [j for j in ordered if j.status == "ok" and j.flagged]
    clear = [j for j in ordered if j.status == "ok" and not j.flagged]
    insufficient = [j for j in ordered if j.status != "ok"]
    candidates = sorted({p.candidate for p in report.pairs})
    headline = verdict_line(report)
    method_line = (
        f"A judge is flagged when its partial correlation between judgment score and CAPA, "
        f"controlling for candidate accuracy, is above {settings.min_effect:g} with a "
        f"{method}-adjusted p-value below {settings.alpha:g}."
    )
    pooled = report.pooled
    if pooled.r is None or is_missing(pooled.r):
        pooled_sentence = (
            f"Pooled across judges: {MISSING} (undefined; {pooled.n_judges} judges tested)."
        )
    else:
        pooled_sentence = (
            f"Pooled across the {pooled.n_judges} tested judges (fixed-effect Fisher z): "
            f"partial r = {format_value(pooled.r)} ({_range(pooled.ci95)}), "
            f"p = {format_p(pooled.p_value)}. {pooled.note}"
        )

    coverage_table, gaps = _coverage(report)
    coverage = report.coverage
    failed = sum(coverage.failed_calls.values())
    missing = [
        (coverage.n_invalid_verdicts, "unparseable verdict", "s", " excluded from scores"),
        (coverage.pairs_without_verdicts, "judge–candidate pair", "s", " without a valid verdict"),
        (
            len(coverage.discrete_only_models),
            "model",
            "s",
            " with only chosen options (discrete CAPA)",
        ),
        (failed, "model call", "s", " failed for good"),
        (len(insufficient), "judge", "s", " not tested (insufficient data)"),
        (
            sum(1 for p in report.pairs if p.capa is None or is_missing(p.capa)),
            "pair",
            "s",
            " with undefined CAPA",
        ),
    ]
    coverage_line = "; ".join(
        f"{n:,} {noun}{plural if n != 1 else ''}{rest}" for n, noun, plural, rest in missing if n
    )
    coverage_line = (coverage_line + ".") if coverage_line else "None recorded."
    prompt_parts, prompt_note = _prompt(report)
    manifest = [
        ("Audit id", provenance.audit_id or MISSING),
        (
            "Analysis time",
            f"{human_time(provenance.created_at)} ({provenance.created_at})"
            if provenance.created_at
            else "not recorded",
        ),
        ("Result schema version", report.schema_version),
        ("Input SHA-256 (canonical JSON of the input bundle)", provenance.input_sha256),
        ("Result SHA-256 (canonical JSON of this result)", result_sha256),
        ("Seed (bootstrap and permutations)", str(settings.seed)),
    ]
    manifest += [
        (f"Seed in the audit spec ({path})", value) for path, value in _seeds(provenance.spec)
    ]
    # The judge prompt is shown under Methodology; other extra fields are listed as they are.
    extra = provenance.model_extra or {}
    extras = {k: v for k, v in extra.items() if k != "judge_prompt"}
    spec_name = (provenance.spec or {}).get("name")
    return ReportContent(
        title="Affinity-bias audit of LLM judges",
        audit_id=provenance.audit_id,
        audit_name=spec_name if isinstance(spec_name, str) and spec_name else None,
        simulated=is_simulated(report),
        created_at=provenance.created_at or "not recorded",
        created_human=human_time(provenance.created_at),
        result_sha256=result_sha256,
        input_sha256=provenance.input_sha256,
        schema_version=report.schema_version,
        glance=[
            ("Judges", str(len(report.judges))),
            ("Flagged", str(len(flagged))),
            ("Candidates", str(len(candidates))),
            ("Items", format_count(report.coverage.n_items)),
            ("Verdicts", format_count(report.coverage.n_verdicts)),
            ("Invalid verdicts", format_count(report.coverage.n_invalid_verdicts)),
        ],
        headline=headline,
        method_line=method_line,
        findings=[_finding(report, j, family.get(j.judge, NO_FAMILY)) for j in ordered],
        pooled_sentence=pooled_sentence,
        summary_table=_summary_table(report, ordered, family),
        judge_table=_judge_table(report, ordered),
        robustness_table=_robustness_table(report, ordered),
        ols_table=_ols_table(report, ordered),
        model_table=_model_table(report, family),
        pair_sections=_pair_sections(report, ordered, family),
        coverage_table=coverage_table,
        data_gaps=gaps,
        coverage_line=coverage_line[0].upper() + coverage_line[1:],
        n_tested=(
            report.multiple_testing.n_tests
            if report.multiple_testing is not None
            else len(flagged) + len(clear)
        ),
        tested_what=(
            "findings (judges × probes)"
            if report.multiple_testing is not None
            and report.multiple_testing.family == "judges x probes"
            else "judges"
        ),
        testing_statement=(
            report.multiple_testing.statement
            if report.multiple_testing is not None
            else f"{method} correction across the judges tested."
        ),
        settings_table=_settings_table(settings),
        correction_name=method,
        settings=settings,
        prompt_parts=prompt_parts,
        prompt_note=prompt_note,
        manifest_table=_keyed_table("manifest-table", manifest, "Field", "Value"),
        software_table=_keyed_table(
            "software-table",
            [
                *sorted(provenance.software.items()),
                ("judge-auditor code (git commit)", provenance.code_commit or "not recorded"),
            ],
            "Package",
            "Version",
        ),
        provenance_models_table=_dict_rows_table("provenance-models-table", provenance.models),
        template_table=_keyed_table(
            "template-table", sorted(provenance.prompt_templates.items()), "Template", "SHA-256"
        ),
        spec_json=json.dumps(provenance.spec, indent=2, sort_keys=True, ensure_ascii=False)
        if provenance.spec is not None
        else None,
        extra_provenance_json=json.dumps(extras, indent=2, sort_keys=True, ensure_ascii=False)
        if extras
        else None,
        renderer=renderer,
        flagged_judges=[j.judge for j in flagged],
        code_commit=provenance.code_commit,
    )
