"""What an audit asks of models, and how the answers become an evaluation bundle.

Pure functions between the audit spec, the evaluation bundle and call records; the workers do
the I/O. An audit has three kinds of call:

- ``mcq``: a model answers an item as a multiple-choice question (one letter, log-probabilities);
- ``answer``: a candidate answers the item in free form;
- ``judge``: a judge grades a candidate's free-form answer with 1 or 0.

Each call's key is the SHA-256 of exactly what changes its output: the tenant, the litellm
model string and API base, the sampling parameters and the messages (which contain the prompt
template). Timeouts, retry settings and credentials are not part of it. A stored call is never
made again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from auditor.ecosystem import Ecosystem
from auditor.prompt_sets import grader_messages, mcq_variant_messages, parse_grade
from auditor.prompts import (
    PROMPTS_VERSION,
    answer_messages,
    judge_messages,
    mcq_messages,
    pairwise_messages,
    parse_mcq,
    parse_pairwise,
    read_verdict,
)
from auditor.schemas.bundle import Bundle, Comparison, Item, Label, ModelInfo, Output, Verdict
from auditor.schemas.candidates import PlannedComparison
from auditor.schemas.spec import AuditSpec, ModelSpec

__all__ = [
    "Call",
    "CallKind",
    "MissingVerdicts",
    "assemble_bundle",
    "base_bundle",
    "battery_plan",
    "call_key",
    "check_design",
    "collect_calls",
    "comparison_calls",
    "fan_out_grades",
    "fan_out_verdicts",
    "grade_calls",
    "identical_probability_notes",
    "judge_calls",
    "mcq_variant_calls",
    "plan_summary",
    "planned_call_counts",
    "read_reply",
    "reading_notes",
    "simulation_api_base",
]

CallKind = Literal["mcq", "answer", "judge", "compare", "grade"]


@dataclass(frozen=True)
class Call:
    """One model call an audit needs."""

    key: str
    kind: CallKind
    model: str  # display name of the model called
    item: str
    candidate: str | None
    request: dict[str, Any]  # litellm keyword arguments, without credentials
    variant: str | None = None  # the prompt template variant (prompt stability); None = primary


def simulation_api_base(spec: AuditSpec) -> str | None:
    """``sim://<world id>``: tells the simulated provider which world answers."""
    if spec.simulation is None:
        return None
    text = spec.simulation.model_dump_json()
    return "sim://" + hashlib.sha256(text.encode()).hexdigest()[:16]


def call_key(tenant: str, request: Mapping[str, Any]) -> str:
    document = {"tenant": tenant, "prompts": PROMPTS_VERSION, "request": request}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _request(
    spec: AuditSpec, model: ModelSpec, messages: list[dict[str, str]], **sampling: Any
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": model.model,
        "messages": messages,
        **sampling,
        **model.params,
    }
    api_base = model.api_base
    if api_base is None and model.model.startswith("sim/"):
        api_base = simulation_api_base(spec)
    if api_base is not None:
        request["api_base"] = api_base
    return request


def base_bundle(spec: AuditSpec, evaluation: Bundle | None) -> Bundle:
    """The items (and any outputs and verdicts already known) the audit starts from."""
    if spec.simulation is not None:
        world = Ecosystem(spec.simulation)
        bundle = Bundle.model_construct(
            schema_version="1.0", items=world.items, models=[], outputs=[], verdicts=[]
        )
    elif evaluation is None:
        raise ValueError("the audit's evaluation could not be loaded")
    else:
        bundle = evaluation
    if spec.max_items is not None:
        keep = {item.id for item in bundle.items[: spec.max_items]}
        bundle = Bundle.model_construct(
            schema_version="1.0",
            items=bundle.items[: spec.max_items],
            models=bundle.models,
            outputs=[o for o in bundle.outputs if o.item in keep],
            verdicts=[v for v in bundle.verdicts if v.item in keep],
        )
    return bundle


def collect_calls(spec: AuditSpec, tenant: str, base: Bundle) -> list[Call]:
    """MCQ answers of every model and free-form answers of every candidate that the base
    bundle does not already hold."""
    have_mcq = {
        (o.model, o.item) for o in base.outputs if o.probs is not None or o.choice is not None
    }
    have_answer = {(o.model, o.item) for o in base.outputs if o.response is not None}
    sampling = spec.sampling
    calls = []
    for model in spec.all_models:
        name = model.display_name
        for item in base.items:
            if (name, item.id) not in have_mcq:
                request = _request(
                    spec,
                    model,
                    mcq_messages(item.question, item.options),
                    temperature=sampling.temperature,
                    max_tokens=1,
                    logprobs=True,
                    top_logprobs=sampling.top_logprobs,
                )
                calls.append(Call(call_key(tenant, request), "mcq", name, item.id, None, request))
            if (name, item.id) not in have_answer:
                request = _request(
                    spec,
                    model,
                    answer_messages(item.question),
                    temperature=sampling.temperature,
                    max_tokens=sampling.answer_max_tokens,
                )
                calls.append(
                    Call(call_key(tenant, request), "answer", name, item.id, None, request)
                )
    calls += mcq_variant_calls(spec, tenant, base)
    return calls


def mcq_variant_calls(spec: AuditSpec, tenant: str, base: Bundle) -> list[Call]:
    """Every model's multiple-choice answer under each of the spec's MCQ template variants
    (`spec.prompt_variants.mcq`) on the first `prompt_variants.max_items` items, except
    answers the base bundle already holds."""
    templates = spec.prompt_variants.mcq_templates()
    if not templates:
        return []
    have = {(o.model, o.item, o.variant) for o in base.outputs if o.variant is not None}
    sampling = spec.sampling
    calls = []
    for name, template in templates:
        for model in spec.all_models:
            for item in base.items[: spec.prompt_variants.max_items]:
                if (model.display_name, item.id, name) in have:
                    continue
                request = _request(
                    spec,
                    model,
                    mcq_variant_messages(template, item.question, item.options),
                    temperature=sampling.temperature,
                    max_tokens=1,
                    logprobs=True,
                    top_logprobs=sampling.top_logprobs,
                )
                calls.append(
                    Call(
                        call_key(tenant, request),
                        "mcq",
                        model.display_name,
                        item.id,
                        None,
                        request,
                        variant=name,
                    )
                )
    return calls


def grade_calls(
    spec: AuditSpec, tenant: str, base: Bundle, answers: Mapping[tuple[str, str], str]
) -> list[Call]:
    """The spec's grader on every candidate's free-form answer (three-way outcome, with the
    reference answer shown), except answers it already labelled in the base bundle."""
    if spec.grader is None:
        return []
    grader = spec.grader
    template = spec.grader_prompt.resolve()
    have = {
        (label.candidate, label.item)
        for label in base.labels
        if label.source == "grader" and label.annotator == grader.display_name
    }
    items = {item.id: item for item in base.items}
    calls = []
    for (candidate, item_id), answer in sorted(answers.items()):
        item = items.get(item_id)
        if item is None or (candidate, item_id) in have:
            continue
        messages = grader_messages(
            template, question=item.question, reference=item.options[item.gold], answer=answer
        )
        request = _request(
            spec,
            grader,
            messages,
            temperature=spec.sampling.temperature,
            max_tokens=spec.sampling.grade_max_tokens,
        )
        calls.append(
            Call(
                call_key(tenant, request), "grade", grader.display_name, item_id, candidate, request
            )
        )
    return calls


def judge_calls(
    spec: AuditSpec,
    tenant: str,
    base: Bundle,
    answers: Mapping[tuple[str, str], str],
    *,
    pairwise: bool = True,
) -> list[Call]:
    """Every judge on every other candidate's answer, except verdicts already known (for the
    pointwise protocol), and the battery's pairwise comparisons (`comparison_calls`).

    ``answers`` maps (candidate, item) to the free-form answer (stored or collected); a
    missing answer means no judge call (its absence is reported in coverage). Under each of
    the spec's judge template variants (`spec.prompt_variants.judge`) the same calls are made
    again, carrying the variant's name (on the first `prompt_variants.judge_items` items).
    ``pairwise=False`` leaves the comparisons out (their pairs depend on which answers exist,
    so they are planned once every answer has settled).
    """
    calls = comparison_calls(spec, tenant, base, answers) if pairwise else []
    if not spec.battery.pointwise:
        return calls
    templates = [(None, spec.judge_prompt.resolve())] + [
        (t.name, t) for t in spec.prompt_variants.judge_templates()
    ]
    have = {(v.judge, v.candidate, v.item, v.variant) for v in base.verdicts}
    items = {item.id: item for item in base.items}
    variant_items = {item.id for item in base.items[: spec.prompt_variants.judge_items]}
    for (variant, template), judge in (
        (entry, judge) for entry in templates for judge in spec.judges
    ):
        judge_name = judge.display_name
        for candidate in spec.candidate_models:
            name = candidate.display_name
            if name == judge_name:
                continue
            for item_id, item in items.items():
                answer = answers.get((name, item_id))
                if answer is None or (judge_name, name, item_id, variant) in have:
                    continue
                if variant is not None and item_id not in variant_items:
                    continue
                messages = judge_messages(
                    template,
                    question=item.question,
                    answer=answer,
                    reference=item.options[item.gold],
                )
                request = _request(
                    spec,
                    judge,
                    messages,
                    temperature=spec.sampling.temperature,
                    max_tokens=spec.sampling.verdict_max_tokens,
                    # the first token's P("1") is the graded verdict (prompts.read_verdict)
                    logprobs=True,
                    top_logprobs=spec.sampling.top_logprobs,
                )
                calls.append(
                    Call(
                        call_key(tenant, request),
                        "judge",
                        judge_name,
                        item_id,
                        name,
                        request,
                        variant=variant,
                    )
                )
    return calls


def battery_plan(
    spec: AuditSpec, base: Bundle, answers: Mapping[tuple[str, str], str] | None
) -> dict[str, list[PlannedComparison]]:
    """Each planned battery probe's comparisons (``answers`` None: as if all answered)."""
    from auditor.probes import probe_named

    return {
        name: list(probe_named(name).plan(spec, base, answers))
        for name in spec.battery.planned_probes()
    }


def _untestable_judges(
    spec: AuditSpec, names: list[str], families: Mapping[str, str | None]
) -> list[str]:
    """Judges whose affinity test would have too few candidates: "insufficient data" known
    before any call is sent."""
    analysis = spec.analysis
    configured = {tuple(pair) for pair in analysis.exclude_pairs}
    problems = []
    for judge in spec.judges:
        name, family = judge.display_name, families.get(judge.display_name)
        tested = [
            c
            for c in names
            if c != name
            and (name, c) not in configured
            and not (analysis.exclude_same_family and family and families.get(c) == family)
        ]
        if len(tested) < analysis.min_candidates:
            left_out = "itself" + (", its family" if analysis.exclude_same_family else "")
            problems.append(
                f"judges: {name!r} would have {len(tested)} candidate(s) in its affinity test "
                f"(leaving out {left_out} and analysis.exclude_pairs); analysis.min_candidates "
                f"is {analysis.min_candidates}, so it could not be tested: add candidates or "
                "lower analysis.min_candidates (at least 4)"
            )
    return problems


def check_design(spec: AuditSpec, base: Bundle) -> list[str]:
    """Why the design cannot answer the battery's questions, before anything is sent.

    Each judge needs two candidates other than itself for pairwise probes, a same-family
    candidate (and the pointwise protocol) for self_preference when it is asked for by name,
    and at least
    ``battery.min_comparisons`` planned comparisons per probe; and the affinity test of each
    judge needs ``analysis.min_candidates`` candidates once itself, its family (with
    ``analysis.exclude_same_family``) and ``analysis.exclude_pairs`` are left out.
    """
    problems = []
    battery = spec.battery
    names = [m.display_name for m in spec.candidate_models]
    families = {m.display_name: m.family for m in spec.all_models}
    if spec.simulation is not None:
        families.update(Ecosystem(spec.simulation).family_of)
    problems += _untestable_judges(spec, names, families)
    planned = battery.planned_probes()
    if any(p != "self_preference" for p in planned) and not battery.pairwise:
        problems.append(
            f"battery.protocol: {battery.protocol!r} plans no comparisons, but "
            f"{[p for p in planned if p != 'self_preference']} need pairwise judging"
        )
    for judge in spec.judges:
        name = judge.display_name
        others = [c for c in names if c != name]
        if battery.pairwise and len(others) < 2:
            problems.append(
                f"judges: {name!r} has {len(others)} candidate(s) besides itself; pairwise "
                "probes need at least 2"
            )
        if "self_preference" in battery.probes:  # asked for by name; by default it just runs
            if not battery.pointwise:
                problems.append("battery.protocol: self_preference needs pointwise verdicts")
            kin = [c for c in others if families.get(c) and families.get(c) == families.get(name)]
            if not kin:
                problems.append(
                    f"judges: {name!r} has no same-family candidate; self_preference cannot "
                    "compare kin with others"
                )
    if battery.pairwise:
        for probe, calls in battery_plan(spec, base, None).items():
            if probe == "self_preference":  # reads the pointwise verdicts, plans no comparisons
                continue
            per_judge = {j.display_name: 0 for j in spec.judges}
            for call in calls:
                per_judge[call.judge] += 1
            for judge_name, count in per_judge.items():
                if count < battery.min_comparisons:
                    problems.append(
                        f"battery: {probe} plans {count} comparisons for {judge_name!r}, fewer "
                        f"than min_comparisons={battery.min_comparisons} (add items)"
                    )
    return problems


@dataclass(frozen=True)
class PlannedCalls:
    """How many calls one part of an audit needs, per model, and their estimated tokens."""

    part: str
    """`answers` (MCQ and free-form), `pointwise` (judge verdicts) or a battery probe."""
    calls: int
    by_model: dict[str, tuple[int, int, int]]
    """model -> (calls, estimated prompt tokens, estimated completion tokens)."""


def plan_summary(spec: AuditSpec, base: Bundle) -> list[PlannedCalls]:
    """The calls an audit plans, before any answer exists (answers are assumed, so the
    pointwise and pairwise counts are upper bounds). Tokens are estimated as characters / 4
    with each assumed answer ``sampling.answer_max_tokens`` long."""
    placeholder = "x" * (4 * spec.sampling.answer_max_tokens)
    answers = {
        (m.display_name, item.id): placeholder for m in spec.all_models for item in base.items
    }
    parts: list[PlannedCalls] = []

    def add(part: str, calls: Sequence[Call], completion: int) -> None:
        by_model: dict[str, tuple[int, int, int]] = {}
        for call in calls:
            n, prompt, done = by_model.get(call.model, (0, 0, 0))
            text = sum(len(str(m.get("content", ""))) for m in call.request["messages"])
            by_model[call.model] = (n + 1, prompt + max(1, text // 4), done + completion)
        parts.append(PlannedCalls(part, len(calls), by_model))

    collect = collect_calls(spec, "plan", base)
    add("answers", collect, spec.sampling.answer_max_tokens)
    if spec.battery.pointwise:
        pointwise = [c for c in judge_calls(spec, "plan", base, answers) if c.kind == "judge"]
        add("pointwise", pointwise, spec.sampling.verdict_max_tokens)
    if spec.battery.pairwise:
        judges = {j.display_name: j for j in spec.judges}
        questions = {item.id: item.question for item in base.items}
        for probe, planned in battery_plan(spec, base, answers).items():
            if probe == "self_preference":
                continue
            calls = [
                Call(
                    "",
                    "compare",
                    c.judge,
                    c.item,
                    None,
                    _request(
                        spec,
                        judges[c.judge],
                        pairwise_messages(questions[c.item], c.text_a, c.text_b, c.nonce),
                    ),
                )
                for c in planned
            ]
            add(probe, calls, spec.sampling.verdict_max_tokens)
    return parts


def planned_call_counts(spec: AuditSpec, base: Bundle) -> dict[str, int]:
    """Calls per kind (``mcq``, ``answer``, ``judge``, ``compare``, …) the audit plans before
    any answer exists, so a progress display can show every total from the start. Answers are
    assumed, so the judging counts are upper bounds."""
    placeholder = "x" * (4 * spec.sampling.answer_max_tokens)
    answers = {
        (m.display_name, item.id): placeholder for m in spec.all_models for item in base.items
    }
    counts: dict[str, int] = {}
    planned = (
        *collect_calls(spec, "plan", base),  # with the MCQ template variants
        *judge_calls(spec, "plan", base, answers),
        *grade_calls(spec, "plan", base, answers),
    )
    for call in planned:
        counts[call.kind] = counts.get(call.kind, 0) + 1
    return counts


def _pair_of(candidate_a: str, candidate_b: str) -> str:
    """The pair of a comparison call, stored in the call's candidate field."""
    return json.dumps([candidate_a, candidate_b], ensure_ascii=False)


def comparison_calls(
    spec: AuditSpec, tenant: str, base: Bundle, answers: Mapping[tuple[str, str], str]
) -> list[Call]:
    """The battery's pairwise judge calls (deduplicated across probes), except comparisons
    the base bundle already holds."""
    if not spec.battery.pairwise:
        return []
    have = {(c.judge, c.item, c.candidate_a, c.candidate_b) for c in base.comparisons}
    judges = {j.display_name: j for j in spec.judges}
    questions = {item.id: item.question for item in base.items}
    calls: dict[tuple[str, str, str, str], Call] = {}
    for planned in battery_plan(spec, base, answers).values():
        for c in planned:
            key = (c.judge, c.item, c.candidate_a, c.candidate_b)
            if key in have or key in calls:
                continue
            messages = pairwise_messages(questions[c.item], c.text_a, c.text_b, c.nonce)
            request = _request(
                spec,
                judges[c.judge],
                messages,
                temperature=spec.sampling.temperature,
                max_tokens=spec.sampling.verdict_max_tokens,
            )
            calls[key] = Call(
                call_key(tenant, request),
                "compare",
                c.judge,
                c.item,
                _pair_of(c.candidate_a, c.candidate_b),
                request,
            )
    return list(calls.values())


def read_reply(
    kind: CallKind, text: str | None, top_logprobs: list[tuple[str, float]] | None, n_options: int
) -> dict[str, Any]:
    """The parsed form of a reply, as stored with the call. The raw first-token
    log-probabilities are kept beside what was read from them (``top_logprobs``)."""
    raw = [[token, logprob] for token, logprob in top_logprobs] if top_logprobs else None
    if kind == "mcq":
        reading = parse_mcq(text, top_logprobs, n_options)
        return {
            "choice": reading.choice,
            "probs": reading.probs,
            "reason": reading.reason,
            "letter_mass": reading.letter_mass,
            "top_logprobs": raw,
        }
    if kind == "answer":
        return {"response": text or ""}
    if kind == "grade":
        grade = parse_grade(text)
        return {"outcome": grade.outcome, "reason": grade.reason, "rule": grade.rule}
    if kind == "compare":
        pairwise = parse_pairwise(text)
        return {"winner": pairwise.winner, "reason": pairwise.reason}
    verdict = read_verdict(text, top_logprobs)
    return {
        "verdict": verdict.verdict,
        "reason": verdict.reason,
        "rule": verdict.rule,
        "p_one": verdict.p_one,
        "verdict_mass": verdict.mass,
        "top_logprobs": raw,
    }


@dataclass(frozen=True)
class CallOutcome:
    """A finished call as the assembly needs it."""

    kind: CallKind
    model: str
    item: str
    candidate: str | None
    status: str
    text: str | None
    parsed: dict[str, Any] | None
    key: str = ""
    error: str | None = None
    variant: str | None = None


class MissingVerdicts(ValueError):
    """Planned judge calls with no outcome and no recorded reason: the analysis must not run."""


def fan_out_verdicts(planned: Sequence[Call], outcomes: Sequence[CallOutcome]) -> list[CallOutcome]:
    """One judge outcome per planned pointwise (judge, candidate, item); planned calls of
    another kind (pairwise comparisons) are left to their own outcomes.

    Candidates whose answers to an item are the same text share one judge call (its key hashes
    the request, and the request holds the answer, not who gave it); that call's reply stands
    for every candidate it was planned for. Raises `MissingVerdicts` when a planned call has no
    stored outcome or is still pending (a failed call is an outcome: its error is the reason).

    >>> a, b = (Call("k", "judge", "j", "q1", c, {}) for c in "ab")
    >>> done = CallOutcome("judge", "j", "q1", "a", "done", "1", {"verdict": 1}, key="k")
    >>> [o.candidate for o in fan_out_verdicts([a, b], [done])]
    ['a', 'b']
    """
    by_key = {o.key: o for o in outcomes if o.kind == "judge"}
    fanned = []
    missing = []
    for call in planned:
        if call.kind != "judge":  # the battery's comparisons are outcomes of their own
            continue
        outcome = by_key.get(call.key)
        if outcome is None or outcome.status not in ("done", "failed"):
            missing.append(call)
            continue
        fanned.append(
            CallOutcome(
                kind="judge",
                model=call.model,
                item=call.item,
                candidate=call.candidate,
                status=outcome.status,
                text=outcome.text,
                parsed=outcome.parsed,
                key=call.key,
                error=outcome.error,
                variant=call.variant,
            )
        )
    if missing:
        shown = ", ".join(f"{c.model} on {c.candidate} for {c.item}" for c in missing[:5])
        raise MissingVerdicts(
            f"{len(missing)} planned verdicts are missing without a recorded reason "
            f"(e.g. {shown}); the analysis would misstate coverage"
        )
    return fanned


def fan_out_grades(planned: Sequence[Call], outcomes: Sequence[CallOutcome]) -> list[CallOutcome]:
    """One grade outcome per planned (candidate, item): candidates whose answers to an item are
    the same text share one grader call (its key hashes the request), and its reply stands for
    each of them, as for verdicts (`fan_out_verdicts`). A planned grade with no finished call
    gives no outcome (that answer has no grader label; the reading notes count the replies).

    >>> a, b = (Call("k", "grade", "g", "q1", c, {}) for c in "ab")
    >>> done = CallOutcome("grade", "g", "q1", "a", "done", "CORRECT", {"outcome": "correct"},
    ...                    key="k")
    >>> [o.candidate for o in fan_out_grades([a, b], [done])]
    ['a', 'b']
    """
    by_key = {o.key: o for o in outcomes if o.kind == "grade"}
    return [
        replace(outcome, candidate=call.candidate, model=call.model, item=call.item)
        for call in planned
        if (outcome := by_key.get(call.key)) is not None and outcome.status in ("done", "failed")
    ]


def answers_of(base: Bundle, outcomes: Iterable[CallOutcome]) -> dict[tuple[str, str], str]:
    answers = {(o.model, o.item): o.response for o in base.outputs if o.response is not None}
    for outcome in outcomes:
        if outcome.kind == "answer" and outcome.status == "done" and outcome.parsed:
            answers[(outcome.model, outcome.item)] = outcome.parsed["response"]
    return answers


def assemble_bundle(spec: AuditSpec, base: Bundle, outcomes: Sequence[CallOutcome]) -> Bundle:
    """The base bundle plus what the calls collected: the bundle that is analyzed."""
    known_models = {m.name: m for m in base.models}
    models = list(base.models) + [
        ModelInfo(
            name=m.display_name, provider=m.provider or m.model.split("/", 1)[0], family=m.family
        )
        for m in spec.all_models
        if m.display_name not in known_models
    ]
    world = Ecosystem(spec.simulation) if spec.simulation is not None else None
    if world is not None:
        families, sizes = world.family_of, world.params_of
        models = [
            m
            if m.family or m.name not in families
            else m.model_copy(update={"family": families[m.name]})
            for m in models
        ]
        models = [
            m.model_copy(update={"params": sizes[m.name]})
            if m.params is None and m.name in sizes
            else m
            for m in models
        ]
    items: dict[str, Item] = {item.id: item for item in base.items}
    outputs: dict[tuple[str, str, str | None], dict[str, Any]] = {
        (o.model, o.item, o.variant): o.model_dump() for o in base.outputs
    }
    verdicts = list(base.verdicts)
    labels = list(base.labels)
    comparisons = list(base.comparisons)
    for outcome in outcomes:
        if outcome.status != "done" or outcome.parsed is None:
            continue
        if outcome.kind == "grade":
            if outcome.parsed.get("outcome") is not None and outcome.candidate is not None:
                labels.append(
                    Label(
                        item=outcome.item,
                        candidate=outcome.candidate,
                        outcome=outcome.parsed["outcome"],
                        annotator=outcome.model,
                        source="grader",
                    )
                )
            continue  # an unparseable grade is counted in the notes, never coerced
        if outcome.kind == "compare":
            assert outcome.candidate is not None
            candidate_a, candidate_b = json.loads(outcome.candidate)
            slot = str(outcome.parsed.get("winner"))  # "None" (unparseable) maps to no winner
            winner = {"A": candidate_a, "B": candidate_b, "tie": "tie"}.get(slot)
            comparisons.append(
                Comparison.model_construct(
                    judge=outcome.model,
                    item=outcome.item,
                    candidate_a=candidate_a,
                    candidate_b=candidate_b,
                    winner=winner,
                    raw=outcome.text,
                    gold=None,
                    human=[],
                    question=None,
                    text_a=None,
                    text_b=None,
                )
            )
            continue
        if outcome.kind in ("mcq", "answer"):
            if outcome.kind == "mcq" and outcome.parsed.get("choice") is None:
                continue  # unparseable MCQ reply: no output for this item (coverage says so)
            record = outputs.setdefault(
                (outcome.model, outcome.item, outcome.variant),
                {
                    "model": outcome.model,
                    "item": outcome.item,
                    "probs": None,
                    "choice": None,
                    "response": None,
                    "variant": outcome.variant,
                },
            )
            if outcome.kind == "mcq":
                record["choice"] = outcome.parsed["choice"]
                record["probs"] = outcome.parsed.get("probs")
            else:
                record["response"] = outcome.parsed["response"]
        else:
            assert outcome.candidate is not None
            verdicts.append(
                Verdict.model_construct(
                    judge=outcome.model,
                    candidate=outcome.candidate,
                    item=outcome.item,
                    verdict=outcome.parsed.get("verdict"),
                    raw=outcome.text,
                    variant=outcome.variant,
                )
            )
    if world is not None:
        labels += _planted_labels(spec, world, labels, outcomes)
    output_rows = [
        Output.model_construct(**record)
        for record in outputs.values()
        if (record.get("probs") is not None or record.get("choice") is not None)
        and record["item"] in items
    ]
    return Bundle.model_construct(
        schema_version="1.0",
        items=list(items.values()),
        models=models,
        outputs=output_rows,
        verdicts=verdicts,
        comparisons=comparisons,
        labels=labels,
    )


def _planted_labels(
    spec: AuditSpec, world: Ecosystem, labels: Sequence[Label], outcomes: Sequence[CallOutcome]
) -> list[Label]:
    """In a simulated audit, the planted three-way outcome of every free-form answer a
    simulated model (``sim/<world model>``) gave (source ``planted``: below human labels and a
    grader's in precedence, `auditor.probes._outcomes`), so the reliability probes run without
    a grader's calls."""
    known = set(world.model_names)
    simulated = {
        m.display_name: m.model.split("/", 1)[1]
        for m in spec.all_models
        if m.model.startswith("sim/") and m.model.split("/", 1)[1] in known
    }
    have = {(label.candidate, label.item) for label in labels if label.source == "planted"}
    planted = []
    for outcome in outcomes:
        key = (outcome.model, outcome.item)
        if outcome.kind != "answer" or outcome.status != "done" or key in have:
            continue
        if outcome.model not in simulated:
            continue
        have.add(key)
        planted.append(
            Label.model_construct(
                item=outcome.item,
                candidate=outcome.model,
                outcome=world.outcome(simulated[outcome.model], outcome.item),
                annotator="simulation",
                source="planted",
            )
        )
    return planted


def reading_notes(outcomes: Sequence[CallOutcome]) -> list[str]:
    """What the report says about how replies were read: which rule read how many verdicts
    (`prompts.VERDICT_RULES`) and grades (`prompt_sets.GRADE_RULES`), how many of each were
    unreadable (grades: why, by kind of reason), and how many multiple-choice replies
    kept only their discrete answer because the option letters held too little probability
    (`prompts.MIN_LETTER_MASS`)."""
    from auditor.prompts import MIN_LETTER_MASS, VERDICT_RULES

    notes = []
    verdicts = [o for o in outcomes if o.kind == "judge" and o.status == "done" and o.parsed]
    if verdicts:
        rules = {rule: 0 for rule in VERDICT_RULES}
        unreadable = 0
        for outcome in verdicts:
            rule = (outcome.parsed or {}).get("rule")
            if (outcome.parsed or {}).get("verdict") is None:
                unreadable += 1
            elif rule in rules:
                rules[rule] += 1
        read = ", ".join(f"{count} by {rule}" for rule, count in rules.items() if count)
        notes.append(
            f"Judge replies: {len(verdicts) - unreadable} of {len(verdicts)} read ({read or 'none'}"
            f"); {unreadable} unreadable. See the documentation of prompts.VERDICT_RULES."
        )
    notes.extend(_grade_notes(outcomes))
    fallback = sum(
        1
        for o in outcomes
        if o.kind == "mcq"
        and o.status == "done"
        and (o.parsed or {}).get("letter_mass") is not None
        and (o.parsed or {}).get("probs") is None
        and (o.parsed or {}).get("choice") is not None  # with none, the reply was left out
    )
    if fallback:
        notes.append(
            f"{fallback} multiple-choice replies put less than {MIN_LETTER_MASS:.0%} of the "
            "first token's probability on the option letters: their discrete answer was used, "
            "not a probability distribution (the raw log-probabilities are stored)."
        )
    return notes


def _grade_notes(outcomes: Sequence[CallOutcome]) -> list[str]:
    """One note per grader: how many of its three-way grades each rule read, and how many were
    unreadable by kind of reason (the quoted reply left out). An unreadable grade gives no
    label, so that answer has no three-way truth from the grader."""
    from auditor.prompt_sets import GRADE_RULES

    by_grader: dict[str, list[CallOutcome]] = {}
    for outcome in outcomes:
        if outcome.kind == "grade" and outcome.status == "done" and outcome.parsed is not None:
            by_grader.setdefault(outcome.model, []).append(outcome)
    notes = []
    for grader, grades in by_grader.items():
        rules = dict.fromkeys(GRADE_RULES, 0)
        reasons: dict[str, int] = {}
        for grade in grades:
            parsed = grade.parsed or {}
            if parsed.get("outcome") is None:
                kind = str(parsed.get("reason") or "unreadable").split(":", 1)[0]
                reasons[kind] = reasons.get(kind, 0) + 1
            elif parsed.get("rule") in rules:
                rules[parsed["rule"]] += 1
        unreadable = sum(reasons.values())
        read = ", ".join(f"{count} by {rule}" for rule, count in rules.items() if count)
        ranked = sorted(reasons.items(), key=lambda pair: (-pair[1], pair[0]))
        why = "; ".join(f"{count} × {reason}" for reason, count in ranked)
        notes.append(
            f"Grader {grader} replies: {len(grades) - unreadable} of {len(grades)} read "
            f"({read or 'none'}); {unreadable} unreadable"
            + (f" ({why}), left out of the three-way truth, never coerced" if unreadable else "")
            + ". See the documentation of prompt_sets.GRADE_RULES."
        )
    return notes


def identical_probability_notes(bundle: Bundle, *, min_items: int = 2) -> list[str]:
    """Warn about models whose option probabilities are identical on every item both answered
    (at least ``min_items``): e.g. temperature variants of one model served by llama.cpp, which
    computes log-probabilities before temperature. They are one model twice, not two
    independent models, for CAPA and everything built on it.

    >>> from auditor.bundle import Output
    >>> b = Bundle.model_construct(items=[], models=[], verdicts=[], outputs=[
    ...     Output(model=m, item=i, probs=[0.7, 0.3]) for m in ("t0", "t1") for i in ("q1", "q2")])
    >>> identical_probability_notes(b)[0][:38]
    'Models t0 and t1 returned identical op'
    """
    vectors: dict[str, dict[str, tuple[float, ...]]] = {}
    for output in bundle.outputs:
        if output.probs is not None:
            vectors.setdefault(output.model, {})[output.item] = tuple(
                round(p, 12) for p in output.probs
            )
    names = sorted(vectors)
    notes = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            shared = vectors[first].keys() & vectors[second].keys()
            if len(shared) >= min_items and all(
                vectors[first][item] == vectors[second][item] for item in shared
            ):
                notes.append(
                    f"Models {first} and {second} returned identical option probabilities on "
                    f"all {len(shared)} items both answered: they look like one model (e.g. "
                    "temperature variants of one served model, whose log-probabilities are "
                    "computed before temperature), not independent models for CAPA."
                )
    return notes
