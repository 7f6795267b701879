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
from types import SimpleNamespace
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from matplotlib.figure import Figure

from reports.formatting import format_ci, format_p, format_value

__all__ = ["NUMBERS", "SectionFigure", "section_environment", "svg_of"]


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


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _percent(rate: Any) -> str:
    """A `Rate`'s share as a percentage with one decimal; undefined -> the em dash."""
    return "—" if rate is None or rate.rate is None else f"{rate.rate:.1%}"


def _percent_ci(rate: Any) -> str:
    """A `Rate`'s Wilson interval in percent, one decimal; undefined -> the em dash."""
    if rate is None or rate.ci95 is None:
        return "—"
    low, high = rate.ci95
    return f"[{100 * low:.1f}–{100 * high:.1f}%]"


NUMBERS = SimpleNamespace(
    value=format_value, p=format_p, ci=format_ci, pct=_percent, pct_ci=_percent_ci, b64=_b64
)
"""The report's number formats, handed to every probe section template as ``number`` (so a
section renders the same in whichever report environment includes it):
``number.value(x)``, ``number.p(p)``, ``number.ci((low, high))``, ``number.pct(rate)`` and
``number.pct_ci(rate)`` (a `Rate` and its interval in percent), ``number.b64(svg)``."""


@cache
def section_environment() -> Environment:
    """The Jinja environment of the probe section templates, with the report's number filters."""
    environment = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.filters["b64"] = _b64
    environment.filters["p_value"] = format_p
    environment.filters["value"] = format_value
    environment.filters["ci"] = format_ci
    environment.filters["pct"] = _percent
    return environment
