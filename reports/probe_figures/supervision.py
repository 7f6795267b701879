"""Figure of the supervision probe for its report section (`reports.probes`): each judge's
false approval by difficulty."""

from __future__ import annotations

from auditor.schemas.supervision import SupervisionResult
from reports.probe_figures.reliability import titled
from reports.reliability import false_approval_plot

__all__ = ["figures"]


def figures(result: SupervisionResult) -> list[tuple[str, str]]:
    return titled(false_approval_plot(result))
