"""Tests of `auditor.importers` and `auditor import ...`: lm-evaluation-harness samples, Inspect
logs (.json and .eval) and CSV/JSONL tables turned into bundles, checked value by value.

The fixtures under tests/data/importers/ are written in each tool's own format: lm-eval's as
`EvaluationTracker.save_results_samples` writes them (arguments as gen_args_<i>/arg_<j>,
responses as strings, target as str in the newer file and int in the older one); Inspect's .json
logs as an `EvalLog`; the .eval zip is built here with the members inspect_ai's `EvalRecorder`
writes. Expected probabilities are worked by hand from the logged numbers (softmax of the
log-likelihoods; letter mass at the answer token, renormalized).
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from auditor import importers
from auditor.cli import app
from auditor.importers import import_inspect, import_lm_eval, import_table
from auditor.schemas.bundle import BundleError, load_bundle

DATA = Path(__file__).resolve().parents[2] / "data" / "importers"
LM_EVAL = DATA / "lm-eval"
PYTHIA_160M = LM_EVAL / "EleutherAI__pythia-160m"
PYTHIA_410M = LM_EVAL / "EleutherAI__pythia-410m"
SAMPLES_160M = PYTHIA_160M / "samples_arc_easy_2024-05-01T10-15-32.412518.jsonl"
SAMPLES_410M = PYTHIA_410M / "samples_arc_easy_2024-05-01T11-02-07.918245.jsonl"
INSPECT = DATA / "inspect"
INSPECT_MC = INSPECT / "2024-09-12T14-03-11+00-00_arc-easy_bHr8mJp4TzW2nLqX6cVd9k.json"
INSPECT_OPEN = INSPECT / "2024-09-12T14-05-40+00-00_arc-easy-open_Qm2vN8kR5sLp7dHx3WcYt4.json"
HAIKU = "anthropic/claude-3-haiku-20240307"
MINI = "openai/gpt-4o-mini"

runner = CliRunner()


def softmax(values: list[float]) -> list[float]:
    exps = [math.exp(v) for v in values]
    return [e / sum(exps) for e in exps]


def error_lines(result: Any) -> list[str]:
    """The CLI's stderr lines, after checking the error contract (exit 2, one line each)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("error: ") for line in lines)
    return lines


def problems_of(error: pytest.ExceptionInfo[BundleError]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def test_public_names_are_pinned() -> None:
    assert importers.__all__ == [
        "INSPECT_MODEL_GRADED_SCORERS",
        "TABLE_COLUMNS",
        "ImportResult",
        "import_helm",
        "import_inspect",
        "import_lm_eval",
        "import_table",
        "merge_bundles",
    ]


# --- lm-evaluation-harness -----------------------------------------------------------------------


def test_lm_eval_merges_two_models_and_takes_the_softmax_of_log_likelihoods() -> None:
    result = import_lm_eval([LM_EVAL])
    bundle = result.bundle

    assert [item.id for item in bundle.items] == ["arc_easy/0", "arc_easy/1", "arc_easy/2"]
    first = bundle.items[0]
    assert first.question == (
        "An astronomer observes that a planet rotates faster after a meteorite impact. "
        "Which is the most likely effect of this increase in rotation?"
    )
    assert first.options == [
        "Planetary density will decrease.",
        "Planetary years will become longer.",
        "Planetary days will become shorter.",
        "Planetary gravity will become stronger.",
    ]
    assert [item.gold for item in bundle.items] == [2, 1, 0]  # answerKey C, B, A
    assert {item.category for item in bundle.items} == {"arc_easy"}
    assert [m.name for m in bundle.models] == ["EleutherAI/pythia-160m", "EleutherAI/pythia-410m"]
    assert len(bundle.outputs) == 6

    outputs = {(o.model, o.item): o for o in bundle.outputs}
    # Hand-computed: e^-1, e^-2, e^-3 = 0.367879, 0.135335, 0.049787; their sum is 0.553002.
    small = outputs["EleutherAI/pythia-160m", "arc_easy/1"]
    assert small.probs == pytest.approx(
        [0.6652409557748219, 0.24472847105479767, 0.09003057317038046], abs=1e-15
    )
    assert small.choice == 0
    # e^-3, e^-0.5, e^-4 = 0.049787, 0.606531, 0.018316; sum 0.674633.
    large = outputs["EleutherAI/pythia-410m", "arc_easy/1"]
    assert large.probs == pytest.approx(
        [0.07379870431184088, 0.8990522695867426, 0.027149026101416527], abs=1e-15
    )
    assert large.choice == 1
    # The logged strings are parsed exactly: "-9.52341079711914" etc.
    assert outputs["EleutherAI/pythia-160m", "arc_easy/0"].probs == pytest.approx(
        softmax([-9.52341079711914, -10.25, -8.75, -11.015625]), abs=1e-15
    )
    assert result.notes == (
        "skipped files of a task that is not multiple_choice (gsm8k: generate_until): 1",
    )


def test_lm_eval_choice_agrees_with_the_acc_lm_eval_logged() -> None:
    bundle = import_lm_eval([LM_EVAL]).bundle
    outputs = {(o.model, o.item): o for o in bundle.outputs}
    gold = {item.id: item.gold for item in bundle.items}
    for model, path in (
        ("EleutherAI/pythia-160m", SAMPLES_160M),
        ("EleutherAI/pythia-410m", SAMPLES_410M),
    ):
        for line in path.read_text().splitlines():
            sample = json.loads(line)
            item = f"arc_easy/{sample['doc_id']}"
            assert (outputs[model, item].choice == gold[item]) == (sample["acc"] == 1.0)


def test_lm_eval_length_normalization_is_acc_norm() -> None:
    bundle = import_lm_eval([SAMPLES_160M], length_normalize=True).bundle
    outputs = {o.item: o for o in bundle.outputs}
    # gram, kilogram, liter, meter: 4, 8, 5, 5 characters; log-likelihoods -6, -8, -7, -9.
    mass = [math.exp(-6 / 4), math.exp(-8 / 8), math.exp(-7 / 5), math.exp(-9 / 5)]
    assert outputs["arc_easy/2"].probs == pytest.approx([m / sum(mass) for m in mass], abs=1e-15)
    assert outputs["arc_easy/2"].choice == 1  # acc picks "gram" (0); acc_norm picks "kilogram"
    gold = {item.id: item.gold for item in bundle.items}
    for line in SAMPLES_160M.read_text().splitlines():
        sample = json.loads(line)
        item = f"arc_easy/{sample['doc_id']}"
        assert (outputs[item].choice == gold[item]) == (sample["acc_norm"] == 1.0)


def test_lm_eval_results_file_brings_in_its_samples_and_names_the_model() -> None:
    results = PYTHIA_410M / "results_2024-05-01T11-02-07.918245.json"
    bundle = import_lm_eval([results]).bundle
    assert [m.name for m in bundle.models] == ["EleutherAI/pythia-410m"]
    assert len(bundle.outputs) == 3


def test_lm_eval_model_name_from_model_args_or_the_option(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(PYTHIA_160M, run)
    results_path = run / "results_2024-05-01T10-15-32.412518.json"
    results = json.loads(results_path.read_text())
    del results["model_name"]
    results_path.write_text(json.dumps(results))
    bundle = import_lm_eval([run]).bundle
    assert [m.name for m in bundle.models] == ["EleutherAI/pythia-160m"]  # pretrained=...

    results_path.unlink()
    with pytest.raises(BundleError) as error:
        import_lm_eval([run / SAMPLES_160M.name])
    assert problems_of(error) == [
        f"{run / SAMPLES_160M.name}: cannot tell which model wrote this file: no "
        "results_<date>.json beside it names one (pass --model-name)"
    ]
    named = import_lm_eval([run / SAMPLES_160M.name], model_name="pythia-small").bundle
    assert [m.name for m in named.models] == ["pythia-small"]


def test_lm_eval_model_name_option_refuses_several_models() -> None:
    with pytest.raises(BundleError) as error:
        import_lm_eval([LM_EVAL], model_name="one")
    assert problems_of(error)[0].startswith("--model-name: given, but the files come from 2 models")


def test_lm_eval_items_that_differ_between_files_name_both_files(tmp_path: Path) -> None:
    other = tmp_path / "EleutherAI__pythia-410m"
    shutil.copytree(PYTHIA_410M, other)
    samples = other / SAMPLES_410M.name
    lines = samples.read_text().splitlines()
    second = json.loads(lines[1])
    second["arguments"]["gen_args_2"]["arg_1"] = " oil"
    second["target"] = 2
    second["acc"] = 0.0
    lines[1] = json.dumps(second)
    samples.write_text("\n".join(lines) + "\n")

    with pytest.raises(BundleError) as error:
        import_lm_eval([PYTHIA_160M, other])
    assert problems_of(error) == [
        f"{samples} line 2: item 'arc_easy/1' differs from the one read at {SAMPLES_160M} "
        "line 2: options ['coal', 'wind', 'oil'] here, ['coal', 'wind', 'natural gas'] there; "
        "gold 2 here, 1 there",
        # the edit also changed the file's mean acc, which no longer matches its results file
        f"{samples}: its samples' mean acc is 0.666667, but "
        f"{other / 'results_2024-05-01T11-02-07.918245.json'} reports acc 1 for this task: this "
        "samples file is not that run's (it would be given the wrong model)",
    ]


def test_lm_eval_malformed_lines_are_named_by_file_line_and_field(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(PYTHIA_160M, run)
    samples = run / SAMPLES_160M.name
    lines = samples.read_text().splitlines()
    first = json.loads(lines[0])
    first["filtered_resps"][1] = ["abc", "False"]
    second = json.loads(lines[1])
    second["target"] = "7"
    third = json.loads(lines[2])
    third["acc"] = 0.0  # the log-likelihoods say the model was right
    samples.write_text(
        "\n".join([json.dumps(first), json.dumps(second), json.dumps(third), "{not json"]) + "\n"
    )

    result = runner.invoke(app, ["import", "lm-eval", str(run), "--out", str(tmp_path / "b.json")])
    assert error_lines(result) == [
        f"error: {samples} line 1.filtered_resps[1]: not a log-likelihood: 'abc'",
        f"error: {samples} line 2.target: option index 7 is out of range for 3 options",
        f"error: {samples} line 3.acc: lm-eval logged acc=0.0, but the log-likelihoods and "
        "target as read give prediction 0 and gold 0: this log is not in a form the importer "
        "understands",
        f"error: {samples} line 4: not valid JSON: Expecting property name enclosed in double "
        "quotes",
    ]
    assert not (tmp_path / "b.json").exists()


def test_lm_eval_mutual_information_requests_and_text_targets(tmp_path: Path) -> None:
    """acc_mutual_info adds ("", continuation) requests; a target may be the option's text."""
    context = "Question: Which of these is a renewable resource?\nAnswer:"
    choices = [" coal", " wind", " natural gas"]
    arguments = {
        f"gen_args_{i}": {"arg_0": ctx, "arg_1": cont}
        for i, (ctx, cont) in enumerate(
            [(context, c) for c in choices] + [("", c) for c in choices]
        )
    }
    sample = {
        "doc_id": 4,
        "doc": {"query": "Which of these is a renewable resource?"},
        "target": "wind",
        "arguments": arguments,
        "resps": [[[str(v), "False"]] for v in (-2.0, -1.0, -3.0, -5.0, -4.0, -6.0)],
        "filtered_resps": [[str(v), "False"] for v in (-2.0, -1.0, -3.0, -5.0, -4.0, -6.0)],
        "acc": 1.0,
    }
    path = tmp_path / "samples_renewables_2024-05-02T08-00-00.000001.jsonl"
    path.write_text(json.dumps(sample) + "\n")
    bundle = import_lm_eval([path], model_name="m").bundle
    item = bundle.items[0]
    assert (item.id, item.question, item.options, item.gold) == (
        "renewables/4",
        "Which of these is a renewable resource?",
        ["coal", "wind", "natural gas"],
        1,
    )
    assert bundle.outputs[0].probs == pytest.approx(softmax([-2.0, -1.0, -3.0]), abs=1e-15)


def test_lm_eval_reads_the_first_filter_of_a_task_with_several(tmp_path: Path) -> None:
    lines = SAMPLES_160M.read_text().splitlines()
    second_filter = [json.loads(line) | {"filter": "strict"} for line in lines]
    path = tmp_path / SAMPLES_160M.name
    path.write_text("\n".join(lines + [json.dumps(s) for s in second_filter]) + "\n")
    result = import_lm_eval([path], model_name="m")
    assert len(result.bundle.outputs) == 3
    assert result.notes == ("skipped samples of a task's second and later filters: 3",)


def test_lm_eval_multiple_input_tasks_are_refused_clearly(tmp_path: Path) -> None:
    sample = {
        "doc_id": 0,
        "doc": {"sentence": "The trophy doesn't fit into the suitcase because _ is too large."},
        "target": "0",
        "arguments": {
            "gen_args_0": {
                "arg_0": "The trophy doesn't fit ... because the trophy",
                "arg_1": " is",
            },
            "gen_args_1": {
                "arg_0": "The trophy doesn't fit ... because the suitcase",
                "arg_1": " is",
            },
        },
        "filtered_resps": [["-3.5", "False"], ["-4.0", "False"]],
    }
    path = tmp_path / "samples_winogrande_2024-05-02T08-00-00.000001.jsonl"
    path.write_text(json.dumps(sample) + "\n")
    with pytest.raises(BundleError) as error:
        import_lm_eval([path], model_name="m")
    assert problems_of(error) == [
        f"{path} line 1.arguments: every request has the same continuation: the options are in "
        "the contexts (a multiple-input task such as winogrande), which this importer does "
        "not read"
    ]


# --- Inspect -------------------------------------------------------------------------------------


def write_eval(path: Path, log: dict[str, Any]) -> Path:
    """A .eval file with the members inspect_ai's EvalRecorder writes (log/_recorders/eval.py)."""
    samples = log.get("samples") or []
    header = {key: value for key, value in log.items() if key != "samples"}
    summaries = [
        {key: sample[key] for key in ("id", "epoch", "input", "target", "scores")}
        for sample in samples
    ]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        start = {"version": log["version"], "eval": log["eval"], "plan": log["plan"]}
        archive.writestr("_journal/start.json", json.dumps(start, indent=2))
        for sample in samples:
            name = f"samples/{sample['id']}_epoch_{sample['epoch']}.json"
            archive.writestr(name, json.dumps(sample, indent=2))
        archive.writestr("_journal/summaries/1.json", json.dumps(summaries, indent=2))
        archive.writestr("summaries.json", json.dumps(summaries, indent=2))
        archive.writestr("header.json", json.dumps(header, indent=2))
    return path


def haiku_log(answers: dict[str, str], epochs: int = 1) -> dict[str, Any]:
    """The multiple-choice run of the fixture, as claude-3-haiku answered it (no logprobs)."""
    log = json.loads(INSPECT_MC.read_text())
    log["eval"]["model"] = HAIKU
    log["eval"]["model_generate_config"] = {}
    log["eval"]["config"]["epochs"] = epochs
    log["plan"]["config"] = {}
    samples = []
    for epoch in range(1, epochs + 1):
        for template in log["samples"]:
            sample = copy.deepcopy(template)
            text = answers[sample["id"]]
            answer = text.removeprefix("ANSWER: ") if text.startswith("ANSWER: ") else ""
            sample["epoch"] = epoch
            sample["messages"][1]["content"] = text
            sample["output"] = {
                "model": "claude-3-haiku-20240307",
                "choices": [
                    {
                        "message": {"content": text, "source": "generate", "role": "assistant"},
                        "stop_reason": "stop",
                    }
                ],
            }
            sample["scores"] = {
                "choice": {
                    "value": "C" if answer == sample["target"] else "I",
                    "answer": answer,
                    "explanation": text,
                }
            }
            samples.append(sample)
    log["samples"] = samples
    return log


HAIKU_ANSWERS = {
    "Mercury_7175875": "ANSWER: C",
    "Mercury_SC_401169": "ANSWER: A",
    "MCAS_2000_4_6": "ANSWER: A",
    "Mercury_7220990": "ANSWER: B",
}


def test_inspect_logs_give_items_outputs_and_verdicts(tmp_path: Path) -> None:
    haiku = write_eval(tmp_path / "haiku.eval", haiku_log(HAIKU_ANSWERS, epochs=2))
    result = import_inspect([INSPECT_MC, INSPECT_OPEN, haiku])
    bundle = result.bundle

    assert [(i.id, i.gold) for i in bundle.items] == [
        ("Mercury_7175875", 2),
        ("Mercury_SC_401169", 1),
        ("MCAS_2000_4_6", 0),
        ("Mercury_7220990", 1),
    ]
    assert bundle.items[1].options == ["coal", "wind", "natural gas"]
    assert bundle.items[1].question == "Which of these is a renewable resource?"
    assert [(m.name, m.provider) for m in bundle.models] == [
        (MINI, "openai"),
        (HAIKU, "anthropic"),
    ]

    outputs = {(o.model, o.item): o for o in bundle.outputs}
    assert len(outputs) == 7  # gpt-4o-mini did not answer Mercury_7220990 in the format
    # At the " C" token: " C" -0.1, " A" -2.5, "C" -4.0, " B" -5.0, " D" -6.2.
    mass = [math.exp(-2.5), math.exp(-5.0), math.exp(-0.1) + math.exp(-4.0), math.exp(-6.2)]
    first = outputs[MINI, "Mercury_7175875"]
    assert first.probs == pytest.approx([m / sum(mass) for m in mass], abs=1e-15)
    assert first.choice == 2
    assert first.response == "Its days would get shorter, since a day is one full rotation."
    # " B" -0.01, " A" -4.8, " b" -7.9 (not a letter of ours), "B" -8.1, " The" -9.3; no C.
    mass = [math.exp(-4.8), math.exp(-0.01) + math.exp(-8.1), 0.0]
    assert outputs[MINI, "Mercury_SC_401169"].probs == pytest.approx(
        [m / sum(mass) for m in mass], abs=1e-15
    )
    assert [(outputs[HAIKU, i.id].probs, outputs[HAIKU, i.id].choice) for i in bundle.items] == [
        (None, 2),
        (None, 0),
        (None, 0),
        (None, 1),
    ]

    assert [(v.judge, v.candidate, v.item, v.verdict) for v in bundle.verdicts] == [
        (HAIKU, MINI, "Mercury_7175875", 1),
        (HAIKU, MINI, "Mercury_SC_401169", 0),
        (HAIKU, MINI, "MCAS_2000_4_6", None),  # "Grade not found in model output"
        (HAIKU, MINI, "Mercury_7220990", 1),
    ]
    assert bundle.verdicts[0].raw is not None and bundle.verdicts[0].raw.endswith("GRADE: C")
    assert result.notes == (
        "skipped multiple-choice samples with no answer letter: 1",
        "unparseable verdicts kept as null: 1",
        "skipped samples of epochs after the first: 4",
    )


def test_inspect_cli_writes_a_bundle_that_similarity_reads(tmp_path: Path) -> None:
    haiku = write_eval(tmp_path / "haiku.eval", haiku_log(HAIKU_ANSWERS))
    out = tmp_path / "bundle.json"
    result = runner.invoke(
        app,
        ["import", "inspect", str(INSPECT_MC), str(INSPECT_OPEN), str(haiku), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "read: 3 logs, 12 samples",
        "skipped: multiple-choice samples with no answer letter: 1",
        "skipped: unparseable verdicts kept as null: 1",
        "imported: 4 items, 2 models, 7 outputs, 4 verdicts",
        f"wrote {out}",
    ]
    assert len(load_bundle(out).verdicts) == 4

    similarity = runner.invoke(app, ["similarity", str(out)])
    assert similarity.exit_code == 0, similarity.output
    document = json.loads(similarity.stdout)
    assert document["models"] == [MINI, HAIKU]
    assert document["n_items"][0][1] == 3  # items both models answered


def test_inspect_ignores_logprobs_of_shuffled_choices(tmp_path: Path) -> None:
    log = json.loads(INSPECT_MC.read_text())
    log["plan"]["steps"] = [{"solver": "multiple_choice", "params": {"shuffle": True}}]
    result = import_inspect([write_eval(tmp_path / "shuffled.eval", log)])
    assert all(output.probs is None for output in result.bundle.outputs)
    assert {o.item: o.choice for o in result.bundle.outputs} == {
        "Mercury_7175875": 2,
        "Mercury_SC_401169": 1,
        "MCAS_2000_4_6": 0,
    }
    assert (
        "logprobs ignored because the choices were shuffled (outputs kept as choices): 3"
        in result.notes
    )


def test_inspect_reads_the_completed_samples_of_an_unfinished_eval(tmp_path: Path) -> None:
    log = haiku_log(HAIKU_ANSWERS)
    path = tmp_path / "unfinished.eval"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        start = {"version": log["version"], "eval": log["eval"], "plan": log["plan"]}
        archive.writestr("_journal/start.json", json.dumps(start))
        for sample in log["samples"][:2]:
            archive.writestr(f"samples/{sample['id']}_epoch_1.json", json.dumps(sample))
    result = import_inspect([path])
    assert sorted(o.item for o in result.bundle.outputs) == ["Mercury_7175875", "Mercury_SC_401169"]
    assert result.notes == ("logs of unfinished runs (their completed samples were read): 1",)


def test_inspect_grader_from_the_model_role_and_partial_credit_is_null(tmp_path: Path) -> None:
    log = json.loads(INSPECT_OPEN.read_text())
    log["eval"]["scorers"] = [{"name": "model_graded_qa", "options": {"partial_credit": True}}]
    log["eval"]["model_roles"] = {"grader": {"model": "google/gemini-1.5-flash"}}
    for sample in log["samples"]:
        score = sample["scores"].pop("model_graded_fact")
        sample["scores"]["model_graded_qa"] = score
    log["samples"][0]["scores"]["model_graded_qa"]["value"] = "P"
    open_log = tmp_path / "open.json"
    open_log.write_text(json.dumps(log))
    bundle = import_inspect([INSPECT_MC, open_log]).bundle
    assert {v.judge for v in bundle.verdicts} == {"google/gemini-1.5-flash"}
    assert [v.verdict for v in bundle.verdicts] == [None, 0, None, 1]


def test_inspect_problems_name_the_file_and_sample(tmp_path: Path) -> None:
    log = json.loads(INSPECT_MC.read_text())
    log["samples"][1]["target"] = ["A", "B"]
    broken = write_eval(tmp_path / "broken.eval", log)
    no_header = tmp_path / "empty.eval"
    with zipfile.ZipFile(no_header, "w") as archive:
        archive.writestr("samples/1_epoch_1.json", "{}")

    result = runner.invoke(
        app,
        [
            "import",
            "inspect",
            str(broken),
            str(no_header),
            str(INSPECT_OPEN),
            "--out",
            str(tmp_path / "b.json"),
        ],
    )
    assert error_lines(result) == [
        f"error: {no_header}: not an Inspect .eval log: no header.json",
        f"error: {broken}:samples/Mercury_SC_401169_epoch_1.json.target: must be one option "
        "letter A..C; got ['A', 'B'] (samples with several correct options are not supported)",
        f"error: {INSPECT_OPEN} samples[1].scores.model_graded_fact: verdict on sample "
        "'Mercury_SC_401169': no multiple-choice item with this id in the imported logs (import "
        "the multiple-choice logs of the same samples too)",
    ]


# --- CSV and JSONL tables ------------------------------------------------------------------------


def test_csv_and_jsonl_tables_give_the_same_bundle() -> None:
    from_csv = import_table(DATA / "table.csv", table_format="csv")
    from_jsonl = import_table(DATA / "table.jsonl", table_format="jsonl")
    assert from_csv.bundle == from_jsonl.bundle
    assert from_csv.notes == ("unparseable verdicts kept as null: 1",)

    bundle = from_csv.bundle
    assert [(i.id, i.options, i.gold, i.category) for i in bundle.items] == [
        ("geo-1", ["Sydney", "Canberra", "Melbourne", "Perth"], 1, "geography"),
        ("bio-1", ["Oxygen", "Carbon dioxide", "Nitrogen"], 1, "biology"),
    ]
    assert [(m.name, m.family) for m in bundle.models] == [
        ("alpha", "a"),
        ("beta", "b"),
        ("gamma", "c"),
    ]
    assert [(o.model, o.item, o.probs, o.choice) for o in bundle.outputs] == [
        ("alpha", "geo-1", [0.1, 0.7, 0.15, 0.05], None),
        ("beta", "geo-1", [0.5, 0.3, 0.1, 0.1], None),
        ("gamma", "geo-1", None, 1),
        ("alpha", "bio-1", [0.2, 0.7, 0.1], None),
        ("beta", "bio-1", [0.25, 0.6, 0.15], None),
        ("gamma", "bio-1", None, 1),
    ]
    assert bundle.outputs[1].response == "Sydney, the largest city."
    assert [(v.judge, v.candidate, v.item, v.verdict) for v in bundle.verdicts] == [
        ("gamma", "alpha", "geo-1", 1),
        ("gamma", "beta", "geo-1", 0),
        ("gamma", "alpha", "bio-1", 1),
        ("gamma", "beta", "bio-1", None),
    ]


def test_csv_cli_output_runs_through_similarity(tmp_path: Path) -> None:
    out = tmp_path / "bundle.jsonl"
    result = runner.invoke(app, ["import", "csv", str(DATA / "table.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "imported: 2 items, 3 models, 6 outputs, 4 verdicts" in result.stdout.splitlines()
    assert load_bundle(out) == import_table(DATA / "table.csv", table_format="csv").bundle
    similarity = runner.invoke(app, ["similarity", str(out)])
    assert similarity.exit_code == 0, similarity.output
    assert json.loads(similarity.stdout)["models"] == ["alpha", "beta", "gamma"]


def test_table_problems_name_the_line_and_column(tmp_path: Path) -> None:
    table = tmp_path / "export.csv"
    table.write_text(
        "item_id,question,option_1,option_2,option_3,gold,model,prob_1,prob_2,prob_3,choice\n"
        "q1,Q one?,yes,no,,0,m,0.5,abc,,\n"
        "q2,Q two?,a,b,c,D,m,0.2,0.3,0.5,\n"
        "q3,Q three?,a,,c,0,m,,,,1\n"
        "q4,Q four?,a,b,,0,m,0.7,0.7,,\n"
        "q4,Q for?,a,b,,0,n,,,,0\n"
    )
    result = runner.invoke(app, ["import", "csv", str(table), "--out", str(tmp_path / "b.json")])
    assert error_lines(result) == [
        f"error: {table} line 2.prob_2: not a number: 'abc'",
        f"error: {table} line 4.option_2: option_1..option_3 must be filled in order, without gaps",
        f"error: {table} line 6.question: item 'q4' has 'Q four?' at {table} line 5; here 'Q for?'",
        f"error: {table} line 3.gold: letter 'D' is past the last option (C)",
    ]

    table.write_text(
        "item_id,question,option_1,option_2,gold,model,prob_1,prob_2,colour\n"
        "q1,Q one?,yes,no,0,m,0.5,0.5,red\n"
    )
    result = runner.invoke(app, ["import", "csv", str(table), "--out", str(tmp_path / "b.json")])
    assert error_lines(result) == [
        f"error: {table} line 1.colour: unknown column (known: "
        + ", ".join(importers.TABLE_COLUMNS)
        + ")"
    ]


def test_table_validation_problems_name_the_row(tmp_path: Path) -> None:
    table = tmp_path / "export.jsonl"
    table.write_text(
        json.dumps({"item_id": "q1", "question": "Q?", "options": ["a", "b"], "gold": 0})
        + "\n"
        + json.dumps({"item_id": "q1", "model": "m", "probs": [0.5, 0.6]})
        + "\n"
    )
    with pytest.raises(BundleError) as error:
        import_table(table, table_format="jsonl")
    assert problems_of(error) == [
        f"{table} line 2: outputs[0] (model='m', item='q1').probs: must sum to 1 within 1e-06; "
        "they sum to 1.1 (use --normalize sum|softmax for scores, logits or log-probabilities)"
    ]
    normalized = import_table(table, table_format="jsonl", normalize="sum").bundle
    assert normalized.outputs[0].probs == pytest.approx([0.5 / 1.1, 0.6 / 1.1], abs=1e-15)
