"""`import_lm_eval` on output written by lm-evaluation-harness 0.4.13 itself
(tests/data/importers/real/lm-eval/, made by make_fixtures.sh with `--model dummy` on local
tasks: tiny_mc with text choices, tiny_letters with MMLU-style letter choices). Expected
probabilities are the softmax of the logged log-likelihoods, computed here with numpy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from auditor.importers import import_lm_eval
from auditor.schemas.bundle import BundleError

REAL = Path(__file__).parents[2] / "data" / "importers" / "real" / "lm-eval"
WITH_ARGS = REAL / "with-args"
NO_ARGS = REAL / "no-args"
NO_ARGS_2 = REAL / "no-args-2"
OPTIONS = {
    0: ["Berlin", "Paris", "Rome", "Madrid"],
    3: ["Mars", "Venus", "Earth", "Jupiter"],
}


def problems_of(error: pytest.ExceptionInfo[BundleError]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def logged(run: Path, task: str) -> list[dict]:
    (path,) = run.rglob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_with_model_args_is_named_by_them_and_probs_are_the_softmax() -> None:
    result = import_lm_eval([WITH_ARGS])
    bundle = result.bundle
    assert [m.name for m in bundle.models] == ["acme/dummy-a"]
    outputs = {o.item: o for o in bundle.outputs}
    for record in logged(WITH_ARGS, "tiny_mc"):
        lls = np.array([float(r[0]) for r in record["filtered_resps"]])
        expected = np.exp(lls - lls.max()) / np.exp(lls - lls.max()).sum()
        output = outputs[f"tiny_mc/{record['doc_id']}"]
        assert output.probs == pytest.approx(expected, abs=1e-12)
        assert output.choice == int(np.argmax(lls))
    assert result.report()[0] == "read: 2 samples files, 12 samples"


def test_letter_choices_keep_the_option_texts_of_the_document() -> None:
    result = import_lm_eval([WITH_ARGS])
    items = {i.id: i for i in result.bundle.items}
    for doc_id, options in OPTIONS.items():
        assert items[f"tiny_letters/{doc_id}"].options == options
        assert items[f"tiny_mc/{doc_id}"].options == options
    assert items["tiny_letters/3"].gold == 3
    assert (
        "note: task 'tiny_letters': its choices are letters; the option texts of 6 samples "
        "were taken from the document's 'choices' list" in result.report()
    )


def test_letter_choices_without_texts_in_the_document_say_so(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(WITH_ARGS, run)
    (path,) = run.rglob("samples_tiny_letters_*.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        del record["doc"]["choices"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = import_lm_eval([run])
    assert {tuple(i.options) for i in result.bundle.items if i.category == "tiny_letters"} == {
        ("A", "B", "C", "D")
    }
    assert (
        "note: task 'tiny_letters': its choices are letters and 6 samples' documents hold no "
        "list of the option texts: their options are the letters" in result.report()
    )


def test_a_run_without_model_args_is_named_by_its_model_type_not_the_random_id() -> None:
    result = import_lm_eval([NO_ARGS])
    assert [m.name for m in result.bundle.models] == ["dummy"]
    (results_path,) = NO_ARGS.rglob("results_*.json")
    random_id = json.loads(results_path.read_text())["model_name"]
    assert len(random_id) == 8
    assert (
        f"note: {results_path}: the run had no --model_args, so lm-eval named it "
        f"{random_id!r} (a random id); named 'dummy' after its --model (pass --model-name to "
        "name it)" in result.report()
    )


def test_two_unnamed_runs_need_a_name_each_and_get_them_in_path_order() -> None:
    with pytest.raises(BundleError) as error:
        import_lm_eval([NO_ARGS, NO_ARGS_2])
    problems = problems_of(error)
    assert len(problems) == 2  # one per run, not one per file or sample
    assert all("pass --model-name once per path" in p for p in problems)

    bundle = import_lm_eval([NO_ARGS, NO_ARGS_2], model_name=["first", "second"]).bundle
    assert [m.name for m in bundle.models] == ["first", "second"]
    first = {o.item: o.probs for o in bundle.outputs if o.model == "first"}
    record = logged(NO_ARGS, "tiny_mc")[0]
    lls = np.array([float(r[0]) for r in record["filtered_resps"]])
    assert first["tiny_mc/0"] == pytest.approx(np.exp(lls) / np.exp(lls).sum(), abs=1e-12)


def test_one_model_name_for_two_runs_is_one_problem_per_task_not_a_flood() -> None:
    with pytest.raises(BundleError) as error:
        import_lm_eval([NO_ARGS, NO_ARGS_2], model_name="same")
    problems = problems_of(error)
    assert len(problems) == 2  # tiny_letters and tiny_mc, instead of 12 duplicate answers
    assert all("two runs are read under one name" in p for p in problems)
    with pytest.raises(BundleError) as error:
        import_lm_eval([NO_ARGS, NO_ARGS_2], model_name=["a", "b", "c"])
    assert problems_of(error) == [
        "--model-name: given 3 times for 2 paths: give one name for all, or one per path in "
        "the order of the paths"
    ]


def test_a_samples_file_planted_beside_another_runs_results_is_caught(tmp_path: Path) -> None:
    """Put another run's tiny_mc samples in place of run 1's (same file name): run 1's name
    would go to that run's answers. Its samples' mean acc no longer matches run 1's results.

    The dummy runs of the fixtures happen to share acc 1/6, so the other run here is run 2
    with one more document answered right (its log-likelihoods and acc changed together, as
    lm-eval writes them). A planted file with the same mean acc is not caught: the results
    file holds nothing else that tells runs of one task apart.
    """
    run = tmp_path / "run"
    shutil.copytree(WITH_ARGS, run)
    (target,) = run.rglob("samples_tiny_mc_*.jsonl")
    records = logged(NO_ARGS_2, "tiny_mc")
    wrong = next(r for r in records if r["acc"] == 0.0)
    gold = int(wrong["target"])
    for index, response in enumerate(wrong["filtered_resps"]):
        response[0] = "-0.1" if index == gold else "-5.0"
    wrong["resps"] = [[response] for response in wrong["filtered_resps"]]
    wrong["acc"] = 1.0
    target.write_text("".join(json.dumps(r) + "\n" for r in records))
    accs = [r["acc"] for r in records]
    with pytest.raises(BundleError) as error:
        import_lm_eval([run])
    (problem,) = problems_of(error)
    assert problem.startswith(f"{target}: its samples' mean acc is {np.mean(accs):.6g}, but ")
    assert problem.endswith("it would be given the wrong model)")
