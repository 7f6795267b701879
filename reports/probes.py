"""One report section per probe that ran, found by the probe's name: a new probe adds only its
templates ``templates/probes/<name>.html.j2`` and ``.md.j2`` (else the generic findings table,
``templates/probes/_generic.*``) and, if it draws figures, a module ``reports.probe_figures.<name>``
with ``figures(result) -> list[tuple[str, str]]`` (title, SVG text). Templates format numbers
with ``number`` (`reports.sections.NUMBERS`). Before the sections, a one-screen scorecard (judge
x probe, flagged cells marked, each cell linking to its section). Nothing here computes: the
templates format what the result holds."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jinja2 import Environment, TemplateNotFound

from auditor.schemas.probe import ProbeFinding, ProbeResult
from auditor.schemas.result import AuditResult
from reports.sections import NUMBERS

__all__ = [
    "PROBE_TITLES",
    "ProbeSection",
    "Scorecard",
    "ScorecardCell",
    "audit_scorecard",
    "probe_sections",
    "probe_title",
    "scorecard",
]

PROBE_TITLES: dict[str, str] = {
    "affinity": "Affinity bias (CAPA)",
    "position": "Position bias",
    "verbosity": "Verbosity bias",
    "self_preference": "Self and family preference",
    "cues": "Cue robustness",
    "injection": "Injection and master keys",
    "repeat": "Repeat consistency",
    "human_agreement": "Agreement with humans",
    "correlated_errors": "Correlated errors (judge inflation)",
}
"""Section titles; a probe not listed is titled from its name."""


def probe_title(name: str) -> str:
    return PROBE_TITLES.get(name) or name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class ProbeSection:
    name: str
    title: str
    body: str
    correction: str | None = None
    """The multiple-testing family and method behind the section's flags (its findings'
    ``correction``), stated under the section's title."""


@dataclass(frozen=True)
class ScorecardCell:
    text: str
    """The estimate as shown (3 decimals), or "—" when the judge has none for this probe."""
    flagged: bool
    note: str
    """Hover text: n, CI, adjusted p, or why there is no estimate."""


@dataclass(frozen=True)
class Scorecard:
    probes: list[tuple[str, str]]
    """(name, title) of each column, in report order; each links to ``#probe-<name>``."""
    rows: list[tuple[str, list[ScorecardCell]]]
    """(judge, one cell per probe)."""
    correction: str | None
    """The family and method of every flag (the findings' ``correction``)."""


def _cell(finding: ProbeFinding | None) -> ScorecardCell:
    if finding is None:
        return ScorecardCell("—", False, "not measured for this judge")
    if finding.status != "ok" or finding.estimate is None:
        return ScorecardCell("—", False, finding.reason or finding.status)
    note = f"n = {finding.n}"
    if finding.ci95 is not None:
        note += f"; 95% CI [{finding.ci95[0]:.3f}, {finding.ci95[1]:.3f}]"
    if finding.p_adjusted is not None:
        note += f"; adjusted p = {finding.p_adjusted:.2g}"
    return ScorecardCell(f"{finding.estimate:.3f}", finding.flagged, note)


def scorecard(judges: Sequence[str], probes: Mapping[str, Sequence[ProbeFinding]]) -> Scorecard:
    """The judge x probe scorecard of ``probes`` (name -> findings) for ``judges``: a column
    for each probe with a finding for one of them (model-level probes whose findings name
    candidates only are left to their sections)."""
    wanted = set(judges)
    columns = [
        name for name, findings in probes.items() if any(f.judge in wanted for f in findings)
    ]
    rows = []
    for judge in judges:
        cells = []
        for name in columns:
            finding = next((f for f in probes[name] if f.judge == judge), None)
            cells.append(_cell(finding))
        rows.append((judge, cells))
    corrections = [
        f.correction
        for name in columns
        for f in probes[name]
        if f.correction is not None and f.judge in wanted
    ]
    return Scorecard(
        probes=[(name, probe_title(name)) for name in columns],
        rows=rows,
        correction=corrections[0] if corrections else None,
    )


def audit_scorecard(report: AuditResult) -> Scorecard | None:
    """The scorecard of an audit: its judges (the affinity judges, then any other judge a probe
    measured) x the probes that measured them; None when no probe ran."""
    if not report.probes:
        return None
    judges = [judge.judge for judge in report.judges]
    if not judges:
        judges = sorted({f.judge for findings in report.probes.values() for f in findings})
    card = scorecard(judges, report.probes)
    return card if card.probes else None


def _figures(name: str, result: ProbeResult) -> list[tuple[str, str]]:
    try:
        module = importlib.import_module(f"reports.probe_figures.{name}")
    except ModuleNotFoundError:
        return []
    return list(module.figures(result))


def probe_sections(report: AuditResult, environment: Environment, kind: str) -> list[ProbeSection]:
    """The rendered section of every probe in ``report.probes`` (``kind``: "html" or "md")."""
    sections = []
    for name, findings in report.probes.items():
        result = report.probe_results.get(name)
        try:
            template = environment.get_template(f"probes/{name}.{kind}.j2")
        except TemplateNotFound:
            template = environment.get_template(f"probes/_generic.{kind}.j2")
        body = template.render(
            name=name,
            result=result,
            findings=findings,
            common=list(ProbeFinding.model_fields),
            figures=_figures(name, result) if result is not None and kind == "html" else [],
            skipped=report.skipped_probes,
            number=NUMBERS,
        )
        correction = next((f.correction for f in findings if f.correction is not None), None)
        if correction is None and report.multiple_testing is not None:
            correction = report.multiple_testing.label  # the family, though none here had a p
        sections.append(
            ProbeSection(name=name, title=probe_title(name), body=body, correction=correction)
        )
    return sections
