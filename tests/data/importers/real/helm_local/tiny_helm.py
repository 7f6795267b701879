"""A HELM plugin (helm-run --plugins tiny_helm.py): a tiny local scenario and three run specs.

tiny_joint      joint multiple choice, HELM's default adapter (simple/model1 echoes the prompt's
                last word, "Answer:", so no answer maps to an option)
tiny_joint_b    the same with an output prefix ending in "B", so simple/model1 answers B
tiny_separate   multiple_choice_separate_original: one request per reference, echoing the
                prompt; simple/model1 returns the last word as one token with logprob 0
"""

from __future__ import annotations

from helm.benchmark.adaptation.adapter_spec import ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL
from helm.benchmark.adaptation.common_adapter_specs import (
    get_multiple_choice_joint_adapter_spec,
    get_multiple_choice_separate_adapter_spec,
)
from helm.benchmark.metrics.common_metric_specs import get_exact_match_metric_specs
from helm.benchmark.run_spec import RunSpec, run_spec_function
from helm.benchmark.scenarios.scenario import (
    CORRECT_TAG,
    TEST_SPLIT,
    Input,
    Instance,
    Output,
    Reference,
    Scenario,
    ScenarioSpec,
)

QUESTIONS = [
    ("What is the capital of France?", ["Berlin", "Paris", "Rome", "Madrid"], 1),
    ("What is 2 + 2?", ["4", "3", "5", "22"], 0),
    ("What colour is a clear daytime sky?", ["green", "red", "blue", "yellow"], 2),
    ("Which planet is largest?", ["Mars", "Venus", "Earth", "Jupiter"], 3),
]


class TinyScenario(Scenario):
    name = "tiny"
    description = "Four questions with four options each."
    tags = ["question answering"]  # noqa: RUF012  (HELM's own Scenario declares it so)

    def get_instances(self, output_path: str) -> list[Instance]:
        return [
            Instance(
                input=Input(text=question),
                references=[
                    Reference(Output(text=text), tags=[CORRECT_TAG] if i == gold else [])
                    for i, text in enumerate(options)
                ],
                split=TEST_SPLIT,
                id=f"id{n}",
            )
            for n, (question, options, gold) in enumerate(QUESTIONS)
        ]


SCENARIO = ScenarioSpec(class_name="tiny_helm.TinyScenario")


@run_spec_function("tiny_joint")
def tiny_joint() -> RunSpec:
    adapter = get_multiple_choice_joint_adapter_spec(
        instructions="Answer with a letter.",
        input_noun="Question",
        output_noun="Answer",
        max_train_instances=0,
    )
    return RunSpec(
        name="tiny_joint",
        scenario_spec=SCENARIO,
        adapter_spec=adapter,
        metric_specs=get_exact_match_metric_specs(),
        groups=["tiny"],
    )


@run_spec_function("tiny_joint_b")
def tiny_joint_b() -> RunSpec:
    adapter = get_multiple_choice_joint_adapter_spec(
        instructions="Answer with a letter.",
        input_noun="Question",
        output_noun="Answer",
        max_train_instances=0,
        output_prefix="Answer (for example B):\n B",
    )
    return RunSpec(
        name="tiny_joint_b",
        scenario_spec=SCENARIO,
        adapter_spec=adapter,
        metric_specs=get_exact_match_metric_specs(),
        groups=["tiny"],
    )


@run_spec_function("tiny_separate")
def tiny_separate() -> RunSpec:
    adapter = get_multiple_choice_separate_adapter_spec(ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL)
    return RunSpec(
        name="tiny_separate",
        scenario_spec=SCENARIO,
        adapter_spec=adapter,
        metric_specs=get_exact_match_metric_specs(),
        groups=["tiny"],
    )
