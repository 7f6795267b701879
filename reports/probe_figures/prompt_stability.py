"""Figures of the prompt-stability probe for its report section (`reports.probes`): flips
across templates, and each judge's affinity partial r under each template."""

from __future__ import annotations

from auditor.schemas.prompt_stability import PromptStabilityResult
from reports.probe_figures.reliability import titled
from reports.reliability import affinity_by_template_plot, stability_plot

__all__ = ["figures"]


def figures(result: PromptStabilityResult) -> list[tuple[str, str]]:
    return titled(stability_plot(result)) + titled(affinity_by_template_plot(result))
