"""The drift page of a scheduled run: each judge's partial r over the runs, as a plot, and the
run's comparison with the previous run and the baseline.

Drawn from the drift document a scheduled run's result holds (``provenance.drift``, written by
`auditor.services.governance`): nothing is estimated here. Deterministic SVG (fixed hash salt,
glyphs as paths, no metadata), so the same drift document gives the same bytes.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
from matplotlib.figure import Figure

__all__ = ["drift_history_svg", "render_drift_html"]

_STYLE: Any = {
    "svg.hashsalt": "judge-auditor-drift",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": False,
}
_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def drift_history_svg(history: Sequence[Mapping[str, Any]]) -> str:
    """Line plot of each judge's partial r (with its 95% CI as a band) over the runs; a
    filled marker where the judge was flagged."""
    judges = sorted({name for point in history for name in point.get("judges", {})})
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(7.5, 3.4))
        axes = figure.add_subplot()
        positions = list(range(len(history)))
        for index, judge in enumerate(judges):
            color = _COLORS[index % len(_COLORS)]
            xs: list[int] = []
            ys: list[float] = []
            lows: list[float] = []
            highs: list[float] = []
            flagged: list[bool] = []
            for x, point in zip(positions, history, strict=True):
                entry = point.get("judges", {}).get(judge) or {}
                r = _finite(entry.get("partial_r"))
                if r is None:
                    continue
                ci = entry.get("ci95") or [None, None]
                xs.append(x)
                ys.append(r)
                low, high = _finite(ci[0]), _finite(ci[1])
                lows.append(r if low is None else low)
                highs.append(r if high is None else high)
                flagged.append(bool(entry.get("flagged")))
            if not xs:
                continue
            axes.fill_between(xs, lows, highs, color=color, alpha=0.12, linewidth=0)
            axes.plot(xs, ys, color=color, linewidth=1.4, label=judge)
            axes.scatter(
                xs,
                ys,
                s=22,
                facecolors=[color if f else "white" for f in flagged],
                edgecolors=color,
                zorder=3,
            )
        axes.axhline(0.0, color="#888888", linewidth=0.8)
        axes.set_xticks(positions)
        axes.set_xticklabels(
            [str(point.get("slot_at", ""))[:16].replace("T", "\n") for point in history],
            fontsize=6.5,
        )
        axes.set_ylabel("partial r (score, CAPA | accuracy)")
        axes.set_title("Affinity bias per judge over scheduled runs (filled: flagged)")
        if judges:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(
            buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None}
        )
        return buffer.getvalue()


def _number(value: Any, digits: int = 3) -> str:
    number = _finite(value)
    return "—" if number is None else f"{number:+.{digits}f}"


def _interval(value: Any) -> str:
    if not value:
        return "—"
    return f"[{_number(value[0])}, {_number(value[1])}]"


def _comparison_table(comparison: Mapping[str, Any] | None, title: str) -> str:
    if not comparison:
        return f"<h2>{html.escape(title)}</h2><p>Nothing to compare with yet.</p>"
    rows = []
    for judge in comparison.get("judges", []):
        rate = _finite(judge.get("flip_rate"))
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(cell))}</td>"
                for cell in (
                    judge.get("judge"),
                    _number(judge.get("partial_r_before")),
                    _number(judge.get("partial_r_after")),
                    _number(judge.get("delta")),
                    _interval(judge.get("ci95")),
                    judge.get("flag_change") or "—",
                    _number(judge.get("accuracy_delta")),
                    "—" if rate is None else f"{rate:.1%} of {judge.get('n_verdicts_compared')}",
                    judge.get("reason") or "",
                )
            )
            + "</tr>"
        )
    header = "".join(
        f"<th>{label}</th>"
        for label in (
            "judge",
            "r before",
            "r after",
            "change",
            "95% CI of change",
            "flag",
            "accuracy change",
            "verdict flips",
            "note",
        )
    )
    before = html.escape(str(comparison.get("before_audit_id")))
    return (
        f"<h2>{html.escape(title)}</h2><p>Compared with audit <code>{before}</code>; CI: paired "
        f"bootstrap over candidates ({comparison.get('n_bootstrap')} resamples).</p>"
        f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def drift_section_html(drift: Mapping[str, Any], *, heading: int = 2) -> str:
    """The drift of a scheduled run as an HTML fragment: alerts, the history plot of each
    judge's partial r over runs, and the comparisons with the previous run and the baseline."""
    page = render_drift_html(drift).decode("utf-8")
    body = page[page.index("<body>") + len("<body>") : page.index("</body>")]
    body = body[body.index("</h1>") + len("</h1>") :]
    if heading != 2:
        body = body.replace("<h2>", f"<h{heading}>").replace("</h2>", f"</h{heading}>")
    return body


def render_drift_html(drift: Mapping[str, Any]) -> bytes:
    """A self-contained HTML page: the history plot, then the comparisons and the alerts."""
    history = drift.get("history") or []
    alerts = drift.get("alerts") or []
    alert_items = "".join(
        f"<li><b>{html.escape(str(a.get('judge')))}</b>: {html.escape(str(a.get('reason')))} "
        f"(against the {html.escape(str(a.get('against')))} run; change "
        f"{_number(a.get('delta'))}, CI {_interval(a.get('ci95'))})</li>"
        for a in alerts
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Drift of a scheduled audit</title><style>",
        "body{font-family:DejaVu Sans,Arial,sans-serif;margin:2em;max-width:70em}",
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;",
        "text-align:right}td:first-child,th:first-child{text-align:left}",
        "svg{max-width:100%;height:auto}</style></head><body>",
        "<h1>Drift of a scheduled audit</h1>",
        f"<p>Schedule <code>{html.escape(str(drift.get('schedule_id')))}</code>, run "
        f"<code>{html.escape(str(drift.get('run_id')))}</code>, slot "
        f"{html.escape(str(drift.get('slot_at')))} (standing for "
        f"{int(drift.get('missed_slots') or 0)} missed slot(s) as well).</p>",
        f"<h2>Alerts</h2><ul>{alert_items}</ul>" if alerts else "<h2>Alerts</h2><p>None.</p>",
        "<h2>History of each judge's partial r</h2>",
        drift_history_svg(history) if history else "<p>No history yet.</p>",
        _comparison_table(drift.get("previous"), "Against the previous run"),
        _comparison_table(drift.get("baseline"), "Against the baseline"),
        "</body></html>\n",
    ]
    return "".join(parts).encode("utf-8")
