"""What every probe's report section shares: its figure shape, SVG export and Jinja environment.

A probe section module (e.g. `reports.correlated_errors`) draws its own figures with its own
style and renders its own templates under ``templates/probes/``; this module is the one place
for the parts that do not differ between probes.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from matplotlib.figure import Figure

from reports.formatting import format_ci, format_p, format_value

__all__ = ["SectionFigure", "section_environment", "svg_of"]


@dataclass(frozen=True)
class SectionFigure:
    """One figure of a probe section, as inline SVG with its caption and alternative text."""

    id: str
    title: str
    svg: str
    caption: str
    alt: str


def svg_of(figure: Figure) -> str:
    """The figure as an inline ``<svg>`` element (no XML prolog, no date: reproducible)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    return svg[svg.find("<svg") :]


@cache
def section_environment() -> Environment:
    """The Jinja environment of the probe section templates, with the report's number filters."""
    environment = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.filters["b64"] = lambda text: base64.b64encode(text.encode()).decode("ascii")
    environment.filters["p_value"] = format_p
    environment.filters["value"] = format_value
    environment.filters["ci"] = format_ci
    environment.filters["pct"] = lambda rate: "—" if rate.rate is None else f"{rate.rate:.1%}"
    return environment
