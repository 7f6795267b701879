"""Reliability audits, planned and assembled: MCQ and judge template variants and the
three-way grader go through the planner, the simulated provider's reply to each planned
request (workers.simulated, the same handler litellm calls) and the assembly into a bundle
whose variants and grader labels the probes read. The grader's labels must equal the world's
planted outcomes."""

from __future__ import annotations

import numpy as np

from auditor.ecosystem import Ecosystem
from auditor.probes import prompt_stability, reliability, supervision
from auditor.probes.base import ProbeContext
from auditor.schemas.bundle import validate_bundle
from auditor.schemas.spec import parse_spec
from auditor.services.planning import (
    Call,
    CallOutcome,
    answers_of,
    assemble_bundle,
    base_bundle,
    collect_calls,
    fan_out_grades,
    fan_out_verdicts,
    grade_calls,
    judge_calls,
    read_reply,
    reading_notes,
    simulation_api_base,
)
from workers import simulated

SPEC = {
    "simulation": {
        "seed": 5,
        "n_items": 24,
        "families": [{"name": "atlas", "size": 2}, {"name": "boreal", "size": 2}],
        "avoidance": 0.6,
        "model_prompt_sensitivity": {"atlas-2": 2.0, "boreal-1": 2.0},
    },
    "judges": [
        {"model": "sim/atlas-1", "name": "atlas-1"},
        {"model": "sim/boreal-1", "name": "boreal-1"},
    ],
    "candidates": [
        {"model": "sim/atlas-2", "name": "atlas-2"},
        {"model": "sim/boreal-2", "name": "boreal-2"},
    ],
    "grader": {"model": "sim/boreal-2", "name": "grader"},
    "prompt_variants": {"mcq": ["mcq-terse", "mcq-exam"], "judge": ["judge-strict"]},
}


def _run(spec, calls: list[Call], world_base: str) -> list[CallOutcome]:
    handler = simulated.SimulatedLLM()
    outcomes = []
    for call in calls:
        model = call.request["model"].split("/", 1)[1]
        response, _ = handler._respond(model, call.request["messages"], world_base, call.request)
        text = response.choices[0].message.content
        n_options = 4
        outcomes.append(
            CallOutcome(
                call.kind,
                call.model,
                call.item,
                call.candidate,
                "done",
                text,
                read_reply(call.kind, text, None, n_options),
                key=call.key,
                variant=call.variant if call.kind == "mcq" else None,
            )
        )
    return outcomes


def test_variants_and_grader_are_planned_answered_and_assembled() -> None:
    spec = parse_spec(SPEC)
    api_base = simulation_api_base(spec)
    simulated.register_world(api_base, spec.simulation)
    world = Ecosystem(spec.simulation)
    base = base_bundle(spec, None)
    first = collect_calls(spec, "t", base)
    assert sum(c.variant == "mcq-exam" for c in first) == 4 * 24
    outcomes = _run(spec, first, api_base)
    answers = answers_of(base, outcomes)
    judged = judge_calls(spec, "t", base, answers)
    graded = grade_calls(spec, "t", base, answers)
    assert {c.variant for c in judged} == {None, "judge-strict"}
    assert len(graded) == 4 * 24 and {c.model for c in graded} == {"grader"}
    outcomes += _run(spec, graded, api_base)
    judge_outcomes = _run(spec, judged, api_base)
    outcomes += fan_out_verdicts(judged, judge_outcomes)
    bundle = validate_bundle(assemble_bundle(spec, base, outcomes))

    # The grader's labels are the planted outcomes, read back from its replies; the simulated
    # audit also carries the planted truth itself for every answer (source "planted").
    planted = {(m, x.id): world.outcome(m, x.id) for m in world.model_names for x in world.items}
    labels = {
        (label.candidate, label.item): label.outcome
        for label in bundle.labels
        if label.source == "grader"
    }
    assert labels == {key: planted[key] for key in labels} and len(labels) == 4 * 24
    assert "avoidant" in labels.values()
    truth = {
        (label.candidate, label.item): label.outcome
        for label in bundle.labels
        if label.source == "planted"
    }
    assert truth == labels
    assert {m.name: m.params for m in bundle.models} == {
        m: world.params_of[m] for m in ("atlas-1", "boreal-1", "atlas-2", "boreal-2")
    }

    context = ProbeContext(bundle=bundle, settings=spec.analysis, rng=np.random.default_rng(0))
    result = reliability.PROBE.compute(context)
    assert result.truth_source == "grader" and result.difficulty_source == "item"
    rows = {(r.role, r.name): r for r in prompt_stability.PROBE.compute(context).rows}
    assert rows[("model", "atlas-1")].templates == ["primary", "mcq-exam", "mcq-terse"]
    assert rows[("model", "atlas-1")].flips.k == 0  # no planted sensitivity
    assert rows[("model", "atlas-2")].flips.k > 0  # planted sensitivity seen through prompts
    assert rows[("judge", "boreal-1")].templates == ["primary", "judge-strict"]
    assert rows[("judge", "atlas-1")].flips.k == 0
    assert supervision.PROBE.compute(context).truth_source == "grader"


def test_reading_notes_count_the_graders_unreadable_replies_by_reason() -> None:
    replies = [
        "CORRECT",
        "Grade: INCORRECT",
        "AVOIDANT: the model declined to answer.",
        "Incorrect.",
        "Not correct",  # names an outcome, not plainly
        "Correct - well, actually incorrect.",  # two outcomes
        "I think it is right.",  # none
        "Yes",  # none
    ]
    outcomes = [
        CallOutcome(
            "grade", "grader", f"q{i}", "m", "done", text, read_reply("grade", text, None, 4)
        )
        for i, text in enumerate(replies)
    ] + [CallOutcome("grade", "grader", "q9", "m", "failed", None, None, error="timeout")]
    bundle = assemble_bundle(parse_spec(SPEC), base_bundle(parse_spec(SPEC), None), outcomes)
    assert len(bundle.labels) == 4  # the unreadable four give no label: never coerced
    (note,) = [n for n in reading_notes(outcomes) if n.startswith("Grader")]
    assert note == (
        "Grader grader replies: 4 of 8 read (2 by bare, 1 by labelled, 1 by leading); "
        "4 unreadable (2 × reply names no outcome (correct, avoidant, incorrect); 1 × reply does "
        "not state one outcome plainly; 1 × reply names more than one outcome), left out of the "
        "three-way truth, never coerced. See the documentation of prompt_sets.GRADE_RULES."
    )


def test_variants_on_the_first_max_items_only() -> None:
    spec = parse_spec({**SPEC, "prompt_variants": {**SPEC["prompt_variants"], "max_items": 10}})
    api_base = simulation_api_base(spec)
    simulated.register_world(api_base, spec.simulation)
    base = base_bundle(spec, None)
    first = [c for c in collect_calls(spec, "t", base) if c.variant is not None]
    first_items = {item.id for item in base.items[:10]}
    assert len(first) == 2 * 4 * 10 and {c.item for c in first} == first_items
    answers = answers_of(base, _run(spec, collect_calls(spec, "t", base), api_base))
    judged = judge_calls(spec, "t", base, answers)
    variant = [c for c in judged if c.variant == "judge-strict"]
    primary = [c for c in judged if c.variant is None]
    assert {c.item for c in variant} == first_items and len(
        primary
    ) == 2 * 3 * 24  # each judge grades 3 others
    assert len(variant) == len(primary) * 10 // 24


def test_judge_variants_have_their_own_item_bound() -> None:
    variants = {**SPEC["prompt_variants"], "max_items": 10, "judge_max_items": 3}
    spec = parse_spec({**SPEC, "prompt_variants": variants})
    base = base_bundle(spec, None)
    mcq = [c for c in collect_calls(spec, "t", base) if c.variant is not None]
    assert {c.item for c in mcq} == {item.id for item in base.items[:10]}
    answers = {(m.display_name, item.id): "A" for m in spec.all_models for item in base.items}
    judged = [c for c in judge_calls(spec, "t", base, answers) if c.variant is not None]
    assert {c.item for c in judged} == {item.id for item in base.items[:3]}
    assert len(judged) == 2 * 3 * 3


def test_a_shared_grader_call_stands_for_every_candidate_with_that_answer() -> None:
    spec = parse_spec(SPEC)
    base = base_bundle(spec, None)
    item = base.items[0].id
    answers = {("atlas-2", item): "I don't know.", ("boreal-2", item): "I don't know."}
    planned = grade_calls(spec, "t", base, answers)
    assert len(planned) == 2 and planned[0].key == planned[1].key  # one request, one call
    reply = "AVOIDANT"
    stored = CallOutcome(
        "grade",
        "grader",
        item,
        "atlas-2",
        "done",
        reply,
        read_reply("grade", reply, None, 4),
        key=planned[0].key,
    )
    fanned = fan_out_grades(planned, [stored])
    assert sorted(o.candidate for o in fanned) == ["atlas-2", "boreal-2"]
    bundle = assemble_bundle(spec, base, fanned)
    grader = [(x.candidate, x.outcome) for x in bundle.labels if x.source == "grader"]
    assert sorted(grader) == [("atlas-2", "avoidant"), ("boreal-2", "avoidant")]
