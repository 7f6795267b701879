"""The reliability section (Zhou et al., Nature 2024): three-way outcomes by difficulty per
model, judges' false approval by difficulty, and prompt stability; figures and the section in
HTML and Markdown, and a stand-alone HTML report.

Drawn from the probes' results (`ReliabilityResult`, `SupervisionResult`,
`PromptStabilityResult`) alone: nothing is estimated here. Deterministic SVG (fixed hash salt,
glyphs as paths, no metadata), so the same results give the same bytes.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Any

import matplotlib
import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure

from auditor.schemas.prompt_stability import PromptStabilityResult
from auditor.schemas.reliability import ReliabilityResult
from auditor.schemas.supervision import SupervisionResult
from reports.sections import SectionFigure, section_environment, svg_of

__all__ = [
    "ReliabilityFigure",
    "reliability_figures",
    "render_reliability_html",
    "render_reliability_markdown",
    "section_html",
    "section_markdown",
]

ReliabilityFigure = SectionFigure  # the name this module has exported

# Okabe-Ito: correct = bluish green, avoidant = yellow-grey, incorrect = vermillion.
COLOURS = {"correct": "#009E73", "avoidant": "#E6C35C", "incorrect": "#D55E00"}
JUDGE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MAX_PANELS = 24
"""Models drawn in the outcome small multiples (the table lists every model)."""
DIFFICULTY_SOURCE = {
    "item": "the items' own difficulty field (e.g. human-rated)",
    "mcq_error_share": "a proxy: the share of the bundle's models that answer the "
    "multiple-choice item wrongly",
}
TRUTH_SOURCE = {
    "human": "human labels",
    "grader": "a grader model that saw the reference answer",
    "planted": "the simulation's planted truth",
}

_STYLE: Any = {
    "svg.hashsalt": "judge-auditor-reliability",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": False,
}


def _share(rate: Any) -> float:
    return 0.0 if rate.rate is None else float(rate.rate)


def outcome_bars(result: ReliabilityResult) -> SectionFigure | None:
    """Small multiples: per model, stacked shares of correct/avoidant/incorrect by bin."""
    models = result.models[:MAX_PANELS]
    if not models or not result.bins:
        return None
    n = len(models)
    columns = min(4, n)
    rows = math.ceil(n / columns)
    bins = np.arange(len(result.bins))
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(1.9 * columns + 0.6, 1.55 * rows + 0.7), layout="constrained")
        axes_grid = figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
        for index, axes in enumerate(axes_grid.flat):
            if index >= n:
                axes.set_visible(False)
                continue
            row = models[index]
            bottom = np.zeros(len(bins))
            for outcome in ("correct", "avoidant", "incorrect"):
                shares = np.array([_share(getattr(b, outcome)) for b in row.by_bin])
                axes.bar(
                    bins, shares, bottom=bottom, width=0.8, color=COLOURS[outcome], label=outcome
                )
                bottom += shares
            size = f" · {row.params:g}B" if row.params is not None else ""
            axes.set_title(f"{row.model}{size}", loc="left")
            axes.set_ylim(0, 1)
            axes.set_xticks(bins, [str(b + 1) for b in bins])
        for axes in axes_grid[-1]:
            axes.set_xlabel("difficulty bin (1 = easiest)")
        for axes in axes_grid[:, 0]:
            axes.set_ylabel("share of answers")
        handles, labels = axes_grid.flat[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside upper right", ncols=3, frameon=False)
        svg = svg_of(figure)
    shown = "" if len(result.models) <= MAX_PANELS else f" (first {MAX_PANELS} models)"
    return SectionFigure(
        id="figure-outcomes",
        title="Outcomes by difficulty",
        svg=svg,
        caption="Share of each model's free-form answers that are correct, avoidant or "
        "incorrect in each quantile bin of difficulty"
        + shown
        + ". A reliable model's incorrect share is near zero on the easiest items.",
        alt="Stacked bars of correct, avoidant and incorrect shares by difficulty bin, one "
        "panel per model.",
    )


def false_approval_plot(result: SupervisionResult) -> SectionFigure | None:
    """Per judge: false approval (verdict 1 on incorrect answers) by bin with Wilson CIs."""
    judges = result.judges
    if not judges or not result.bins:
        return None
    bins = np.arange(len(result.bins))
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(5.6, 3.0), layout="constrained")
        axes = figure.add_subplot()
        offsets = np.linspace(-0.15, 0.15, len(judges)) if len(judges) > 1 else [0.0]
        for j, (row, offset) in enumerate(zip(judges, offsets, strict=True)):
            colour = JUDGE_COLOURS[j % len(JUDGE_COLOURS)]
            points = [(b, r.false_approval) for b, r in zip(bins, row.by_bin, strict=True)]
            xs = [b + offset for b, r in points if r.rate is not None]
            ys = [r.rate for _, r in points if r.rate is not None]
            low = [r.rate - r.ci95[0] for _, r in points if r.rate is not None and r.ci95]
            high = [r.ci95[1] - r.rate for _, r in points if r.rate is not None and r.ci95]
            axes.errorbar(
                xs,
                ys,
                yerr=[low, high],
                color=colour,
                marker="o",
                markersize=3.5,
                linewidth=1.2,
                capsize=2,
                label=row.judge,
            )
        axes.set_xticks(bins, [str(b + 1) for b in bins])
        axes.set_xlabel("difficulty bin (1 = easiest)")
        axes.set_ylabel("false approval")
        axes.set_ylim(0, 1)
        axes.legend(frameon=False, ncols=min(4, len(judges)))
        svg = svg_of(figure)
    return SectionFigure(
        id="figure-false-approval",
        title="Judges' false approval by difficulty",
        svg=svg,
        caption="Share of incorrect answers each judge graded correct (verdict 1), per "
        "difficulty bin, with Wilson 95% intervals. A line that falls to the right approves "
        "more errors on easy items.",
        alt="Line plot of false approval against difficulty bin, one line per judge.",
    )


def stability_plot(result: PromptStabilityResult) -> SectionFigure | None:
    """Flip share across templates with Wilson CIs, models then judges."""
    rows = [r for r in result.rows if r.flips.rate is not None]
    if not rows:
        return None
    labels = [f"{r.name} ({r.role})" for r in rows]
    y = np.arange(len(rows))[::-1]
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(5.6, 0.8 + 0.22 * len(rows)), layout="constrained")
        axes = figure.add_subplot()
        for yi, row in zip(y, rows, strict=True):
            colour = "#0072B2" if row.role == "model" else "#D55E00"
            share = float(row.flips.rate or 0.0)
            low, high = row.flips.ci95 or (share, share)
            axes.plot([low, high], [yi, yi], color=colour, linewidth=1.2)
            axes.plot([share], [yi], "o", color=colour, markersize=3.5)
        axes.set_yticks(y, labels)
        axes.set_xlim(0, max(0.1, max((r.flips.ci95 or (0, 0))[1] for r in rows) * 1.1))
        axes.set_xlabel("share of items (models) or answers (judges) that flip across templates")
        svg = svg_of(figure)
    return SectionFigure(
        id="figure-stability",
        title="Prompt stability",
        svg=svg,
        caption="Share of items whose correctness (models, blue) or answers whose verdict "
        "(judges, vermillion) is not the same under every prompt template, with Wilson 95% "
        "intervals.",
        alt="Dot plot of the flip share across prompt templates per model and judge.",
    )


def reliability_figures(
    reliability: ReliabilityResult | None,
    supervision: SupervisionResult | None,
    stability: PromptStabilityResult | None,
) -> list[SectionFigure]:
    figures = [
        outcome_bars(reliability) if reliability is not None else None,
        false_approval_plot(supervision) if supervision is not None else None,
        stability_plot(stability) if stability is not None else None,
    ]
    return [f for f in figures if f is not None]


# --- the section ---------------------------------------------------------------------------------


def _context(
    reliability: ReliabilityResult | None,
    supervision: SupervisionResult | None,
    stability: PromptStabilityResult | None,
    heading: int,
) -> dict[str, Any]:
    return {
        "rel": reliability,
        "sup": supervision,
        "stab": stability,
        "h": heading,
        "h2": heading + 1,
        "difficulty_source": DIFFICULTY_SOURCE,
        "truth_source": TRUTH_SOURCE,
    }


def section_html(
    reliability: ReliabilityResult | None,
    supervision: SupervisionResult | None,
    stability: PromptStabilityResult | None,
    heading: int = 2,
) -> Markup:
    """The section as an HTML fragment (figures inline as SVG)."""
    figures = {f.id: f for f in reliability_figures(reliability, supervision, stability)}
    html = (
        section_environment()
        .get_template("reliability.html.j2")
        .render(figures=figures, **_context(reliability, supervision, stability, heading))
    )
    return Markup(html)


def section_markdown(
    reliability: ReliabilityResult | None,
    supervision: SupervisionResult | None,
    stability: PromptStabilityResult | None,
    heading: int = 2,
) -> str:
    """The section in Markdown (tables; the figures are in the HTML and PDF reports)."""
    return (
        section_environment()
        .get_template("reliability.md.j2")
        .render(**_context(reliability, supervision, stability, heading))
    )


def render_reliability_html(
    reliability: ReliabilityResult | None,
    supervision: SupervisionResult | None,
    stability: PromptStabilityResult | None,
) -> bytes:
    """A stand-alone HTML page of the section."""
    css = (resources.files("reports") / "templates" / "report.css").read_text(encoding="utf-8")
    body = section_html(reliability, supervision, stability, heading=1)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Reliability</title><style>"
        + css
        + "</style></head><body><main>"
        + str(body)
        + "</main></body></html>\n"
    )
    return page.encode("utf-8")


def render_reliability_markdown(
    reliability: ReliabilityResult | None,
    supervision: SupervisionResult | None,
    stability: PromptStabilityResult | None,
) -> bytes:
    return section_markdown(reliability, supervision, stability, heading=1).encode("utf-8")
