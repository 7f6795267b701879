"""`import_helm` on run directories written by crfm-helm 0.5.16 itself
(tests/data/importers/real/helm/, made by make_fixtures.sh: simple/model1 on a local
four-question scenario, helm_local/tiny_helm.py). simple/model1 answers with the prompt's last
word: "B" in tiny_joint_b (its output prefix ends in B), "Answer:" in tiny_joint, and in
tiny_separate the echoed reference as one token of log-probability 0. Edge cases (tokens split
in pieces, annotations, a planted mis-attribution) are made here from those real files.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from auditor.importers.helm import import_helm
from auditor.schemas.bundle import BundleError

REAL = Path(__file__).parents[2] / "data" / "importers" / "real" / "helm"
GOLD = {"TinyScenario/id0": 1, "TinyScenario/id1": 0, "TinyScenario/id2": 2, "TinyScenario/id3": 3}


def problems_of(error: pytest.ExceptionInfo[BundleError]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def copy_run(name: str, tmp_path: Path) -> tuple[Path, dict]:
    run = tmp_path / name
    shutil.copytree(REAL / name, run)
    return run, json.loads((run / "scenario_state.json").read_text())


def test_joint_multiple_choice_reads_the_answer_through_output_mapping() -> None:
    result = import_helm([REAL / "tiny_joint_b"])
    bundle = result.bundle
    assert {i.id: i.gold for i in bundle.items} == GOLD
    assert bundle.items[0].options == ["Berlin", "Paris", "Rome", "Madrid"]
    assert bundle.items[0].question == "What is the capital of France?"
    assert {o.item: o.choice for o in bundle.outputs} == dict.fromkeys(GOLD, 1)  # "B"
    assert all(o.probs is None for o in bundle.outputs)  # HELM keeps the chosen token only
    assert [m.name for m in bundle.models] == ["simple/model1"]
    assert result.report()[0] == "read: 1 runs, 4 request states"


def test_answers_that_map_to_no_option_say_all_were_skipped_and_why() -> None:
    with pytest.raises(BundleError) as error:
        import_helm([REAL / "tiny_joint"])
    assert problems_of(error) == [
        f"import: nothing to import: {REAL / 'tiny_joint'}: answers that map to no option in "
        "output_mapping, e.g. 'Answer:'"
    ]


def test_separate_choices_give_the_softmax_of_each_references_log_likelihood() -> None:
    bundle = import_helm([REAL / "tiny_separate"]).bundle
    # simple/model1 gives every reference's token log-probability 0: uniform, argmax 0
    assert {o.item: o.probs for o in bundle.outputs} == dict.fromkeys(GOLD, [0.25] * 4)
    assert {o.item: o.choice for o in bundle.outputs} == dict.fromkeys(GOLD, 0)


def test_separate_choice_tokens_are_found_by_their_text(tmp_path: Path) -> None:
    """Split each echoed completion into prompt tokens + " Par" "is"-like pieces with known
    log-probabilities: the score is the sum over exactly the pieces that spell " reference"."""
    run, state = copy_run("tiny_separate", tmp_path)
    expected: dict[str, list[float]] = {}
    for number, request_state in enumerate(state["request_states"]):
        reference = request_state["instance"]["references"][request_state["reference_index"]]
        text = reference["output"]["text"]
        pieces = (
            [" " + text[: len(text) // 2], text[len(text) // 2 :]]
            if len(text) > 1
            else [" " + text]
        )
        logprobs = [-0.5 * (number % 4 + 1)] * len(pieces)
        prompt = [{"text": "Question", "logprob": -9.0}, {"text": ":", "logprob": -9.0}]
        request_state["result"]["completions"][0]["tokens"] = prompt + [
            {"text": piece, "logprob": lp} for piece, lp in zip(pieces, logprobs, strict=True)
        ]
        item = f"TinyScenario/{request_state['instance']['id']}"
        expected.setdefault(item, []).append(sum(logprobs))
    (run / "scenario_state.json").write_text(json.dumps(state))
    bundle = import_helm([run]).bundle
    for output in bundle.outputs:
        lls = expected[output.item]
        total = sum(math.exp(v) for v in lls)
        assert output.probs == pytest.approx([math.exp(v) / total for v in lls], abs=1e-12)
        assert output.choice == max(range(4), key=lambda i: (lls[i], -i))

    state["request_states"][1]["result"]["completions"][0]["tokens"][-1]["text"] = "XX"
    (run / "scenario_state.json").write_text(json.dumps(state))
    with pytest.raises(BundleError) as error:
        import_helm([run])
    (problem,) = problems_of(error)
    assert "request_states[1].result.completions[0].tokens: the completion's last tokens do " in (
        problem
    )


def test_a_planted_answer_that_contradicts_helms_exact_match_is_caught(tmp_path: Path) -> None:
    """Give instance id0 another model's answer "C": HELM scored this run's "B" (right)."""
    run, state = copy_run("tiny_joint_b", tmp_path)
    state["request_states"][0]["result"]["completions"][0]["text"] = "C"
    (run / "scenario_state.json").write_text(json.dumps(state))
    with pytest.raises(BundleError) as error:
        import_helm([run])
    assert problems_of(error) == [
        f"{run}/scenario_state.json request_states[0]: HELM's exact_match for instance 'id0' is "
        "1.0, but the answer 'C' read through output_mapping gives choice 2 and gold 1"
    ]


def test_annotations_become_verdicts_with_the_judge_named_by_an_option(tmp_path: Path) -> None:
    run, state = copy_run("tiny_joint_b", tmp_path)
    scores = [1, 0, 0.5, 1]
    for request_state, score in zip(state["request_states"], scores, strict=True):
        request_state["annotations"] = {
            "tiny_judge": {"prompt_text": "...", "gpt_score": score, "gpt_reasoning": "because"}
        }
    (run / "scenario_state.json").write_text(json.dumps(state))
    with pytest.raises(BundleError) as error:
        import_helm([run])
    assert problems_of(error)[0].endswith(
        "HELM names this judge only 'gpt': name its model with --annotation-judge "
        "tiny_judge.gpt=<model>"
    )
    result = import_helm([run], annotation_judges={"gpt": "openai/gpt-4o-2024-05-13"})
    verdicts = {v.item: v.verdict for v in result.bundle.verdicts}
    assert verdicts == dict(zip(GOLD, [1, 0, None, 1], strict=True))
    assert {v.judge for v in result.bundle.verdicts} == {"openai/gpt-4o-2024-05-13"}
    assert "annotation scores other than 0 or 1 kept as null verdicts: 1" in result.notes
