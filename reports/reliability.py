"""Figures of the reliability probes (Zhou et al., Nature 2024): three-way outcomes by
difficulty per model (`reliability`), judges' false approval by difficulty (`supervision`),
flips across prompt templates and the affinity partial r under each judge template
(`prompt_stability`). The audit report shows them in each probe's section
(`reports.probe_figures.<probe>`, templates ``probes/<probe>.*.j2``).

Drawn from the probes' results alone: nothing is estimated here. Deterministic SVG (fixed hash
salt, glyphs as paths, no metadata), so the same results give the same bytes.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from auditor.schemas.prompt_stability import PromptStabilityResult
from auditor.schemas.reliability import ReliabilityResult
from auditor.schemas.supervision import SupervisionResult
from reports.sections import SectionFigure, svg_of

__all__ = [
    "ReliabilityFigure",
    "affinity_by_template_plot",
    "false_approval_plot",
    "outcome_bars",
    "reliability_figures",
    "stability_plot",
]

ReliabilityFigure = SectionFigure  # the name this module has exported

# Okabe-Ito: correct = bluish green, avoidant = yellow-grey, incorrect = vermillion.
COLOURS = {"correct": "#009E73", "avoidant": "#E6C35C", "incorrect": "#D55E00"}
JUDGE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MAX_PANELS = 24
"""Models drawn in the outcome small multiples (the table lists every model)."""

_STYLE: Any = {
    "svg.hashsalt": "judge-auditor-reliability",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 8.5,
    # A fixed title height (no top ticks or labels to clear): left to matplotlib (None), each
    # title is placed by measuring its axes' top decorations at draw time, panel by panel.
    "axes.titley": 1.0,
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
        # A fixed grid, not the constrained layout: with 24 panels it solved for every tick
        # label and took most of the report's rendering time (1.5 s of this figure's 1.8 s).
        width, height = 1.9 * columns + 0.6, 1.55 * rows + 0.7
        figure = Figure(figsize=(width, height))
        figure.subplots_adjust(
            left=0.75 / width,
            right=1 - 0.1 / width,
            bottom=0.5 / height,
            top=1 - 0.55 / height,
            wspace=0.25,
            hspace=0.55,
        )
        # Not shared axes: every panel gets the same limits and ticks below. Sharing links the
        # 24 panels' limits, and matplotlib then visits every sibling whenever one panel's
        # limits are read or set (most of this figure's 2 s).
        axes_grid = figure.subplots(rows, columns, squeeze=False)
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
            axes.set_yticks([0, 0.5, 1])
            axes.set_xticks(bins, [str(b + 1) for b in bins])
            # every panel keeps its bin labels; the share labels are on the first column only
            axes.tick_params(labelleft=index % columns == 0)
        for axes in axes_grid[-1, :]:
            axes.set_xlabel("difficulty bin (1 = easiest)")
        for axes in axes_grid[:, 0]:
            axes.set_ylabel("share of answers")
        handles, labels = axes_grid.flat[0].get_legend_handles_labels()
        figure.legend(
            handles, labels, loc="upper right", bbox_to_anchor=(1, 1), ncols=3, frameon=False
        )
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
            rates = [r.false_approval for r in row.by_bin]
            shown = [
                (b + offset, r.rate, r.ci95)
                for b, r in zip(bins, rates, strict=True)
                if r.rate is not None
            ]
            xs = [x for x, _, _ in shown]
            ys = [rate for _, rate, _ in shown]
            # Distances from the estimate to its bounds; a missing interval draws no bar.
            low = [max(0.0, rate - ci[0]) if ci else 0.0 for _, rate, ci in shown]
            high = [max(0.0, ci[1] - rate) if ci else 0.0 for _, rate, ci in shown]
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


def affinity_by_template_plot(result: PromptStabilityResult) -> SectionFigure | None:
    """Per judge, the affinity partial r under each of its templates with Fisher-z 95% CIs."""
    rows = [
        r
        for r in result.rows
        if r.role == "judge" and any(v is not None for v in r.affinity_partial_r.values())
    ]
    if not rows:
        return None
    templates: list[str] = []
    for row in rows:
        templates += [t for t in row.templates if t not in templates]
    y = np.arange(len(rows))[::-1]
    step = 0.6 / max(1, len(templates))
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(5.6, 0.9 + 0.3 * len(rows) * len(templates)), layout="constrained")
        axes = figure.add_subplot()
        axes.axvline(0, color="#999999", linewidth=0.8)
        for t, template in enumerate(templates):
            colour = JUDGE_COLOURS[t % len(JUDGE_COLOURS)]
            offset = (t - (len(templates) - 1) / 2) * step
            drawn = False
            for yi, row in zip(y, rows, strict=True):
                value = row.affinity_partial_r.get(template)
                if value is None:
                    continue
                low, high = row.affinity_ci95.get(template) or (value, value)
                axes.plot([low, high], [yi - offset] * 2, color=colour, linewidth=1.2)
                axes.plot(
                    [value],
                    [yi - offset],
                    "o",
                    color=colour,
                    markersize=3.5,
                    label=None if drawn else template,
                )
                drawn = True
        axes.set_yticks(y, [r.name for r in rows])
        axes.set_xlim(-1, 1)
        axes.set_xlabel("affinity partial r (score ~ CAPA | accuracy)")
        handles, labels = axes.get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside upper right", ncols=4, frameon=False)
        svg = svg_of(figure)
    return SectionFigure(
        id="figure-affinity-by-template",
        title="Affinity partial r by judge template",
        svg=svg,
        caption="Each judge's affinity partial r computed from one template's verdicts "
        "alone, with Fisher-z 95% intervals. Overlapping intervals across templates: the "
        "finding belongs to the judge, not to one wording.",
        alt="Dot plot of each judge's affinity partial r under each prompt template.",
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
        affinity_by_template_plot(stability) if stability is not None else None,
    ]
    return [f for f in figures if f is not None]
