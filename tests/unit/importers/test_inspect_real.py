"""`import_inspect` on logs written by Inspect AI 0.3.285 itself (tests/data/importers/real/,
made by make_fixtures.sh: mockllm answers, graders served by a stub OpenAI-compatible server
under other names than the run gave them). Expected values come from inspect_runs.py: the mock
model's letters ANSWERS, the stub's fixed grading (judge-a always C, judge-b always I, judge-c C
when the answer holds Paris/4/blue) and the dataset's shuffle seen in the logs.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from auditor.importers import import_inspect
from auditor.schemas.bundle import BundleError

REAL = Path(__file__).parents[2] / "data" / "importers" / "real" / "inspect"
MC = REAL / "mc.eval"
# inspect_runs.py: ANSWERS = B A A B A D -> indices 1 0 0 1 0 3; gold B A C D A C
CHOICES = {"q1": 1, "q2": 0, "q3": 0, "q4": 1, "q5": 0, "q6": 3}
GOLD = {"q1": 1, "q2": 0, "q3": 2, "q4": 3, "q5": 0, "q6": 2}
JUDGE_A = "openai-api/local/judge-a"
JUDGE_B = "openai-api/local/judge-b"
JUDGE_C = "openai-api/local/judge-c"


def problems_of(error: pytest.ExceptionInfo[BundleError]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def test_the_real_eval_log_is_zstd_and_is_read() -> None:
    with zipfile.ZipFile(MC) as archive:  # the stdlib alone cannot unpack method 93
        assert {info.compress_type for info in archive.infolist()} == {93}
    result = import_inspect([MC])
    bundle = result.bundle
    assert {o.item: o.choice for o in bundle.outputs} == CHOICES
    assert {i.id: i.gold for i in bundle.items} == GOLD
    assert bundle.items[0].options == ["Berlin", "Paris", "Rome", "Madrid"]
    assert [m.name for m in bundle.models] == ["mockllm/model"]
    assert result.report()[0] == "read: 1 logs, 6 samples"


def test_the_json_log_of_the_same_run_gives_the_same_answers() -> None:
    bundle = import_inspect([REAL / "mc-json.json"]).bundle
    assert {o.item: o.choice for o in bundle.outputs} == {k: CHOICES[k] for k in ("q1", "q2", "q3")}


def test_a_broken_member_is_a_problem_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.eval"
    data = bytearray(MC.read_bytes())
    with zipfile.ZipFile(MC) as archive:
        info = archive.getinfo("samples/q1_epoch_1.json")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start : start + 16] = b"\x00" * 16  # corrupt the zstd frame of one member
    broken.write_bytes(bytes(data))
    with pytest.raises(BundleError) as error:
        import_inspect([broken])
    problems = problems_of(error)
    assert problems[0].startswith(f"{broken}")
    assert "samples/q1_epoch_1.json" in problems[0]


def test_two_graders_named_by_string_keep_their_own_verdicts() -> None:
    result = import_inspect([MC, REAL / "open-two-graders.eval"])
    by_judge: dict[str, dict[str, int | None]] = {}
    for verdict in result.bundle.verdicts:
        by_judge.setdefault(verdict.judge, {})[verdict.item] = verdict.verdict
        assert verdict.candidate == "mockllm/model"
    # judge-a always grades C, judge-b always I (stub_server.py)
    assert by_judge == {JUDGE_A: dict.fromkeys(GOLD, 1), JUDGE_B: dict.fromkeys(GOLD, 0)}
    assert {m.name for m in result.bundle.models} == {"mockllm/model", JUDGE_A, JUDGE_B}
    # the names the server returned are kept as provenance, not used as the judge's name
    assert (
        f"note: judge {JUDGE_A!r} (from the scorer's model option (model_graded_qa)) was "
        "served as 'judge-a-2024-07-18'" in result.report()
    )


def test_the_grader_of_a_model_role_is_the_role_model_not_the_served_name() -> None:
    result = import_inspect([MC, REAL / "open-role.eval"])
    verdicts = {v.item: v.verdict for v in result.bundle.verdicts}
    assert {v.judge for v in result.bundle.verdicts} == {JUDGE_C}
    # FREE_FORM = Paris 5 blue Saturn honey six -> judge-c: C I C I I I
    assert verdicts == {"q1": 1, "q2": 0, "q3": 1, "q4": 0, "q5": 0, "q6": 0}
    assert f"note: judge {JUDGE_C!r} (from the 'grader' model role) was served as 'judge'" in (
        result.report()
    )


def test_a_planted_swap_of_the_two_graders_scores_is_caught(tmp_path: Path) -> None:
    """Swap the two scorers' scores in one sample: judge-a would get one of judge-b's verdicts."""
    planted = tmp_path / "planted.eval"
    with zipfile.ZipFile(REAL / "open-two-graders.eval") as source:
        members = {name: source.read(name) for name in source.namelist()}
    sample = json.loads(members["samples/q3_epoch_1.json"])
    scores = sample["scores"]
    scores["model_graded_qa"], scores["model_graded_qa1"] = (
        scores["model_graded_qa1"],
        scores["model_graded_qa"],
    )
    members["samples/q3_epoch_1.json"] = json.dumps(sample).encode()
    with zipfile.ZipFile(planted, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members.items():
            target.writestr(name, data)
    with pytest.raises(BundleError) as error:
        import_inspect([MC, planted])
    problems = problems_of(error)
    assert problems[0].startswith(f"judge {JUDGE_A!r}: its verdicts were graded by models the ")
    assert "'judge-a-2024-07-18'" in problems[0] and "'judge-b-served'" in problems[0]
    assert problems[0].endswith("two graders are mixed up under one name")


def test_samples_without_an_answer_letter_say_all_were_skipped_and_why() -> None:
    log = REAL / "mc-noletter.eval"
    with pytest.raises(BundleError) as error:
        import_inspect([log])
    assert problems_of(error) == [
        f"import: nothing to import: {log}: all 6 samples skipped: 6 skipped multiple-choice "
        "samples with no answer letter (the model replied e.g. 'Default output from "
        "mockllm/model', with no 'ANSWER: <letter>')"
    ]


def test_shuffled_choices_are_said_and_answers_mapped_back_by_option_text() -> None:
    shuffled = REAL / "mc-shuffled.eval"
    with zipfile.ZipFile(shuffled) as archive:
        import zipfile_zstd  # noqa: F401

        q1 = json.loads(archive.read("samples/q1_epoch_1.json"))
    assert q1["choices"] == ["Madrid", "Berlin", "Rome", "Paris"]  # the log's own order
    result = import_inspect([MC, shuffled])
    outputs = {(o.model, o.item): o.choice for o in result.bundle.outputs}
    # inspect_runs.py has the shuffled run's model answer the same option texts
    assert {item: outputs["mockllm/shuffled", item] for item in GOLD} == CHOICES
    assert {i.id: i.gold for i in result.bundle.items} == GOLD
    assert any("choices were shuffled" in note for note in result.notes)


def test_shuffled_choices_with_repeated_texts_are_a_problem_that_says_so(tmp_path: Path) -> None:
    copy = tmp_path / "mc-shuffled.eval"
    shutil.copy(REAL / "mc-shuffled.eval", copy)
    with zipfile.ZipFile(copy) as source:
        members = {name: source.read(name) for name in source.namelist()}
    sample = json.loads(members["samples/q2_epoch_1.json"])
    sample["choices"] = ["4", "4", "3", "5"]  # q2 of mc.eval: 4 3 5 22
    members["samples/q2_epoch_1.json"] = json.dumps(sample).encode()
    with zipfile.ZipFile(copy, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    with pytest.raises(BundleError) as error:
        import_inspect([MC, copy])
    problems = problems_of(error)
    assert problems[0].startswith(f"{copy}:samples/q2_epoch_1.json: item 'q2' differs")
