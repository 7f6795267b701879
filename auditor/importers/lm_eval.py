"""EleutherAI lm-evaluation-harness ``--log_samples`` output turned into a bundle."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from auditor.importers.common import Builder, ImportResult, argmax, json_lines, read_json_file
from auditor.schemas.bundle import Item, Output

__all__ = ["import_lm_eval"]

# --- EleutherAI lm-evaluation-harness ------------------------------------------------------------
#
# Read from EleutherAI/lm-evaluation-harness:
# * lm_eval/evaluator.py (`evaluate`): each logged sample is {"doc_id", "doc", "target",
#   "arguments": [req.args ...], "resps", "filtered_resps": [req.filtered_resps[filter] ...],
#   "filter", "metrics", "doc_hash", "prompt_hash", "target_hash"} plus the metrics (acc, ...).
# * lm_eval/loggers/evaluation_tracker.py (`save_results_samples`): written to
#   <output_path>/<model_name_sanitized>/samples_<task>_<date_id>.jsonl, one sample a line, with
#   arguments re-keyed as {"gen_args_<i>": {"arg_<j>": ...}}, resps and filtered_resps passed
#   through `sanitize_list` (every leaf becomes a string: ["-2.31", "False"]) and, in newer
#   versions, target as str(target). `save_results_aggregated` writes results_<date_id>.json
#   beside it with the GeneralConfigTracker fields (model_name, ...) and "config" (model,
#   model_args) and "configs" (each task's output_type, target_delimiter, ...).
# * lm_eval/api/task.py (`ConfigurableTask.construct_requests` / `process_results`): a
#   multiple_choice task sends one loglikelihood request (context, target_delimiter + choice)
#   per choice, plus one ("", delimiter + choice) per choice for acc_mutual_info; acc takes the
#   argmax of the log-likelihoods, acc_norm the argmax of ll / len(choice) (characters).
# * lm_eval/utils.py (`get_file_task_name`, `get_file_datetime`): how file names are split.

_LM_EVAL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T")
_LM_EVAL_QUESTION_FIELDS: Final = ("question", "query", "goal", "ctx", "sentence", "premise")
# Keys GeneralConfigTracker._get_model_name looks for in model_args, in its order.
_LM_EVAL_MODEL_ARG_KEYS: Final = ("peft", "delta", "pretrained", "model", "path", "engine")


@dataclass(frozen=True)
class _LmEvalRun:
    """What the results_<date>.json beside a samples file says about the run."""

    results_path: Path | None
    model: str | None  # from model_args, as lm-eval names it
    model_type: str | None  # config.model: "dummy", "hf", ...
    random_id: str | None  # lm-eval's name for a run without model_args
    task_config: dict[str, Any]
    logged_acc: float | None


def import_lm_eval(
    paths: Sequence[Path],
    *,
    model_name: str | Sequence[str] | None = None,
    length_normalize: bool = False,
) -> ImportResult:
    """Import lm-evaluation-harness ``--log_samples`` output of one or more models.

    ``paths`` are output directories (searched recursively for ``samples_*.jsonl``), samples
    files, or ``results_<date>.json`` files (which bring in the samples files of the same run).
    Only ``multiple_choice`` tasks are read; other tasks are skipped and counted.

    Each sample becomes item ``"<task>/<doc_id>"``: the question is the document's ``question``
    (or ``query``, ``goal``, ``ctx``, ``sentence``, ``premise``) field, else the request context;
    the options are the requests' continuations less the task's ``target_delimiter``; gold is
    the ``target`` (an option index, or an option's text). The model's ``probs`` are the
    softmax of the per-option log-likelihoods :math:`\\ell_i = \\log P(\\text{option}_i \\mid
    \\text{context})`,

    .. math:: p_i = e^{\\ell_i} / \\sum_j e^{\\ell_j},

    the model's conditional distribution over the options given that it answers with one of
    them, and ``choice`` is its argmax (lm-eval's ``acc`` prediction).

    With ``length_normalize`` the log-likelihoods are first divided by each option's length in
    characters, :math:`p_i \\propto e^{\\ell_i / |\\text{option}_i|}`: exactly lm-eval's
    ``acc_norm`` normalization (``ll / len(choice)`` in ``process_results``), so ``choice`` is the
    ``acc_norm`` prediction. This is a per-character score turned into weights, not a
    probability the model assigns; use it only to compare models on the metric they were
    reported on.

    The model is named by ``model_name`` (one name for every path, or one per path in their
    order), else by the ``pretrained=``/``model=``/... entry of the run's
    ``config.model_args`` (as lm-eval names it). A run without ``model_args`` gets from lm-eval
    a random 8-character id as its name; it is named by its ``--model`` (``dummy``, ``hf``)
    instead, with a note, and two such runs need ``model_name``. Several models' files merge
    into one bundle; an item read twice must have the same options and gold, else the problem
    names both files; two runs read under one name that answer the same task are one problem,
    not one per sample.

    When a task's choices are letters (MMLU-style ``doc_to_choice: ["A", "B", "C", "D"]``), the
    option texts are taken from the document's list of as many strings (``choices``,
    ``options``, ...), said in the report; without one the options stay letters, also said.

    Checks that catch a misread or mis-attributed log: each sample's ``acc`` (when logged)
    against the argmax as read, and each samples file's mean ``acc`` against the ``acc`` the
    run's results file reports for its task (a samples file beside another run's results file
    would be given that run's model).

    Example: log-likelihoods ``["-1.0", "-2.0", "-3.0"]`` give ``probs`` ≈ [0.665, 0.245, 0.090]
    and ``choice`` 0.
    """
    builder = Builder()
    names = [model_name] if isinstance(model_name, str) else list(model_name or [])
    if len(names) > 1 and len(names) != len(paths):
        builder.problem(
            "--model-name",
            f"given {len(names)} times for {len(paths)} paths: give one name for all, or one "
            "per path in the order of the paths",
        )
        builder.fail()
    files = _lm_eval_sample_files(paths, builder)
    if not files and not builder.problems:
        builder.problem("paths", "no lm-eval samples files given")
    runs = {path: _lm_eval_run(path, builder) for path, _ in files}
    named = {run.model for run in runs.values() if run.model}
    if len(names) == 1 and len(named) > 1:
        builder.problem(
            "--model-name",
            f"given, but the files come from {len(named)} models ({', '.join(sorted(named))}); "
            "give one --model-name per path, or import one model at a time",
        )
    unnamed = {run.results_path for run in runs.values() if run.model is None and run.random_id}
    read_by: dict[tuple[str, str], Path] = {}
    for path, argument in files:
        run = runs[path]
        name = _lm_eval_file_model(run, names, argument, len(unnamed), path, builder)
        if name is None:
            continue
        task = _lm_eval_task_name(path.name)
        output_type = run.task_config.get("output_type")
        if output_type is not None and output_type != "multiple_choice":
            builder.skip(
                f"skipped files of a task that is not multiple_choice ({task}: {output_type})"
            )
            continue
        earlier = read_by.get((name, task))
        if earlier is not None and earlier.parent != path.parent:
            builder.problem(
                str(path),
                f"model {name!r} already answered task {task!r} in {earlier}: two runs are read "
                "under one name (give each run its own --model-name, in the order of the paths)",
            )
            continue
        read_by[name, task] = path
        builder.add_model(name)
        builder.count("samples files")
        delimiter = run.task_config.get("target_delimiter")
        first_filter: object = None
        accs: list[float] = []
        letters = _LetterOptions(task)
        for number, record in json_lines(path, builder):
            # A task with several filters logs each document once per filter: read the first.
            first_filter = first_filter or record.get("filter")
            if record.get("filter", first_filter) != first_filter:
                builder.skip("skipped samples of a task's second and later filters")
                continue
            builder.count("samples")
            acc = _lm_eval_sample(
                record,
                f"{path} line {number}",
                task=task,
                model=name,
                delimiter=delimiter if isinstance(delimiter, str) else None,
                length_normalize=length_normalize,
                letters=letters,
                builder=builder,
            )
            if acc is not None:
                accs.append(acc)
        letters.report(builder)
        _lm_eval_check_run_acc(path, run, accs, builder)
    return builder.finish(normalize="softmax")


def _lm_eval_file_model(
    run: _LmEvalRun,
    names: list[str],
    argument: int,
    unnamed_runs: int,
    path: Path,
    builder: Builder,
) -> str | None:
    """The name of the model that wrote a samples file (see `import_lm_eval`), or None."""
    if names:
        return names[argument] if len(names) > 1 else names[0]
    if run.model is not None:
        return run.model
    if run.random_id is not None and run.model_type:
        if unnamed_runs > 1:
            builder.problem(
                str(run.results_path),
                f"lm-eval named this run {run.random_id!r}, a random id, because it was run "
                f"without --model_args, and {unnamed_runs} runs here are unnamed: pass "
                "--model-name once per path, in the order of the paths",
            )
            return None
        builder.say(
            f"{run.results_path}: the run had no --model_args, so lm-eval named it "
            f"{run.random_id!r} (a random id); named {run.model_type!r} after its --model "
            "(pass --model-name to name it)"
        )
        return run.model_type
    builder.problem(
        str(path),
        "cannot tell which model wrote this file: no results_<date>.json beside it "
        "names one (pass --model-name)",
    )
    return None


def _lm_eval_check_run_acc(
    path: Path, run: _LmEvalRun, accs: list[float], builder: Builder
) -> None:
    """The samples' mean acc must be the acc the run's results file reports for the task."""
    if run.logged_acc is None or not accs:
        return
    mean = math.fsum(accs) / len(accs)
    if abs(mean - run.logged_acc) > 1e-9:
        builder.problem(
            str(path),
            f"its samples' mean acc is {mean:.6g}, but {run.results_path} reports acc "
            f"{run.logged_acc:.6g} for this task: this samples file is not that run's (it "
            "would be given the wrong model)",
        )


_LETTERS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LM_EVAL_CHOICE_FIELDS: Final = ("choices", "options", "endings", "answers")


@dataclass
class _LetterOptions:
    """What a task whose choices are letters made of the option texts (said in the report)."""

    task: str
    from_field: Counter[str] = field(default_factory=Counter)
    letters_only: int = 0

    def texts(self, options: list[str], doc: Any) -> list[str]:
        """The option texts for letter options A, B, ... from the document, when it has them."""
        if options != list(_LETTERS[: len(options)]) or not isinstance(doc, dict):
            return options
        keys = [k for k in _LM_EVAL_CHOICE_FIELDS if k in doc] + sorted(
            k for k in doc if k not in _LM_EVAL_CHOICE_FIELDS
        )
        for key in keys:
            value = doc[key]
            if (
                isinstance(value, list)
                and len(value) == len(options)
                and all(isinstance(text, str) and text.strip() for text in value)
            ):
                self.from_field[key] += 1
                return [str(text) for text in value]
        self.letters_only += 1
        return options

    def report(self, builder: Builder) -> None:
        for key, count in self.from_field.items():
            builder.say(
                f"task {self.task!r}: its choices are letters; the option texts of {count} "
                f"samples were taken from the document's {key!r} list"
            )
        if self.letters_only:
            builder.say(
                f"task {self.task!r}: its choices are letters and {self.letters_only} samples' "
                "documents hold no list of the option texts: their options are the letters"
            )


def _lm_eval_sample_files(paths: Sequence[Path], builder: Builder) -> list[tuple[Path, int]]:
    """(samples file, index of the path argument it came from), each file once."""
    found: list[tuple[Path, int]] = []
    for argument, path in enumerate(paths):
        if path.is_dir():
            matches = sorted(path.rglob("samples_*.jsonl"))
            if not matches:
                builder.problem(
                    str(path),
                    "no samples_<task>_<date>.jsonl files here (run lm_eval with --log_samples)",
                )
            found.extend((match, argument) for match in matches)
        elif not path.exists():
            builder.problem(str(path), "no such file or directory")
        elif path.name.startswith("samples_") and path.name.endswith(".jsonl"):
            found.append((path, argument))
        elif path.name.startswith("results_") and path.name.endswith(".json"):
            date = _lm_eval_file_date(path.name)
            matches = sorted(
                p for p in path.parent.glob("samples_*.jsonl") if _lm_eval_file_date(p.name) == date
            )
            if not matches:
                builder.problem(
                    str(path),
                    f"no samples_<task>_{date}.jsonl beside this results file "
                    "(run lm_eval with --log_samples)",
                )
            found.extend((match, argument) for match in matches)
        else:
            builder.problem(
                str(path),
                "not an lm-eval file: expected samples_<task>_<date>.jsonl or results_<date>.json",
            )
    unique: dict[Path, tuple[Path, int]] = {}
    for path, argument in found:
        unique.setdefault(path.resolve(), (path, argument))
    return list(unique.values())


def _lm_eval_stem(name: str) -> str:
    for suffix in (".jsonl", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _lm_eval_file_date(name: str) -> str | None:
    """The <date_id> of samples_<task>_<date_id>.jsonl or results_<date_id>.json, if any."""
    stem = _lm_eval_stem(name)
    date = stem[stem.rfind("_") + 1 :]
    return date if _LM_EVAL_DATE.match(date) else None


def _lm_eval_task_name(name: str) -> str:
    stem = _lm_eval_stem(name)[len("samples_") :]
    if _lm_eval_file_date(name) is not None:
        return stem[: stem.rfind("_")]
    return stem


def _lm_eval_run(path: Path, builder: Builder) -> _LmEvalRun:
    date = _lm_eval_file_date(path.name)
    results_path = path.parent / f"results_{date}.json" if date else None
    if results_path is None or not results_path.is_file():
        candidates = sorted(path.parent.glob("results_*.json"))
        # Without a date to match, a lone results file in the folder is the run's own.
        results_path = candidates[0] if date is None and len(candidates) == 1 else None
    if results_path is None:
        return _LmEvalRun(None, None, None, None, {}, None)
    results = read_json_file(results_path, builder)
    if not isinstance(results, dict):
        return _LmEvalRun(results_path, None, None, None, {}, None)
    task = _lm_eval_task_name(path.name)
    configs = results.get("configs")
    task_config = configs.get(task) if isinstance(configs, dict) else None
    config = results.get("config")
    config = config if isinstance(config, dict) else {}
    model = _lm_eval_model_name(config.get("model_args"))
    logged_name = results.get("model_name")
    if model is None and isinstance(logged_name, str) and "model_args" not in config:
        model = logged_name or None  # an older log without config: trust its name
        logged_name = None
    model_type = config.get("model")
    task_results = results.get("results")
    task_results = task_results.get(task) if isinstance(task_results, dict) else None
    acc = task_results.get("acc,none") if isinstance(task_results, dict) else None
    return _LmEvalRun(
        results_path=results_path,
        model=model,
        model_type=model_type if isinstance(model_type, str) and model_type else None,
        random_id=logged_name if model is None and isinstance(logged_name, str) else None,
        task_config=task_config if isinstance(task_config, dict) else {},
        logged_acc=_number(acc),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _lm_eval_model_name(model_args: Any) -> str | None:
    """The model's name in ``model_args`` as lm-eval's `GeneralConfigTracker` reads it."""
    if isinstance(model_args, dict):
        for key in _LM_EVAL_MODEL_ARG_KEYS:
            value = model_args.get(key)
            if isinstance(value, str) and value:
                return value
    elif isinstance(model_args, str):
        for key in _LM_EVAL_MODEL_ARG_KEYS:
            if f"{key}=" in model_args:
                value = model_args.split(f"{key}=")[1].split(",")[0]
                if value:
                    return value
    return None


def _lm_eval_requests(arguments: Any) -> list[tuple[str, str]] | str:
    """[(context, continuation)] from the logged arguments, or why they cannot be read."""
    if isinstance(arguments, dict):  # {"gen_args_0": {"arg_0": ctx, "arg_1": cont}, ...}
        try:
            ordered = sorted(arguments.items(), key=lambda kv: int(kv[0].rsplit("_", 1)[1]))
        except (IndexError, ValueError):
            return "keys must be gen_args_<n>"
        requests: list[Any] = []
        for _key, request in ordered:
            if not isinstance(request, dict):
                return "each gen_args_<n> must be an object"
            requests.append([request.get("arg_0"), request.get("arg_1")])
    elif isinstance(arguments, list):  # older logs: [[ctx, cont], ...]
        requests = arguments
    else:
        return "must be an object of gen_args_<n> (or a list of [context, continuation])"
    pairs = []
    for request in requests:
        if (
            not isinstance(request, list | tuple)
            or len(request) < 2
            or not isinstance(request[0], str)
            or not isinstance(request[1], str)
        ):
            return "each request must hold a context and a continuation string"
        pairs.append((request[0], request[1]))
    return pairs


def _lm_eval_loglikelihood(response: Any) -> float | str:
    """The log-likelihood of one [loglikelihood, is_greedy] response (strings or numbers)."""
    if isinstance(response, list | tuple) and len(response) >= 1:
        value = response[0]
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isnan(number) and number != math.inf:
                return number
        return f"not a log-likelihood: {value!r}"
    return f"must be a [loglikelihood, is_greedy] pair; got {response!r}"


def _lm_eval_gold(target: Any, options: list[str], continuations: list[str]) -> int | str:
    """The gold index from the logged target: an index (int or digit string) or option text."""
    if isinstance(target, bool):
        return f"not an option index or option text: {target!r}"
    if isinstance(target, int):
        index = target
    elif isinstance(target, str):
        # lm-eval itself reads a digit string as an index (ConfigurableTask.doc_to_target).
        if target.strip().isdigit():
            index = int(target.strip())
        elif target in options:
            return options.index(target)
        elif target in continuations:
            return continuations.index(target)
        else:
            return f"{target!r} is neither an option index nor one of the options {options!r}"
    else:
        return (
            f"must be one option index or option text; got {target!r} "
            "(tasks with several correct options are not supported)"
        )
    if not 0 <= index < len(options):
        return f"option index {index} is out of range for {len(options)} options"
    return index


def _lm_eval_sample(
    record: dict[str, Any],
    where: str,
    *,
    task: str,
    model: str,
    delimiter: str | None,
    length_normalize: bool,
    letters: _LetterOptions,
    builder: Builder,
) -> float | None:
    """Read one sample into the builder; its logged acc if it has one (None otherwise)."""
    doc_id = record.get("doc_id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, int | str):
        builder.problem(f"{where}.doc_id", f"must be a document id; got {doc_id!r}")
        return None
    requests = _lm_eval_requests(record.get("arguments"))
    if isinstance(requests, str):
        builder.problem(f"{where}.arguments", requests)
        return None
    responses = record.get("filtered_resps")
    field_name = "filtered_resps"
    if responses is None and isinstance(record.get("resps"), list):
        # No filter output logged: the first repeat of each request is what lm-eval scores.
        responses = [r[0] if isinstance(r, list) and r else r for r in record["resps"]]
        field_name = "resps"
    if not isinstance(responses, list) or len(responses) != len(requests):
        builder.problem(
            f"{where}.{field_name}",
            f"must hold one [loglikelihood, is_greedy] per request ({len(requests)}); "
            f"got {responses!r}",
        )
        return None
    lls: list[float] = []
    for i, response in enumerate(responses):
        value = _lm_eval_loglikelihood(response)
        if isinstance(value, str):
            builder.problem(f"{where}.{field_name}[{i}]", value)
            return None
        lls.append(value)

    k = len(requests) // 2
    if (
        len(requests) % 2 == 0
        and k >= 2
        and all(context == "" for context, _ in requests[k:])
        and [cont for _, cont in requests[k:]] == [cont for _, cont in requests[:k]]
    ):
        # acc_mutual_info appends ("", continuation) requests: keep the conditional ones.
        requests, lls = requests[:k], lls[:k]
    continuations = [cont for _, cont in requests]
    if len(continuations) < 2:
        builder.problem(
            f"{where}.arguments",
            f"a multiple-choice sample needs at least 2 requests; got {len(continuations)}",
        )
        return None
    if len(set(continuations)) == 1:
        builder.problem(
            f"{where}.arguments",
            "every request has the same continuation: the options are in the contexts "
            "(a multiple-input task such as winogrande), which this importer does not read",
        )
        return None
    if delimiter is None:  # no results file: lm-eval's default delimiter is one space
        delimiter = " " if all(cont.startswith(" ") for cont in continuations) else ""
    options = [
        cont[len(delimiter) :] if cont.startswith(delimiter) else cont for cont in continuations
    ]

    gold = _lm_eval_gold(record.get("target"), options, continuations)
    if isinstance(gold, str):
        builder.problem(f"{where}.target", gold)
        return None
    scores = lls
    if length_normalize:
        if any(len(option) == 0 for option in options):
            builder.problem(f"{where}.arguments", "an empty option cannot be length-normalized")
            return None
        scores = [ll / len(option) for ll, option in zip(lls, options, strict=True)]
    if all(score == -math.inf for score in scores):
        builder.problem(f"{where}.{field_name}", "every log-likelihood is -inf")
        return None
    choice = argmax(scores)
    acc = record.get("acc")
    predicted = argmax(lls)
    if (
        isinstance(acc, int | float)
        and not isinstance(acc, bool)
        and (acc == 1) != (predicted == gold)
    ):
        builder.problem(
            f"{where}.acc",
            f"lm-eval logged acc={acc}, but the log-likelihoods and target as read give "
            f"prediction {predicted} and gold {gold}: this log is not in a form the importer "
            "understands",
        )
        return None

    item_id = f"{task}/{doc_id}"
    builder.add_item(
        Item(
            id=item_id,
            question=_lm_eval_question(record.get("doc"), requests[0][0]),
            options=letters.texts(options, record.get("doc")),
            gold=gold,
            category=task,
        ),
        where,
    )
    # Log-likelihoods (or per-character scores) here; finish() applies the softmax.
    builder.add_output(Output(model=model, item=item_id, probs=scores, choice=choice), where)
    return _number(acc)


def _lm_eval_question(doc: Any, context: str) -> str:
    if isinstance(doc, dict):
        for key in _LM_EVAL_QUESTION_FIELDS:
            value = doc.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return context
