"""Figure of the reliability probe for its report section (`reports.probes`): outcomes by
difficulty per model, as ``[(title, svg)]`` with the caption in the title."""

from __future__ import annotations

from auditor.schemas.reliability import ReliabilityResult
from reports.reliability import outcome_bars
from reports.sections import SectionFigure

__all__ = ["figures", "titled"]


def titled(figure: SectionFigure | None) -> list[tuple[str, str]]:
    """``[(title. caption, svg)]``, or nothing when the figure could not be drawn."""
    return [] if figure is None else [(f"{figure.title}. {figure.caption}", figure.svg)]


def figures(result: ReliabilityResult) -> list[tuple[str, str]]:
    return titled(outcome_bars(result))
