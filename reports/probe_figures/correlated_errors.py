"""Figures of the correlated-errors probe for the per-probe report sections (`reports.probes`):
``figures(result) -> [(title, svg)]``, the title carrying the caption."""

from __future__ import annotations

from auditor.schemas.correlated_errors import CorrelatedErrorsResult
from reports.correlated_errors import correlated_errors_figures

__all__ = ["figures"]


def figures(result: CorrelatedErrorsResult) -> list[tuple[str, str]]:
    return [(f"{f.title}. {f.caption}", f.svg) for f in correlated_errors_figures(result)]
