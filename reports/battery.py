"""The battery report: a one-screen scorecard (judge x probe, flagged cells marked, each linking
to its section), then one section per probe with a forest plot of its per-judge estimates.

Rendered from a `BatteryResult` alone: nothing is estimated here. Figures are SVG with a fixed
hash salt and no metadata, so the same result gives the same bytes.
"""

from __future__ import annotations

import io
from html import escape

import matplotlib
from matplotlib.figure import Figure

from auditor.schemas.battery import BatteryResult
from auditor.schemas.probe import ProbeFinding, ProbeResult
from reports.formatting import format_ci, format_p, format_value
from reports.probes import probe_title, scorecard
from reports.sections import section_environment

__all__ = ["battery_figure", "render_battery_html"]

FLAGGED = "#D55E00"  # Okabe-Ito vermillion
CLEAN = "#0072B2"  # Okabe-Ito blue
NULL_LINE = {"position": 0.5, "verbosity": 0.5, "cues": 0.0, "self_preference": 0.0}
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;
text-align:center}td.flag{background:#fbe3d6;font-weight:bold}td.flag a{color:#a33c00}
td.ok a{color:#225}td.na{color:#999}td.score-flag{background:#fbe3d6;font-weight:bold}
td.score-flag a{color:#a33c00}caption{text-align:left;color:#555;padding:.3rem 0}
section{margin-top:2.5rem}.meaning{color:#555}th.judge,td.judge{text-align:left}
"""


def _finding_value(finding: ProbeFinding) -> str:
    if finding.status != "ok" or finding.estimate is None:
        return "—"
    return format_value(finding.estimate, 3)


def battery_figure(result: ProbeResult) -> str:
    """SVG forest plot: each judge's estimate with its 95% CI, flagged judges in vermillion."""
    matplotlib.rcParams["svg.hashsalt"] = "judge-auditor-battery"
    matplotlib.rcParams["svg.fonttype"] = "path"
    findings = [f for f in result.findings if f.estimate is not None]
    figure = Figure(figsize=(6.0, 0.45 * max(len(findings), 1) + 1.0))
    axes = figure.add_subplot()
    for row, finding in enumerate(findings):
        color = FLAGGED if finding.flagged else CLEAN
        if finding.ci95 is not None:
            axes.plot(finding.ci95, [row, row], color=color, linewidth=2)
        axes.plot([float(finding.estimate or 0.0)], [row], "o", color=color)
    if result.probe in NULL_LINE:
        axes.axvline(NULL_LINE[result.probe], color="#888", linestyle="--", linewidth=1)
    axes.set_yticks(range(len(findings)), [f.judge for f in findings])
    axes.invert_yaxis()
    axes.set_xlabel("estimate (95% CI); vermillion = flagged")
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _scorecard(battery: BatteryResult) -> str:
    """The same judge x probe scorecard as the audit report's (`reports.probes.scorecard`)."""
    card = scorecard(battery.judges, {r.probe: r.findings for r in battery.results})
    skipped = "".join(
        f"<li><b>{escape(s.probe)}</b> did not run: {escape(s.reason)}</li>"
        for s in battery.skipped
    )
    statement = (
        f'<p class="meaning">{escape(battery.multiple_testing.statement)}</p>'
        if battery.multiple_testing is not None
        else ""
    )
    table = section_environment().get_template("probes/_scorecard.html.j2").render(scorecard=card)
    return table + statement + (f"<ul>{skipped}</ul>" if skipped else "")


def _section(result: ProbeResult) -> str:
    rows = "".join(
        f'<tr><td class="judge">{escape(f.judge)}</td><td>{f.n}</td><td>{_finding_value(f)}</td>'
        f"<td>{format_ci(f.ci95) if f.ci95 else '—'}</td>"
        f"<td>{format_p(f.p_value) if f.p_value is not None else '—'}</td>"
        f"<td>{format_p(f.p_adjusted) if f.p_adjusted is not None else '—'}</td>"
        f"<td>{'⚑ yes' if f.flagged else 'no'}</td>"
        f"<td>{escape(f.reason or '')}</td></tr>"
        for f in result.findings
    )
    correction = next((f.correction for f in result.findings if f.correction), None)
    rule = (
        f'<p class="meaning">Flags: p adjusted by {escape(correction)}.</p>' if correction else ""
    )
    return (
        f'<section id="probe-{result.probe}"><h2>{escape(probe_title(result.probe))}'
        f'</h2><p class="meaning">Estimate: {escape(result.estimate_meaning)}.</p>{rule}'
        f"{battery_figure(result)}"
        '<table><tr><th class="judge">judge</th><th>n</th><th>estimate</th><th>95% CI</th>'
        f"<th>p</th><th>p adjusted</th><th>flagged</th><th>note</th></tr>{rows}</table></section>"
    )


def render_battery_html(battery: BatteryResult) -> bytes:
    """The stand-alone battery report."""
    body = "".join(_section(result) for result in battery.results)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Judge bias battery</title><style>{_CSS}</style></head><body><main>"
        f"<h1>Judge bias battery</h1>{_scorecard(battery)}{body}</main></body></html>\n"
    )
    return page.encode("utf-8")
