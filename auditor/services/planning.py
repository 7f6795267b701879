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
from dataclasses import dataclass
from typing import Any, Literal

from auditor.ecosystem import Ecosystem
from auditor.prompt_sets import grader_messages, mcq_variant_messages, parse_grade
from auditor.prompts import (
    PROMPTS_VERSION,
    answer_messages,
    judge_messages,
    mcq_messages,
    parse_mcq,
    read_verdict,
)
from auditor.schemas.bundle import Bundle, Item, Label, ModelInfo, Output, Verdict
from auditor.schemas.spec import AuditSpec, ModelSpec

__all__ = [
    "Call",
    "CallKind",
    "MissingVerdicts",
    "assemble_bundle",
    "base_bundle",
    "call_key",
    "collect_calls",
    "fan_out_verdicts",
    "grade_calls",
    "judge_calls",
    "mcq_variant_calls",
    "read_reply",
    "reading_notes",
    "simulation_api_base",
]

CallKind = Literal["mcq", "answer", "judge", "grade"]


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
    (`spec.prompt_variants.mcq`), except answers the base bundle already holds."""
    templates = spec.prompt_variants.mcq_templates()
    if not templates:
        return []
    have = {(o.model, o.item, o.variant) for o in base.outputs if o.variant is not None}
    sampling = spec.sampling
    calls = []
    for name, template in templates:
        for model in spec.all_models:
            for item in base.items:
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
    spec: AuditSpec, tenant: str, base: Bundle, answers: Mapping[tuple[str, str], str]
) -> list[Call]:
    """Every judge on every other candidate's answer, except verdicts already known.

    ``answers`` maps (candidate, item) to the free-form answer (stored or collected); a
    missing answer means no judge call (its absence is reported in coverage). Under each of
    the spec's judge template variants (`spec.prompt_variants.judge`) the same calls are made
    again, carrying the variant's name.
    """
    templates = [(None, spec.judge_prompt.resolve())] + [
        (t.name, t) for t in spec.prompt_variants.judge_templates()
    ]
    have = {(v.judge, v.candidate, v.item, v.variant) for v in base.verdicts}
    items = {item.id: item for item in base.items}
    calls = []
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
    """One judge outcome per planned (judge, candidate, item).

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
    if spec.simulation is not None:
        world = Ecosystem(spec.simulation)
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
        comparisons=list(base.comparisons),
        labels=labels,
    )


def reading_notes(outcomes: Sequence[CallOutcome]) -> list[str]:
    """What the report says about how replies were read: which rule read how many verdicts
    (`prompts.VERDICT_RULES`), how many were unreadable, and how many multiple-choice replies
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
    fallback = sum(
        1
        for o in outcomes
        if o.kind == "mcq"
        and o.status == "done"
        and (o.parsed or {}).get("letter_mass") is not None
        and (o.parsed or {}).get("probs") is None
    )
    if fallback:
        notes.append(
            f"{fallback} multiple-choice replies put less than {MIN_LETTER_MASS:.0%} of the "
            "first token's probability on the option letters: their discrete answer was used, "
            "not a probability distribution (the raw log-probabilities are stored)."
        )
    return notes
