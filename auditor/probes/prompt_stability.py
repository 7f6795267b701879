"""Prompt stability (Zhou et al., Nature 2024: answers change with the prompt's wording).

A spec may ask every model the multiple-choice question under K >= 2 templates and every judge
to grade under K >= 2 judge templates; records carry the template's name in `variant` (null =
the primary template, named ``primary`` here). Per model, over the items it answered under
every one of its templates: the share of items whose correctness is not the same under all
templates (Wilson 95% interval), the accuracy under each template and their SD, and Cochran's
Q of whether the templates' accuracies differ (`auditor.stats.stability`). Per judge, the same
for its verdicts on every (candidate, answer) it graded under all its templates (self-judgments
and answers with an unparseable verdict under any template left out).

Per judge, the affinity partial r (`auditor.probes.affinity.analyze_affinity`, the same
statistic as the audit's headline, without resampling) computed from each template's verdicts
alone, side by side: a finding that holds under every wording is a property of the judge, one
that holds under a single template is a property of that wording.

A row is flagged when its flip share exceeds ``FLIP_TOLERANCE`` by an exact one-sided binomial
test at alpha (the finding's p). Flips in both directions can leave the templates' overall
rates equal, which Cochran's Q (reported beside it) would not see; a judge's own noise floor
at a fixed prompt is the `repeat` probe's.

Example: correctness (1, 1), (1, 0), (1, 0), (0, 0) under two templates: flips 2 of 4.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import numpy as np

from auditor.probes._outcomes import rate
from auditor.probes.affinity import analyze_affinity
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import Bundle
from auditor.schemas.columns import BundleColumns
from auditor.schemas.probe import ProbeResult
from auditor.schemas.prompt_stability import (
    PRIMARY_TEMPLATE,
    PromptStabilityResult,
    StabilityFinding,
    TemplateStabilityRow,
)
from auditor.schemas.result import AnalysisSettings
from auditor.stats.distributions import scipy_stats as _scipy_stats
from auditor.stats.stability import template_stability

__all__ = ["FLIP_TOLERANCE", "PromptStabilityProbe", "affinity_by_template", "stability_row"]

FLIP_TOLERANCE: Final = 0.05
"""Flip share across paraphrased templates tolerated before a model or judge is flagged."""

MEANING: Final = (
    "share of items (models: MCQ correctness) or judged answers (judges: verdicts) whose "
    f"outcome changes across prompt templates; p: exact binomial test of it > {FLIP_TOLERANCE:g}"
)


def _template(variant: str | None) -> str:
    return PRIMARY_TEMPLATE if variant is None else variant


def stability_row(
    name: str, role: str, cells: dict[Any, dict[str, int | None]]
) -> TemplateStabilityRow:
    """Stability of one model's (or judge's) 0/1 outcomes; ``cells`` maps a unit to its
    outcome under each template (None: unparseable)."""
    templates = sorted(
        {t for by_template in cells.values() for t in by_template},
        key=lambda t: (t != PRIMARY_TEMPLATE, t),
    )
    if len(templates) < 2:  # e.g. a model seen only under a variant: nothing to compare
        return TemplateStabilityRow(
            name=name,
            role=role,  # type: ignore[arg-type]
            templates=templates,
            n_units=0,
            flips=rate(0, 0),
            rates={},
            reason=f"seen under one template only ({', '.join(templates) or 'none'})",
        )
    complete = [
        [by_template[t] for t in templates]
        for by_template in cells.values()
        if all(by_template.get(t) is not None for t in templates)
    ]
    table = np.array(complete, dtype=np.int64).reshape(len(complete), len(templates))
    stability = template_stability(table)
    return TemplateStabilityRow(
        name=name,
        role=role,  # type: ignore[arg-type]
        templates=templates,
        n_units=stability.n_units,
        flips=rate(stability.flips, stability.n_units),
        rates=dict(zip(templates, stability.rates, strict=True)) if stability.rates else {},
        rate_sd=stability.rate_sd,
        cochran_q=stability.q,
        p_value=stability.p_value,
        reason=stability.reason,
    )


def _model_cells(bundle: Bundle) -> dict[str, dict[Any, dict[str, int | None]]]:
    gold = {item.id: item.gold for item in bundle.items}
    cells: dict[str, dict[Any, dict[str, int | None]]] = defaultdict(lambda: defaultdict(dict))
    for output in bundle.outputs:
        choice = output.choice
        if choice is None and output.probs is not None:
            choice = int(np.argmax(output.probs))  # ties to the lowest index
        if choice is None or output.item not in gold:
            continue
        cells[output.model][output.item][_template(output.variant)] = int(
            choice == gold[output.item]
        )
    return cells


def _judge_cells(bundle: Bundle) -> dict[str, dict[Any, dict[str, int | None]]]:
    cells: dict[str, dict[Any, dict[str, int | None]]] = defaultdict(lambda: defaultdict(dict))
    for verdict in bundle.verdicts:
        if verdict.candidate == verdict.judge:
            continue
        unit = (verdict.candidate, verdict.item)
        cells[verdict.judge][unit][_template(verdict.variant)] = verdict.verdict
    return cells


@dataclass(frozen=True)
class _TemplateAffinity:
    partial_r: dict[str, float | None]
    ci95: dict[str, tuple[float, float] | None]
    reason: dict[str, str]
    n_items: int = 0


def affinity_by_template(
    bundle: Bundle, settings: AnalysisSettings
) -> dict[str, _TemplateAffinity]:
    """Judge -> its affinity partial r (with Fisher-z interval, or the reason it is undefined)
    under each judge template, each from that template's verdicts alone on the items the judge
    graded under every one of its templates (so the templates are compared on the same items),
    and the primary multiple-choice outputs (CAPA and accuracy do not depend on the judge's
    wording)."""
    templates_of: dict[str, set[str]] = defaultdict(set)
    items_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for verdict in bundle.verdicts:
        template = _template(verdict.variant)
        templates_of[verdict.judge].add(template)
        items_of[(verdict.judge, template)].add(verdict.item)
    common = {
        judge: set.intersection(*(items_of[(judge, t)] for t in templates))
        for judge, templates in templates_of.items()
    }
    by_template: dict[str, list[Any]] = defaultdict(list)
    for verdict in bundle.verdicts:
        if verdict.item in common[verdict.judge]:
            by_template[_template(verdict.variant)].append(verdict)
    point_only = settings.model_copy(update={"n_bootstrap": 0, "n_permutations": 0})
    outputs = [o for o in bundle.outputs if o.variant is None]
    found = {judge: _TemplateAffinity({}, {}, {}, len(items)) for judge, items in common.items()}
    for template, verdicts in by_template.items():
        view = bundle.model_copy(
            update={
                "outputs": outputs,
                "verdicts": [v.model_copy(update={"variant": None}) for v in verdicts],
            }
        )
        for judge in analyze_affinity(view, point_only).judges:
            row = found[judge.judge]
            row.partial_r[template] = judge.partial_r
            row.ci95[template] = judge.ci95
            if judge.partial_r is None:
                row.reason[template] = judge.reason or judge.status
    return found


def _has_variants(records: Sequence[Any]) -> set[str]:
    return {r.model if hasattr(r, "model") else r.judge for r in records if r.variant is not None}


def _with_affinity(
    row: TemplateStabilityRow, affinity: _TemplateAffinity | None
) -> TemplateStabilityRow:
    """The judge's row with its affinity partial r under each of its templates (in the row's
    template order; a template without a result is undefined, with the reason)."""
    found = affinity or _TemplateAffinity({}, {}, {})
    missing = "no affinity result under this template"
    defined = [r for t in row.templates if (r := found.partial_r.get(t)) is not None]
    return row.model_copy(
        update={
            "affinity_spread": max(defined) - min(defined) if len(defined) >= 2 else None,
            "affinity_items": found.n_items,
            "affinity_partial_r": {t: found.partial_r.get(t) for t in row.templates},
            "affinity_ci95": {t: found.ci95.get(t) for t in row.templates},
            "affinity_reason": {
                t: found.reason.get(t, missing)
                for t in row.templates
                if found.partial_r.get(t) is None
            },
        }
    )


def _flip_p(row: TemplateStabilityRow) -> float | None:
    if row.n_units == 0:
        return None
    test = _scipy_stats.binomtest(row.flips.k, row.n_units, FLIP_TOLERANCE, alternative="greater")
    return float(test.pvalue)


class PromptStabilityProbe:
    name: ClassVar[str] = "prompt_stability"
    title: ClassVar[str] = "Prompt stability across templates"
    result_model: ClassVar[type[ProbeResult]] = PromptStabilityResult

    def missing_inputs(self, bundle: Bundle | BundleColumns) -> str | None:
        if isinstance(bundle, BundleColumns):
            variants: Iterable[str | None] = itertools.chain(
                bundle.output_variant or (), bundle.verdict_variant or ()
            )
        else:
            variants = itertools.chain(
                (o.variant for o in bundle.outputs), (v.variant for v in bundle.verdicts)
            )
        if not any(variants):
            return "no outputs or verdicts under a template variant"
        return None

    def plan(self, spec: Any, base: Bundle, answers: Any) -> Sequence[Any]:
        return ()

    def compute(self, context: ProbeContext) -> PromptStabilityResult:
        bundle = context.bundle
        alpha = context.settings.alpha
        order = {m.name: i for i, m in enumerate(bundle.models)}

        def ordered(names: set[str]) -> list[str]:
            return sorted(names, key=lambda n: (order.get(n, len(order)), n))

        model_cells, judge_cells = _model_cells(bundle), _judge_cells(bundle)
        judges = ordered(_has_variants(bundle.verdicts))
        affinity = affinity_by_template(bundle, context.settings) if judges else {}
        rows = [
            stability_row(m, "model", model_cells[m])
            for m in ordered(_has_variants(bundle.outputs))
        ] + [
            _with_affinity(stability_row(j, "judge", judge_cells[j]), affinity.get(j))
            for j in judges
        ]
        findings = [
            StabilityFinding(
                judge=row.name,
                role=row.role,
                status="ok" if row.n_units else "insufficient_data",
                reason=None if row.n_units else row.reason or "no unit seen under every template",
                n=row.n_units,
                estimate=row.flips.rate,
                ci95=row.flips.ci95,
                p_value=(p := _flip_p(row)),
                flagged=p is not None and p < alpha and row.flips.k > FLIP_TOLERANCE * row.n_units,
            )
            for row in rows
        ]
        return PromptStabilityResult(estimate_meaning=MEANING, rows=rows, findings=findings)


PROBE = PromptStabilityProbe()
