"""The correlated-errors section (Kim et al. 2025): figures and the section in HTML and Markdown,
and a stand-alone report of `auditor correlated-errors`.

Drawn from a `CorrelatedErrorsResult` alone: nothing is estimated here. Deterministic SVG (fixed
hash salt, glyphs as paths, no metadata), so the same result gives the same bytes.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import matplotlib
import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from auditor.schemas.correlated_errors import CorrelatedErrorsResult, MonocultureResult
from reports.sections import SectionFigure, section_environment, svg_of

__all__ = [
    "CORRELATED_ERRORS_FORMATS",
    "SectionFigure",
    "correlated_errors_figures",
    "render_correlated_errors_html",
    "render_correlated_errors_markdown",
    "render_correlated_errors_pdf",
    "section_html",
    "section_markdown",
    "write_correlated_errors",
]

SAME = "#D55E00"  # Okabe-Ito vermillion: same provider
OTHER = "#0072B2"  # Okabe-Ito blue: other providers
MOST = "#D55E00"
LEAST = "#009E73"
UNDEFINED = "#D9D9D9"
UNKNOWN_PROVIDER = "(unknown)"
TITLE = "Correlated errors, judge inflation and monoculture"

_STYLE: Any = {
    "svg.hashsalt": "judge-auditor-correlated-errors",
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
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": False,
}


def _provider_order(result: CorrelatedErrorsResult) -> list[int]:
    agreement = result.agreement
    assert agreement is not None
    return sorted(
        range(len(agreement.models)),
        key=lambda m: (
            agreement.providers[m] is None,
            agreement.providers[m] or "",
            agreement.families[m] or "",
            agreement.models[m],
        ),
    )


def agreement_heatmap(result: CorrelatedErrorsResult) -> SectionFigure | None:
    agreement = result.agreement
    if agreement is None:
        return None
    order = _provider_order(result)
    names = [agreement.models[m] for m in order]
    providers = [agreement.providers[m] or UNKNOWN_PROVIDER for m in order]
    values = np.array(
        [[np.nan if v is None else v for v in row] for row in agreement.matrix], dtype=float
    )[np.ix_(order, order)]
    n = len(names)
    cell = min(0.34, max(0.06, 7.0 / max(n, 1)))
    side = max(3.2, cell * n + 2.2)
    labels = n <= 60
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(side + 1.0, side))
        axes = figure.add_subplot()
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad=UNDEFINED)
        image = axes.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0)
        # Provider blocks: a white rule between providers, the provider name on the top axis.
        bounds = [i for i in range(1, n) if providers[i] != providers[i - 1]]
        for b in bounds:
            axes.axhline(b - 0.5, color="white", linewidth=1.6)
            axes.axvline(b - 0.5, color="white", linewidth=1.6)
        starts = [0, *bounds]
        ends = [*bounds, n]
        top = axes.secondary_xaxis("top")
        top.set_xticks([(s + e - 1) / 2 for s, e in zip(starts, ends, strict=True)])
        top.set_xticklabels([providers[s] for s in starts], rotation=30, ha="left")
        top.tick_params(length=0)
        if labels:
            size = 7 if n <= 30 else 5
            axes.set_xticks(range(n))
            axes.set_xticklabels(names, rotation=90, fontsize=size)
            axes.set_yticks(range(n))
            axes.set_yticklabels(names, fontsize=size)
        else:
            axes.set_xticks([])
            axes.set_yticks([])
        colorbar = figure.colorbar(image, ax=axes, fraction=0.04, pad=0.02)
        colorbar.set_label("both-wrong agreement")
        if agreement.chance_level <= 1:
            colorbar.ax.axhline(agreement.chance_level, color="white", linewidth=1.2)
        figure.tight_layout()
        svg = svg_of(figure)
    return SectionFigure(
        id="figure-agreement",
        title="Error agreement, grouped by provider",
        svg=svg,
        caption="Among items both models got wrong, the share where they chose the same wrong "
        "option. Models are grouped by provider (white rules); grey cells have no item both got "
        f"wrong. The white line on the colour bar marks chance ({agreement.chance_level:.3f}).",
        alt=f"Heat map of error agreement between {n} models grouped by provider.",
    )


def inflation_plot(result: CorrelatedErrorsResult) -> SectionFigure | None:
    judges = [j for j in (result.inflation or []) if j.candidates]
    if not judges:
        return None
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(max(4.0, 0.9 * len(judges) + 1.8), 3.4))
        axes = figure.add_subplot()
        for x, judge in enumerate(judges):
            for same, offset, color in ((True, -0.17, SAME), (False, 0.17, OTHER)):
                values = [c.inflation for c in judge.candidates if c.same_provider == same]
                if not values:
                    continue
                jitter = np.linspace(-0.06, 0.06, len(values)) if len(values) > 1 else [0.0]
                axes.scatter(
                    [x + offset + j for j in jitter], values, s=12, color=color, alpha=0.55, lw=0
                )
                axes.hlines(np.mean(values), x + offset - 0.1, x + offset + 0.1, color=color, lw=2)
        axes.axhline(0, color="#555555", linewidth=0.7)
        axes.set_xticks(range(len(judges)))
        axes.set_xticklabels([j.judge for j in judges], rotation=30, ha="right")
        axes.set_ylabel("judgment score − true accuracy")
        axes.set_xlim(-0.6, len(judges) - 0.4)
        axes.scatter([], [], color=SAME, label="same provider as the judge")
        axes.scatter([], [], color=OTHER, label="other providers")
        axes.legend(loc="best", frameon=False)
        figure.tight_layout()
        svg = svg_of(figure)
    return SectionFigure(
        id="figure-inflation",
        title="Judge inflation by provider",
        svg=svg,
        caption="Each dot is a candidate: the share of its answers the judge accepted minus its "
        "true accuracy. Bars are the means for candidates of the judge's own provider "
        "(vermillion) and of other providers (blue).",
        alt="Strip plot of inflation per judge, same-provider against other candidates.",
    )


def _curve(axes: Any, mono: MonocultureResult, label: str, dashed: bool) -> bool:
    drawn = False
    for points, color, name in (
        (mono.most_correlated, MOST, "most correlated"),
        (mono.least_correlated, LEAST, "least correlated"),
    ):
        ks = [p.k for p in points if p.ratio is not None and p.ratio > 0]
        ratios = [p.ratio for p in points if p.ratio is not None and p.ratio > 0]
        if ks:
            axes.plot(
                ks,
                ratios,
                marker="o",
                ms=3.5,
                color=color,
                linestyle="--" if dashed else "-",
                label=f"{label}: {name}",
            )
            drawn = True
    return drawn


def monoculture_plot(result: CorrelatedErrorsResult) -> SectionFigure | None:
    parts = [
        (m, label, dashed)
        for m, label, dashed in (
            (result.monoculture, "models", False),
            (result.judge_monoculture, "judges", True),
        )
        if m is not None and m.status == "ok"
    ]
    if not parts:
        return None
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(6.0, 3.4))
        axes = figure.add_subplot()
        drawn = [_curve(axes, m, label, dashed) for m, label, dashed in parts]
        if not any(drawn):
            return None
        axes.axhline(1.0, color="#555555", linewidth=0.7)
        axes.set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        axes.yaxis.set_major_formatter(plain)
        axes.yaxis.set_minor_formatter(NullFormatter())
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("panel size k")
        axes.set_ylabel("all fail / independent baseline")
        axes.legend(loc="best", frameon=False)
        figure.tight_layout()
        svg = svg_of(figure)
    return SectionFigure(
        id="figure-monoculture",
        title="Systemic exclusion against panel size",
        svg=svg,
        caption="For each panel size k, the greedily chosen most and least correlated subsets: "
        "the share of units every member fails (models: items answered wrong; judges: answers "
        "rejected) divided by the share expected if they failed independently (log scale; 1 = "
        "independent). Subsets with no shared failure are not drawn.",
        alt="Line plot of the systemic exclusion ratio against panel size.",
    )


def correlated_errors_figures(result: CorrelatedErrorsResult) -> list[SectionFigure]:
    figures = [agreement_heatmap(result), inflation_plot(result), monoculture_plot(result)]
    return [f for f in figures if f is not None]


# --- the section ---------------------------------------------------------------------------------


def _context(result: CorrelatedErrorsResult, heading: int) -> dict[str, Any]:
    """What `reports.probes` passes to a probe's template, plus the sub-heading level."""
    return {
        "result": result,
        "findings": list(result.findings),
        "name": "correlated_errors",
        "h": heading,
    }


def section_html(result: CorrelatedErrorsResult, heading: int = 2) -> Markup:
    """The section body (templates/probes/correlated_errors.html.j2) as an HTML fragment, its
    sub-sections at ``heading + 1``; figures inline as SVG data URIs."""
    figures = [(f"{f.title}. {f.caption}", f.svg) for f in correlated_errors_figures(result)]
    template = section_environment().get_template("probes/correlated_errors.html.j2")
    return Markup(template.render(figures=figures, **_context(result, heading + 1)))


def section_markdown(result: CorrelatedErrorsResult, heading: int = 2) -> str:
    """The section body in Markdown (tables; the figures are in the HTML and PDF reports)."""
    template = section_environment().get_template("probes/correlated_errors.md.j2")
    return template.render(figures=[], **_context(result, heading + 1))


_STANDALONE_CSS = """
@page { @bottom-left { content: "Judge Auditor · correlated errors (Kim et al. 2025)"; } }
@media print { section.page { break-before: auto; } }
"""


def _css() -> str:
    return (resources.files("reports") / "templates" / "report.css").read_text(encoding="utf-8")


def render_correlated_errors_html(result: CorrelatedErrorsResult) -> bytes:
    """A stand-alone HTML report of the correlated-errors analysis."""
    body = section_html(result, heading=1)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Correlated errors</title><style>"
        + _css()
        + _STANDALONE_CSS
        + "</style></head><body><main>"
        + str(body)
        + "</main></body></html>\n"
    )
    return page.encode("utf-8")


def render_correlated_errors_markdown(result: CorrelatedErrorsResult) -> bytes:
    return f"# {TITLE}\n\n{section_markdown(result, heading=1)}".encode()


def render_correlated_errors_pdf(
    result: CorrelatedErrorsResult, html: bytes | None = None
) -> bytes:
    """The stand-alone HTML printed to PDF by WeasyPrint (imported only here)."""
    try:
        import weasyprint
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise RuntimeError("PDF reports need WeasyPrint") from error
    document = html if html is not None else render_correlated_errors_html(result)
    return bytes(weasyprint.HTML(string=document.decode("utf-8")).write_pdf())


CORRELATED_ERRORS_FORMATS = ("json", "html", "md", "pdf")


def write_correlated_errors(
    result: CorrelatedErrorsResult, directory: Any, formats: tuple[str, ...] = ("json",)
) -> dict[str, Any]:
    """Write ``correlated_errors.<ext>`` for each format (json always) into ``directory``."""
    from pathlib import Path

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    path = target / "correlated_errors.json"
    path.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    written["json"] = path
    html: bytes | None = None
    for fmt in formats:
        if fmt == "html" or (fmt == "pdf" and html is None):
            html = render_correlated_errors_html(result)
        if fmt == "html":
            written["html"] = target / "correlated_errors.html"
            written["html"].write_bytes(html or b"")
        elif fmt == "md":
            written["md"] = target / "correlated_errors.md"
            written["md"].write_bytes(render_correlated_errors_markdown(result))
        elif fmt == "pdf":
            written["pdf"] = target / "correlated_errors.pdf"
            written["pdf"].write_bytes(render_correlated_errors_pdf(result, html))
    return written
