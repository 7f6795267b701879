"""One report section per probe that ran, found by the probe's name: a new probe adds only its
templates ``templates/probes/<name>.html.j2`` and ``.md.j2`` (else the generic findings table,
``templates/probes/_generic.*``) and, if it draws figures, a module ``reports.probe_figures.<name>``
with ``figures(result) -> list[tuple[str, str]]`` (title, SVG text). Templates format numbers
with ``number`` (`reports.sections.NUMBERS`). Nothing here computes: the templates format what
the result holds."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from jinja2 import Environment, TemplateNotFound

from auditor.schemas.probe import ProbeFinding, ProbeResult
from auditor.schemas.result import AuditResult
from reports.sections import NUMBERS

__all__ = ["ProbeSection", "probe_sections"]


@dataclass(frozen=True)
class ProbeSection:
    name: str
    title: str
    body: str


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _figures(name: str, result: ProbeResult) -> list[tuple[str, str]]:
    try:
        module = importlib.import_module(f"reports.probe_figures.{name}")
    except ModuleNotFoundError:
        return []
    return list(module.figures(result))


def probe_sections(report: AuditResult, environment: Environment, kind: str) -> list[ProbeSection]:
    """The rendered section of every probe in ``report.probes`` (``kind``: "html" or "md")."""
    sections = []
    for name, findings in report.probes.items():
        result = report.probe_results.get(name)
        try:
            template = environment.get_template(f"probes/{name}.{kind}.j2")
        except TemplateNotFound:
            template = environment.get_template(f"probes/_generic.{kind}.j2")
        body = template.render(
            name=name,
            result=result,
            findings=findings,
            common=list(ProbeFinding.model_fields),
            figures=_figures(name, result) if result is not None and kind == "html" else [],
            skipped=report.skipped_probes,
            number=NUMBERS,
        )
        sections.append(ProbeSection(name=name, title=_title(name), body=body))
    return sections
