"""The report's figures, drawn with matplotlib as deterministic SVG.

Figures plot what the result object holds; the only arithmetic is placing things: the OLS line
of each judge is drawn from its stored coefficients at the mean accuracy of the candidates shown.
Same result in, same bytes out: a fixed SVG hash salt, no date or creator metadata, the DejaVu
font bundled with matplotlib, and glyphs drawn as paths (no font lookup in the viewer).
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle
from matplotlib.ticker import MaxNLocator

from auditor.schemas.result import AffinityReport, JudgeResult, PairResult
from reports.content import NO_FAMILY, coefficient, family_order, ordered_judges
from reports.formatting import format_value, is_missing
from reports.sections import SectionFigure, svg_of

__all__ = ["ReportFigure", "build_figures"]

FLAGGED = "#D55E00"  # Okabe-Ito vermillion
CLEAR = "#0072B2"  # Okabe-Ito blue
INSUFFICIENT = "#8C8C8C"
POOLED = "#222222"
GRID = "#E6E6E6"
UNDEFINED = "#D9D9D9"

_STYLE: Any = {  # Any: matplotlib's stubs type rc keys as a Literal union
    "svg.hashsalt": "judge-auditor-report",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "legend.fontsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.grid": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": False,
}
PANEL_COLUMNS = 3
"""Panels a row; up to four judges fit one row (no half-empty second row)."""


def _columns(count: int) -> int:
    return max(1, count) if count <= 4 else PANEL_COLUMNS


ReportFigure = SectionFigure
"""A figure of the report: the same shape as a probe section's figure."""


def _status_color(judge: JudgeResult) -> str:
    if judge.status != "ok":
        return INSUFFICIENT
    return FLAGGED if judge.flagged else CLEAR


def _ok(value: float | None) -> bool:
    return value is not None and not is_missing(value)


def _finite(value: float | None) -> float | None:
    return value if _ok(value) else None


def _finite_pair(pair: tuple[float, float] | None) -> tuple[float, float] | None:
    return pair if pair is not None and _ok(pair[0]) and _ok(pair[1]) else None


def _usable(pair: PairResult) -> bool:
    return not pair.excluded and _ok(pair.capa) and _ok(pair.judgment_score) and _ok(pair.accuracy)


def _label(judge: JudgeResult) -> str:
    if judge.status != "ok":
        return "insufficient data"
    return f"r = {format_value(judge.partial_r)}" + (", flagged" if judge.flagged else "")


# --- forest plot ---------------------------------------------------------------------------------


def forest_plot(report: AffinityReport) -> ReportFigure:
    judges = ordered_judges(report)
    pooled = report.pooled
    rows = len(judges) + 1
    figure = Figure(figsize=(7.6, 0.34 * rows + 1.3), layout="constrained")
    ax = figure.add_subplot()
    positions = list(range(rows - 1, 0, -1))  # judges top-down; pooled at 0
    lows, highs = [0.0], [0.0]
    labels, values = [], []
    for y, judge in zip(positions, judges, strict=True):
        color = _status_color(judge)
        labels.append(judge.judge)
        r = _finite(judge.partial_r)
        if judge.status != "ok" or r is None:
            ax.text(
                0,
                y,
                "insufficient data",
                va="center",
                ha="center",
                color=color,
                fontsize=7.5,
                style="italic",
            )
            values.append("—")
            continue
        ci, boot = _finite_pair(judge.ci95), _finite_pair(judge.bootstrap_ci95)
        if ci is not None:
            ax.plot(ci, [y, y], color=color, lw=2.0, solid_capstyle="butt")
            lows.append(ci[0])
            highs.append(ci[1])
        if boot is not None:
            ax.plot(
                boot, [y - 0.22, y - 0.22], color=color, lw=0.9, alpha=0.55, solid_capstyle="butt"
            )
            lows.append(boot[0])
            highs.append(boot[1])
        ax.plot([r], [y], marker="s", color=color, markersize=5.5, lw=0)
        lows.append(r)
        highs.append(r)
        values.append(
            f"{format_value(r)} [{format_value(ci[0])}, {format_value(ci[1])}]"
            if ci is not None
            else format_value(r)
        )
    labels.append(f"Pooled ({pooled.n_judges} judges)")
    pooled_r, pooled_ci = _finite(pooled.r), _finite_pair(pooled.ci95)
    if pooled_r is not None and pooled_ci is not None:
        low, high = pooled_ci
        ax.add_patch(
            Polygon(
                [(low, 0), (pooled_r, 0.3), (high, 0), (pooled_r, -0.3)], closed=True, color=POOLED
            )
        )
        lows.append(low)
        highs.append(high)
        values.append(f"{format_value(pooled_r)} [{format_value(low)}, {format_value(high)}]")
    else:
        ax.text(0, 0, "undefined", va="center", ha="center", fontsize=7.5, style="italic")
        values.append("—")
    ax.axhline(0.5, color="#BBBBBB", lw=0.6)
    ax.axvline(0, color="#444444", lw=0.8)
    if report.settings.min_effect > 0:
        ax.axvline(report.settings.min_effect, color="#444444", lw=0.7, ls=":")
    left = max(-1.0, math.floor((min(lows) - 0.05) * 10) / 10)
    right = min(1.0, math.ceil((max(highs) + 0.05) * 10) / 10)
    ax.set_xlim(left, right)
    ax.set_ylim(-0.7, rows - 0.4)
    ticks = [*positions, 0]
    ax.set_yticks(ticks, labels)
    for tick, judge in zip(ax.get_yticklabels(), judges, strict=False):
        tick.set_color(_status_color(judge))
    right_axis = ax.secondary_yaxis("right")
    right_axis.set_yticks(ticks, values)
    right_axis.tick_params(length=0)
    right_axis.spines["right"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.xaxis.grid(True, color=GRID, lw=0.6)
    ax.set_axisbelow(True)
    ax.set_xlabel("Partial correlation of judgment score and CAPA, controlling for accuracy")
    handles = [
        Line2D([], [], color=FLAGGED, lw=2, marker="s", label="flagged"),
        Line2D([], [], color=CLEAR, lw=2, marker="s", label="not flagged"),
        Line2D([], [], color="#666666", lw=2, label="Fisher-z 95% CI"),
        Line2D([], [], color="#666666", lw=0.9, alpha=0.55, label="bootstrap 95% CI"),
    ]
    figure.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False)
    return ReportFigure(
        "figure-forest",
        "Partial correlation per judge",
        svg_of(figure),
        "Each judge's partial correlation between judgment score and CAPA, controlling for "
        "candidate accuracy (square), with its Fisher-z 95% confidence interval (thick line) and "
        "percentile bootstrap 95% interval (thin line below). Right of zero: the judge gives "
        "higher scores to candidates whose mistakes resemble its own. The diamond is the "
        "fixed-effect pooled estimate; judges share candidates, so its interval is optimistic.",
        "Forest plot of partial correlations per judge with confidence intervals and a pooled "
        "estimate.",
    )


# --- small multiples -----------------------------------------------------------------------------


def _grid(
    count: int, panel: tuple[float, float], *, right: float = 0.25, bottom: float = 0.55
) -> tuple[Figure, list]:
    """Small multiples with fixed margins in inches (constrained layout is ~3x slower here).

    Each panel is ``panel`` inches (width, height) plus room for a two-line title above it and
    for its own x-axis tick labels and label below it: every panel is read on its own.
    """
    width, height = panel
    columns = _columns(count)
    rows = max(1, math.ceil(count / columns))
    left, top, title, gap_x, gap_y = 0.62, 0.12, 0.42, 0.22, 0.72
    fig_w = left + columns * width + (columns - 1) * gap_x + right
    fig_h = top + rows * (title + height) + (rows - 1) * gap_y + bottom
    figure = Figure(figsize=(fig_w, fig_h))
    # Not shared axes (every caller sets the same limits on each panel): matplotlib visits all
    # of a shared group's panels whenever one panel's limits are read or set.
    axes = figure.subplots(
        rows,
        columns,
        squeeze=False,
        gridspec_kw={
            "left": left / fig_w,
            "right": (fig_w - right) / fig_w,
            "bottom": bottom / fig_h,
            "top": (fig_h - top - title) / fig_h,
            "wspace": gap_x / width,
            "hspace": (gap_y + title) / height,
        },
    ).ravel()
    for index, ax in enumerate(axes):
        ax.tick_params(labelleft=index % columns == 0)  # value labels on the first column only
    for ax in axes[count:]:
        ax.set_visible(False)
    return figure, list(axes[:count])


def _beyond_accuracy(values: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """``values`` minus their least-squares line on accuracy (with an intercept): the part that
    accuracy does not explain. Placing points only; the plotted slope is the stored one."""
    design = np.column_stack([np.ones_like(accuracy), accuracy])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coefficients


def added_variable_panels(report: AffinityReport) -> ReportFigure:
    judges = ordered_judges(report)
    pairs = [p for p in report.pairs if _usable(p)]
    family = family_order(report)
    figure, axes = _grid(len(judges), (2.3, 1.75))
    spans: list[float] = []
    panels = []
    for judge in judges:
        mine = [p for p in pairs if p.judge == judge.judge]
        accuracy = np.array([p.accuracy for p in mine], dtype=float)
        enough = len(mine) >= 3 and np.ptp(accuracy) > 0
        x = y = np.array([])
        if enough:
            x = _beyond_accuracy(np.array([p.capa for p in mine], dtype=float), accuracy)
            y = _beyond_accuracy(np.array([p.judgment_score for p in mine], dtype=float), accuracy)
            spans += [float(np.abs(x).max()), float(np.abs(y).max())]
        panels.append((judge, mine, x, y))
    x_span = max((s for s in spans[0::2]), default=0.1) * 1.12 or 0.1
    y_span = max((s for s in spans[1::2]), default=0.1) * 1.12 or 0.1
    for index, (ax, (judge, mine, x, y)) in enumerate(zip(axes, panels, strict=True)):
        color = _status_color(judge)
        own = family.get(judge.judge, NO_FAMILY)
        kin = np.array([own != NO_FAMILY and family.get(p.candidate) == own for p in mine], bool)
        ax.axhline(0, color="#999999", lw=0.6)
        ax.axvline(0, color="#999999", lw=0.6)
        if x.size:
            ax.scatter(x[~kin], y[~kin], s=16, color=color, lw=0.4, edgecolors="white", zorder=3)
            ax.scatter(
                x[kin], y[kin], s=24, marker="^", color=color, lw=0.4, edgecolors="white", zorder=3
            )
            ols = judge.ols
            slope = coefficient(ols.coefficients, "capa") if ols else None
            if slope is not None and _ok(slope):
                line_x = np.array([x.min(), x.max()])
                ax.plot(line_x, slope * line_x, color=color, lw=1.6, zorder=2)
        else:
            ax.text(
                0.5,
                0.5,
                "too few usable pairs",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color=INSUFFICIENT,
                style="italic",
            )
        ax.set_xlim(-x_span, x_span)
        ax.set_ylim(-y_span, y_span)
        ax.set_title(f"{judge.judge}\n{_label(judge)} (n = {len(mine)})", fontsize=8.5, color=color)
        ax.grid(True, color=GRID, lw=0.5)
        ax.set_axisbelow(True)
        if index % _columns(len(judges)) == 0:
            ax.set_ylabel("Score beyond accuracy")
        ax.set_xlabel("CAPA beyond accuracy")
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.xaxis.set_major_locator(MaxNLocator(4, symmetric=True))
        ax.yaxis.set_major_locator(MaxNLocator(5, symmetric=True))
    return ReportFigure(
        "figure-capa-score",
        "What the partial correlation measures: score against CAPA, both beyond accuracy",
        svg_of(figure),
        "An added-variable (partial regression) plot per judge. Each point is a candidate in the "
        "judge's test (excluded pairs are not shown; triangles: the judge's own family). Across "
        "the axis: how much more the candidate's mistakes resemble the judge's (CAPA) than its "
        "accuracy predicts; up the axis: how much higher the judge scores it than its accuracy "
        "predicts (each is the value minus its least-squares line on accuracy over these "
        "candidates). The correlation of the points is the partial r in the title, and the line's "
        "slope is the stored OLS CAPA slope at equal accuracy. A rising cloud is affinity bias; a "
        "raw plot of score against CAPA can hide it, because accurate candidates both score "
        "higher and resemble the judge more."
        + (
            " The analysis used Spearman correlations (ranks); this plot shows values."
            if report.settings.method == "spearman"
            else ""
        ),
        "Added-variable plots of judgment score against CAPA, both adjusted for accuracy, one "
        "panel per judge, with the OLS slope.",
    )


def inflation_panels(report: AffinityReport) -> ReportFigure:
    judges = ordered_judges(report)
    family = family_order(report)
    figure, axes = _grid(len(judges), (1.95, 1.95), bottom=0.85)
    styles = {
        "self": ("*", "#000000", 70, "the judge itself"),
        "family": ("^", FLAGGED, 22, "same family as the judge"),
        "other": ("o", CLEAR, 13, "other candidates"),
    }
    drawn: set[str] = set()
    for index, (ax, judge) in enumerate(zip(axes, judges, strict=True)):
        own = family.get(judge.judge, NO_FAMILY)
        groups: dict[str, list[PairResult]] = {"other": [], "family": [], "self": []}
        for pair in report.pairs:
            if pair.judge != judge.judge or not (_ok(pair.accuracy) and _ok(pair.judgment_score)):
                continue
            if pair.candidate == judge.judge:
                groups["self"].append(pair)
            elif own != NO_FAMILY and family.get(pair.candidate) == own:
                groups["family"].append(pair)
            else:
                groups["other"].append(pair)
        ax.fill_between([0, 1], [0, 1], [1, 1], color="#F6E3D9", lw=0, zorder=0)
        ax.plot([0, 1], [0, 1], color="#555555", lw=0.8, ls="--", zorder=1)
        for name, members in groups.items():
            if members:
                drawn.add(name)
            marker, color, size, _ = styles[name]
            ax.scatter(
                [p.accuracy for p in members],
                [p.judgment_score for p in members],
                marker=marker,
                color=color,
                s=size,
                linewidths=0.4,
                edgecolors="white",
                zorder=3,
            )
        ax.text(
            0.04, 0.95, "over-graded", transform=ax.transAxes, fontsize=7, va="top", color="#9A4A1F"
        )
        ax.text(
            0.96,
            0.05,
            "under-graded",
            transform=ax.transAxes,
            fontsize=7,
            ha="right",
            color="#555555",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(judge.judge, fontsize=8.5, color=_status_color(judge))
        if index % _columns(len(judges)) == 0:
            ax.set_ylabel("Judgment score")
        ax.set_xlabel("True accuracy")
        ax.xaxis.set_tick_params(labelbottom=True)
    handles = [
        Line2D([], [], marker=m, color=c, lw=0, markersize=math.sqrt(s) * 0.9, label=label)
        for name, (m, c, s, label) in styles.items()
        if name in drawn  # a legend entry for every kind of point drawn, and no other
    ]
    figure.legend(handles=handles, loc="lower center", ncols=len(handles), frameon=False)
    return ReportFigure(
        "figure-inflation",
        "Judgment score against true accuracy (grade inflation)",
        svg_of(figure),
        "One panel per judge; each point is a candidate. On the dashed diagonal the judge's "
        "score equals the candidate's true multiple-choice accuracy; points above it (shaded) "
        "are over-graded, points below under-graded. The judge itself (star, where it graded "
        "itself) and candidates of its own family (triangles) are marked; all pairs with a score "
        "are shown, including pairs excluded from the test.",
        "Scatter plots of judgment score against true accuracy for each judge, with the "
        "diagonal of exact grading.",
    )


# --- heat map ------------------------------------------------------------------------------------


def capa_heatmap(report: AffinityReport) -> ReportFigure:
    family = family_order(report)
    families = list(dict.fromkeys(family.values()))
    rank = {f: i for i, f in enumerate(families)}

    def by_family(names: set[str]) -> list[str]:
        return sorted(names, key=lambda n: (rank.get(family.get(n, NO_FAMILY), len(rank)), n))

    judges = by_family({j.judge for j in report.judges} | {p.judge for p in report.pairs})
    candidates = by_family({p.candidate for p in report.pairs})
    row, col = {j: i for i, j in enumerate(judges)}, {c: i for i, c in enumerate(candidates)}
    values = np.full((len(judges), len(candidates)), np.nan)
    excluded = []
    for pair in report.pairs:
        if _ok(pair.capa):
            values[row[pair.judge], col[pair.candidate]] = pair.capa
        if pair.excluded:
            excluded.append((row[pair.judge], col[pair.candidate]))

    many = len(candidates) > 15
    # Beyond ~45 candidates the columns narrow (and their labels shrink) so that the map still
    # fits a landscape page and a laptop screen.
    # Cells as wide as a landscape page allows (labels stay readable when printed).
    cell_w = min(0.34, max(0.1, 9.0 / len(candidates))) if many else 0.62
    cell_h = (0.36 if len(judges) <= 12 else 0.27) if many else 0.42
    label_size = 8.5 if cell_w >= 0.25 else 7 if cell_w >= 0.15 else 5.5
    longest = max((len(c) for c in candidates), default=1)
    left = 0.5 + 0.075 * max((len(j) for j in judges), default=1)
    bottom = 0.45 + (0.072 * longest * (1 if cell_w >= 0.15 else 0.8) if many else 0.3)
    top = 0.85 if many else 0.4
    right = 1.45
    fig_w = left + cell_w * len(candidates) + right
    fig_h = bottom + cell_h * len(judges) + top
    figure = Figure(figsize=(fig_w, fig_h))
    ax = figure.add_axes(
        (
            left / fig_w,
            bottom / fig_h,
            cell_w * len(candidates) / fig_w,
            cell_h * len(judges) / fig_h,
        )
    )
    ax.set_facecolor(UNDEFINED)
    finite = values[np.isfinite(values)]
    low = float(min(0.0, finite.min())) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 1.0
    mesh = ax.pcolormesh(
        np.ma.masked_invalid(values),
        cmap="viridis",
        vmin=low,
        vmax=max(high, low + 1e-9),
        edgecolors="white",
        linewidth=0.3,
    )
    ax.set_xlim(0, len(candidates))
    ax.set_ylim(len(judges), 0)
    ax.set_xticks(
        np.arange(len(candidates)) + 0.5,
        candidates,
        rotation=90 if many else 30,
        ha="center" if many else "right",
        fontsize=label_size,
    )
    ax.set_yticks(np.arange(len(judges)) + 0.5, judges, fontsize=8.5)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    # Family blocks: white separators, names on top, the judge's own family outlined.
    boundaries, centers, names = [], [], []
    start = 0
    for index in range(1, len(candidates) + 1):
        if index == len(candidates) or family[candidates[index]] != family[candidates[start]]:
            boundaries.append(index)
            centers.append((start + index) / 2)
            names.append(family[candidates[start]])
            start = index
    for boundary in boundaries[:-1]:
        ax.axvline(boundary, color="white", lw=2.2)
    family_axis = ax.secondary_xaxis("top")
    family_axis.set_xticks(
        centers, names, rotation=40 if many else 0, ha="left" if many else "center", fontsize=8.5
    )
    family_axis.tick_params(length=0)
    family_axis.spines["top"].set_visible(False)
    for judge in judges:
        own = family.get(judge, NO_FAMILY)
        if own == NO_FAMILY:
            continue
        members = [col[c] for c in candidates if family.get(c) == own]
        if members:
            ax.add_patch(
                Rectangle(
                    (min(members), row[judge]),
                    max(members) - min(members) + 1,
                    1,
                    fill=False,
                    edgecolor="#FFFFFF",
                    lw=1.4,
                )
            )
            ax.add_patch(
                Rectangle(
                    (min(members), row[judge]),
                    max(members) - min(members) + 1,
                    1,
                    fill=False,
                    edgecolor=FLAGGED,
                    lw=0.9,
                    ls=(0, (2, 1)),
                )
            )
    for r, c in excluded:
        mark = "white" if np.isfinite(values[r, c]) else "#444444"  # visible on grey cells too
        if many:
            ax.text(c + 0.5, r + 0.5, "×", ha="center", va="center", fontsize=8, color=mark)
        else:
            ax.text(c + 0.9, r + 0.1, "×", ha="right", va="top", fontsize=7, color=mark)
    if not many:
        for r in range(len(judges)):
            for c in range(len(candidates)):
                if np.isfinite(values[r, c]):
                    shade = (values[r, c] - low) / max(high - low, 1e-9)
                    ax.text(
                        c + 0.5,
                        r + 0.55,
                        format_value(values[r, c], 2),
                        ha="center",
                        va="center",
                        fontsize=7.5,
                        color="black" if shade > 0.6 else "white",
                    )
    bar_h = cell_h * len(judges)
    cax = figure.add_axes(
        ((fig_w - right + 0.2) / fig_w, bottom / fig_h, 0.13 / fig_w, bar_h / fig_h)
    )
    bar = figure.colorbar(mesh, cax=cax)
    bar.set_label("CAPA (0 = chance,\n1 = identical)")
    ax.set_xlabel("Candidate (grouped by family)")
    ax.set_ylabel("Judge")
    return ReportFigure(
        "figure-heatmap",
        "CAPA between each judge and each candidate",
        svg_of(figure),
        "Rows are judges, columns candidates, both grouped by model family (family names on "
        "top, white lines between families). Colour is CAPA: how much the two models' mistakes "
        "agree beyond chance. Dashed outlines mark each judge's own family; × marks pairs "
        "excluded from the judge's test (such as the judge itself); grey cells have no CAPA "
        "(undefined or no pair).",
        "Heat map of CAPA between judges and candidates, grouped by family.",
    )


def build_figures(report: AffinityReport) -> list[ReportFigure]:
    with matplotlib.rc_context(_STYLE):
        return [
            forest_plot(report),
            added_variable_panels(report),
            capa_heatmap(report),
            inflation_panels(report),
        ]
