"""Audit measures, one module per probe, listed in one registry.

The planner (which model calls an audit needs), the analysis (which statistics a bundle supports)
and the reports (which sections to render) all read `REGISTRY`. Adding a probe means: its module
here, one line in `REGISTRY`, its report template, its tests; nothing else.
"""

from __future__ import annotations

from auditor.probes import (
    affinity,
    correlated_errors,
    cues,
    human_agreement,
    injection,
    position,
    prompt_stability,
    reliability,
    repeat,
    self_preference,
    supervision,
    verbosity,
)
from auditor.probes.base import Probe, ProbeContext

__all__ = ["REGISTRY", "Probe", "ProbeContext", "probe_named"]

REGISTRY: tuple[Probe, ...] = (
    affinity.PROBE,
    position.PROBE,
    verbosity.PROBE,
    self_preference.PROBE,
    cues.PROBE,
    injection.PROBE,
    repeat.PROBE,
    human_agreement.PROBE,
    correlated_errors.PROBE,
    reliability.PROBE,
    supervision.PROBE,
    prompt_stability.PROBE,
)
"""Every probe, in report order. Filled by the probe modules' instances."""


def probe_named(name: str) -> Probe:
    for probe in REGISTRY:
        if probe.name == name:
            return probe
    raise KeyError(f"no probe named {name!r}; known: {[p.name for p in REGISTRY]}")
