"""Importers: other tools' evaluation logs turned into a validated evaluation bundle.

Three sources are read, from local files only (no network):

* EleutherAI lm-evaluation-harness ``--log_samples`` output (`import_lm_eval`);
* UK AISI Inspect logs, ``.json`` and the zipped ``.eval`` format (`import_inspect`);
* simple tables, CSV or JSONL, with the columns of `TABLE_COLUMNS` (`import_table`).

Every importer collects every problem it finds, located by file, line or sample and field, and
returns a bundle only once `validate_bundle` accepts it; otherwise it raises `BundleError`. A
problem found by `validate_bundle` is prefixed with the source of the record it concerns. What
is left out on purpose (a generative lm-eval task, a sample whose answer cannot be read, a judge
reply that cannot be parsed) is counted in `ImportResult.notes`, never dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from auditor.schemas.bundle import (
    Bundle,
    BundleError,
    Item,
    ModelInfo,
    Normalization,
    Output,
    Problem,
    Verdict,
    validate_bundle,
)

__all__ = [
    "INSPECT_MODEL_GRADED_SCORERS",
    "TABLE_COLUMNS",
    "ImportResult",
    "import_inspect",
    "import_lm_eval",
    "import_table",
]

TableFormat = Literal["csv", "jsonl"]


@dataclass(frozen=True)
class ImportResult:
    """A validated bundle and what the import left out on purpose (counted, with reasons)."""

    bundle: Bundle
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: the counts of items, models, outputs and verdicts, then the notes."""
        bundle = self.bundle
        text = (
            f"{len(bundle.items)} items, {len(bundle.models)} models, "
            f"{len(bundle.outputs)} outputs, {len(bundle.verdicts)} verdicts"
        )
        return f"{text} ({'; '.join(self.notes)})" if self.notes else text


# --- shared machinery ----------------------------------------------------------------------------

_SECTION_INDEX = re.compile(r"^(items|models|outputs|verdicts)\[(\d+)\]")


@dataclass
class _Builder:
    """Accumulates records with the source (file and line or sample) each one came from."""

    problems: list[Problem] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)
    item_sources: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)
    outputs: dict[tuple[str, str], Output] = field(default_factory=dict)
    output_sources: dict[tuple[str, str], str] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    verdict_sources: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def add_item(self, item: Item, source: str) -> None:
        """Add an item; the same id read again must have the same options and gold."""
        first = self.items.get(item.id)
        if first is None:
            self.items[item.id] = item
            self.item_sources[item.id] = source
            return
        differences = []
        if first.options != item.options:
            differences.append(f"options {item.options!r} here, {first.options!r} there")
        if first.gold != item.gold:
            differences.append(f"gold {item.gold} here, {first.gold} there")
        if differences:
            self.problem(
                source,
                f"item {item.id!r} differs from the one read at {self.item_sources[item.id]}: "
                + "; ".join(differences),
            )

    def add_model(self, name: str, provider: str | None = None) -> None:
        if name not in self.models:
            self.models[name] = ModelInfo(name=name, provider=provider)

    def add_output(self, output: Output, source: str) -> None:
        key = (output.model, output.item)
        if key in self.outputs:
            self.problem(
                source,
                f"a second answer of model {output.model!r} to item {output.item!r} "
                f"(the first is at {self.output_sources[key]})",
            )
            return
        self.outputs[key] = output
        self.output_sources[key] = source

    def add_verdict(self, verdict: Verdict, source: str) -> None:
        self.verdicts.append(verdict)
        self.verdict_sources.append(source)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count

    def finish(self, normalize: Normalization = "none") -> ImportResult:
        """Validate what was read; raise `BundleError` naming the source of every problem."""
        if self.problems:
            raise BundleError(self.problems)
        bundle = Bundle(
            items=list(self.items.values()),
            models=list(self.models.values()),
            outputs=list(self.outputs.values()),
            verdicts=self.verdicts,
        )
        sources = {
            "items": list(self.item_sources.values()),
            "models": [],
            "outputs": list(self.output_sources.values()),
            "verdicts": self.verdict_sources,
        }
        try:
            validated = validate_bundle(bundle, normalize=normalize)
        except BundleError as error:
            raise BundleError([_located(p, sources) for p in error.problems]) from None
        notes = tuple(f"{reason}: {count}" for reason, count in self.skipped.items())
        return ImportResult(validated, notes)


def _located(problem: Problem, sources: dict[str, list[str]]) -> Problem:
    """Prefix a `validate_bundle` problem with the file and line its record came from."""
    match = _SECTION_INDEX.match(problem.path)
    if match is None:
        return problem
    records = sources[match.group(1)]
    index = int(match.group(2))
    if index >= len(records):
        return problem
    return Problem(f"{records[index]}: {problem.path}", problem.message)


def _json_lines(path: Path, builder: _Builder) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank line that is a JSON object; problems otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        builder.problem(str(path), _os_message(error))
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            builder.problem(f"{path} line {number}", f"not valid JSON: {error.msg}")
            continue
        if not isinstance(record, dict):
            builder.problem(f"{path} line {number}", "a line must hold a JSON object")
            continue
        yield number, record


def _os_message(error: OSError | UnicodeDecodeError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text: {error.reason}"
    return error.strerror or str(error)


def _read_json_file(path: Path, builder: _Builder) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        builder.problem(str(path), _os_message(error))
    except json.JSONDecodeError as error:
        builder.problem(str(path), f"not valid JSON at line {error.lineno}: {error.msg}")
    return None


def _letter_index(letter: str) -> int:
    """'A' -> 0, 'B' -> 1, ... (inspect_ai's `answer_index`)."""
    return ord(letter.upper()) - ord("A")


def _argmax(values: Sequence[float]) -> int:
    """Index of the largest value, ties to the lowest index (as `numpy.argmax`)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


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

    model: str | None
    task_config: dict[str, Any]


def import_lm_eval(
    paths: Sequence[Path],
    *,
    model_name: str | None = None,
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

    The model is named by ``model_name``, else by the ``model_name`` of the run's results file,
    else by the ``pretrained=``/``model=``/... entry of its ``config.model_args``. Several
    models' files merge into one bundle; an item read twice must have the same options and
    gold, else the problem names both files. Each sample's ``acc`` (when logged) is checked
    against the argmax as read, so a log this importer misreads fails loudly.

    Example: log-likelihoods ``["-1.0", "-2.0", "-3.0"]`` give ``probs`` ≈ [0.665, 0.245, 0.090]
    and ``choice`` 0.
    """
    builder = _Builder()
    files = _lm_eval_sample_files(paths, builder)
    if not files and not builder.problems:
        builder.problem("paths", "no lm-eval samples files given")
    runs = {path: _lm_eval_run(path, builder) for path in files}
    named = {run.model for run in runs.values() if run.model}
    if model_name is not None and len(named) > 1:
        builder.problem(
            "--model-name",
            f"given, but the files come from {len(named)} models ({', '.join(sorted(named))}); "
            "import them without --model-name, or one model at a time",
        )
    for path in files:
        run = runs[path]
        name = model_name or run.model
        if name is None:
            builder.problem(
                str(path),
                "cannot tell which model wrote this file: no results_<date>.json beside it "
                "names one (pass --model-name)",
            )
            continue
        task = _lm_eval_task_name(path.name)
        output_type = run.task_config.get("output_type")
        if output_type is not None and output_type != "multiple_choice":
            builder.skip(
                f"skipped files of a task that is not multiple_choice ({task}: {output_type})"
            )
            continue
        builder.add_model(name)
        delimiter = run.task_config.get("target_delimiter")
        first_filter: object = None
        for number, record in _json_lines(path, builder):
            # A task with several filters logs each document once per filter: read the first.
            first_filter = first_filter or record.get("filter")
            if record.get("filter", first_filter) != first_filter:
                builder.skip("skipped samples of a task's second and later filters")
                continue
            _lm_eval_sample(
                record,
                f"{path} line {number}",
                task=task,
                model=name,
                delimiter=delimiter if isinstance(delimiter, str) else None,
                length_normalize=length_normalize,
                builder=builder,
            )
    return builder.finish(normalize="softmax")


def _lm_eval_sample_files(paths: Sequence[Path], builder: _Builder) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            matches = sorted(path.rglob("samples_*.jsonl"))
            if not matches:
                builder.problem(
                    str(path),
                    "no samples_<task>_<date>.jsonl files here (run lm_eval with --log_samples)",
                )
            found.extend(matches)
        elif not path.exists():
            builder.problem(str(path), "no such file or directory")
        elif path.name.startswith("samples_") and path.name.endswith(".jsonl"):
            found.append(path)
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
            found.extend(matches)
        else:
            builder.problem(
                str(path),
                "not an lm-eval file: expected samples_<task>_<date>.jsonl or results_<date>.json",
            )
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
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


def _lm_eval_run(path: Path, builder: _Builder) -> _LmEvalRun:
    date = _lm_eval_file_date(path.name)
    results_path = path.parent / f"results_{date}.json" if date else None
    if results_path is None or not results_path.is_file():
        candidates = sorted(path.parent.glob("results_*.json"))
        # Without a date to match, a lone results file in the folder is the run's own.
        results_path = candidates[0] if date is None and len(candidates) == 1 else None
    if results_path is None:
        return _LmEvalRun(None, {})
    results = _read_json_file(results_path, builder)
    if not isinstance(results, dict):
        return _LmEvalRun(None, {})
    task = _lm_eval_task_name(path.name)
    configs = results.get("configs")
    task_config = configs.get(task) if isinstance(configs, dict) else None
    return _LmEvalRun(
        _lm_eval_model_name(results), task_config if isinstance(task_config, dict) else {}
    )


def _lm_eval_model_name(results: dict[str, Any]) -> str | None:
    name = results.get("model_name")
    if isinstance(name, str) and name:
        return name
    config = results.get("config")
    model_args = config.get("model_args") if isinstance(config, dict) else None
    if isinstance(model_args, dict):
        for key in _LM_EVAL_MODEL_ARG_KEYS:
            value = model_args.get(key)
            if isinstance(value, str) and value:
                return value
    elif isinstance(model_args, str):
        for key in _LM_EVAL_MODEL_ARG_KEYS:
            # The same reading as GeneralConfigTracker._get_model_name.
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
    builder: _Builder,
) -> None:
    doc_id = record.get("doc_id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, int | str):
        builder.problem(f"{where}.doc_id", f"must be a document id; got {doc_id!r}")
        return
    requests = _lm_eval_requests(record.get("arguments"))
    if isinstance(requests, str):
        builder.problem(f"{where}.arguments", requests)
        return
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
        return
    lls: list[float] = []
    for i, response in enumerate(responses):
        value = _lm_eval_loglikelihood(response)
        if isinstance(value, str):
            builder.problem(f"{where}.{field_name}[{i}]", value)
            return
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
        return
    if len(set(continuations)) == 1:
        builder.problem(
            f"{where}.arguments",
            "every request has the same continuation: the options are in the contexts "
            "(a multiple-input task such as winogrande), which this importer does not read",
        )
        return
    if delimiter is None:  # no results file: lm-eval's default delimiter is one space
        delimiter = " " if all(cont.startswith(" ") for cont in continuations) else ""
    options = [
        cont[len(delimiter) :] if cont.startswith(delimiter) else cont for cont in continuations
    ]

    gold = _lm_eval_gold(record.get("target"), options, continuations)
    if isinstance(gold, str):
        builder.problem(f"{where}.target", gold)
        return
    scores = lls
    if length_normalize:
        if any(len(option) == 0 for option in options):
            builder.problem(f"{where}.arguments", "an empty option cannot be length-normalized")
            return
        scores = [ll / len(option) for ll, option in zip(lls, options, strict=True)]
    if all(score == -math.inf for score in scores):
        builder.problem(f"{where}.{field_name}", "every log-likelihood is -inf")
        return
    choice = _argmax(scores)
    acc = record.get("acc")
    predicted = _argmax(lls)
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
        return

    item_id = f"{task}/{doc_id}"
    builder.add_item(
        Item(
            id=item_id,
            question=_lm_eval_question(record.get("doc"), requests[0][0]),
            options=options,
            gold=gold,
            category=task,
        ),
        where,
    )
    # Log-likelihoods (or per-character scores) here; finish() applies the softmax.
    builder.add_output(Output(model=model, item=item_id, probs=scores, choice=choice), where)


def _lm_eval_question(doc: Any, context: str) -> str:
    if isinstance(doc, dict):
        for key in _LM_EVAL_QUESTION_FIELDS:
            value = doc.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return context


# --- UK AISI Inspect -----------------------------------------------------------------------------
#
# Read from UKGovernmentBEIS/inspect_ai:
# * src/inspect_ai/log/_log.py: EvalLog {version, status, eval: EvalSpec {task, model,
#   model_roles, scorers: [{name, options}], ...}, plan: {steps: [{solver, params}]}, results,
#   stats, samples}; EvalSample {id, epoch, input, choices, target, output, scores, error,
#   attachments, ...}.
# * src/inspect_ai/log/_recorders/eval.py: the .eval zip holds header.json (the EvalLog without
#   samples; _journal/start.json while a run is unfinished) and samples/<id>_epoch_<n>.json.
# * src/inspect_ai/log/_condense.py: long strings are stored as "attachment://<hash>", with the
#   text in the sample's `attachments`.
# * src/inspect_ai/model/_model_output.py: output.choices[0] = {message, stop_reason,
#   logprobs: {content: [{token, logprob, top_logprobs: [{token, logprob}]}]}}.
# * src/inspect_ai/model/_chat_message.py: message content is a string or a list of parts, whose
#   "text" parts joined by newlines are the message text.
# * src/inspect_ai/solver/_multiple_choice.py: the prompt lists choices as "A) ...", the answer
#   is parsed from "ANSWER: <letters>" (`parse_answers`); with shuffle=True the choices are
#   shuffled before generation and the history is rewritten to the original letters.
# * src/inspect_ai/scorer/_choice.py: the `choice` scorer's answer is the chosen letters joined
#   by ", " in the original order; its explanation starts "Choices were shuffled" if shuffled.
# * src/inspect_ai/scorer/_model.py: model_graded_qa / model_graded_fact give "C", "I" (or "P"
#   with partial credit), graded by the `model` option, else the "grader" model role, else the
#   model being evaluated; a reply without a grade is scored "I" with an explanation starting
#   "Grade not found in model output", which this importer reads as unparseable.

INSPECT_MODEL_GRADED_SCORERS: Final = ("model_graded_qa", "model_graded_fact")
_INSPECT_ATTACHMENT: Final = "attachment://"
_INSPECT_NO_GRADE: Final = "Grade not found in model output"
_INSPECT_SHUFFLED: Final = "Choices were shuffled"
# inspect_ai.solver._multiple_choice.parse_answers: strict pattern first, then the lenient one.
_INSPECT_ANSWER_STRICT = re.compile(r"(?i)^ANSWER\s*:\s*([A-Za-z ,]+)\s*(?:$|\n)", re.MULTILINE)
_INSPECT_ANSWER_LENIENT = re.compile(r"(?i)ANSWER\s*:\s*([A-Za-z ,]+)(?:[^\w]|\n|$)")
_INSPECT_SCORED_LETTERS = re.compile(r"^\s*[A-Z](\s*,\s*[A-Z])*\s*$")


@dataclass
class _InspectSample:
    """One sample of a log with where it was read from."""

    source: str
    data: dict[str, Any]


@dataclass
class _InspectLog:
    path: Path
    header: dict[str, Any]
    samples: list[_InspectSample]


@dataclass
class _PendingVerdict:
    """A verdict read from a free-form sample, linked to its item once every log is read."""

    source: str
    judge: str
    candidate: str
    item: str
    verdict: Literal[0, 1] | None
    raw: str | None
    response: str | None


def import_inspect(paths: Sequence[Path], *, scorer: str | None = None) -> ImportResult:
    """Import Inspect logs (``.eval`` or ``.json`` files, or directories holding them).

    Multiple-choice samples (with ``choices``, as the ``multiple_choice`` solver requires)
    become items: id = the sample id, question = the sample input, options = ``choices``, gold
    = the target letter (A = 0). The log's ``eval.model`` answered them; its ``choice`` is the
    ``choice`` scorer's answer letter, else the letter parsed from the output as the solver
    does. When the output carries ``logprobs`` with ``top_logprobs``, ``probs`` is the
    probability mass the model put on each option letter at the answer token, letters with or
    without leading space summed, renormalized over the options; letters outside the top
    log-probabilities get 0. Without them, or when the solver shuffled the choices (the
    log-probabilities then refer to shuffled letters), the output is discrete (``choice`` only).

    Free-form samples (no ``choices``) scored by a model-graded scorer give verdicts: judge =
    the grader model (the scorer's ``model`` option, the grading message's model, the
    ``grader`` model role, or for ``model_graded_qa``/``model_graded_fact`` without one the
    evaluated model, as Inspect does), candidate = the evaluated model, item = the sample id,
    which must be the id of a multiple-choice item in the imported logs. ``C`` -> 1, ``I`` -> 0,
    anything else (``P``, a number, a reply with no grade) -> null, counted. ``scorer`` limits
    verdicts to one scorer by name.

    Only each sample's first epoch is read; later epochs, errored samples and samples whose
    answer cannot be read (none, or several letters) are skipped and counted.
    """
    builder = _Builder()
    logs = [log for path in _inspect_files(paths, builder) if (log := _inspect_read(path, builder))]
    if not logs and not builder.problems:
        builder.problem("paths", "no Inspect logs given")
    pending: list[_PendingVerdict] = []
    for log in logs:
        _inspect_log(log, builder, pending, scorer)
    for verdict in pending:
        if verdict.item not in builder.items:
            builder.problem(
                verdict.source,
                f"verdict on sample {verdict.item!r}: no multiple-choice item with this id "
                "in the imported logs (import the multiple-choice logs of the same samples too)",
            )
            continue
        builder.add_model(verdict.candidate, _inspect_provider(verdict.candidate))
        builder.add_model(verdict.judge, _inspect_provider(verdict.judge))
        builder.add_verdict(
            Verdict(
                judge=verdict.judge,
                candidate=verdict.candidate,
                item=verdict.item,
                verdict=verdict.verdict,
                raw=verdict.raw,
            ),
            verdict.source,
        )
        key = (verdict.candidate, verdict.item)
        output = builder.outputs.get(key)
        if output is not None and output.response is None and verdict.response:
            builder.outputs[key] = output.model_copy(update={"response": verdict.response})
    return builder.finish()


def _inspect_files(paths: Sequence[Path], builder: _Builder) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            matches = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and (p.suffix == ".eval" or _inspect_json_log(p))
            )
            if not matches:
                builder.problem(str(path), "no Inspect logs (.eval or .json) here")
            found.extend(matches)
        elif not path.exists():
            builder.problem(str(path), "no such file or directory")
        elif path.suffix in (".eval", ".json"):
            found.append(path)
        else:
            builder.problem(str(path), "not an Inspect log: expected a .eval or .json file")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _inspect_json_log(path: Path) -> bool:
    """Whether a .json file in a log directory is an eval log (not e.g. the logs.json index)."""
    if path.suffix != ".json":
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return b'"eval"' in head and b'"version"' in head


def _inspect_read(path: Path, builder: _Builder) -> _InspectLog | None:
    if path.suffix == ".eval":
        return _inspect_read_eval(path, builder)
    document = _read_json_file(path, builder)
    if document is None:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("eval"), dict):
        builder.problem(str(path), "not an Inspect log: no `eval` object")
        return None
    samples = document.get("samples") or []
    if not isinstance(samples, list):
        builder.problem(f"{path}.samples", "must be a list")
        return None
    return _InspectLog(
        path,
        document,
        [_InspectSample(f"{path} samples[{i}]", s) for i, s in enumerate(samples)],
    )


def _inspect_read_eval(path: Path, builder: _Builder) -> _InspectLog | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            header_name = next(
                (n for n in ("header.json", "_journal/start.json") if n in names), None
            )
            if header_name is None:
                builder.problem(str(path), "not an Inspect .eval log: no header.json")
                return None
            header = _zip_json(archive, header_name, path, builder)
            if isinstance(header, dict) and header_name != "header.json":
                header = {"status": "started", **header}  # the run never finished
            samples = []
            for name in sorted(
                n for n in names if n.startswith("samples/") and n.endswith(".json")
            ):
                sample = _zip_json(archive, name, path, builder)
                if sample is not None:
                    samples.append(_InspectSample(f"{path}:{name}", sample))
    except (OSError, zipfile.BadZipFile) as error:
        builder.problem(str(path), f"not a readable .eval (zip) file: {error}")
        return None
    if not isinstance(header, dict) or not isinstance(header.get("eval"), dict):
        builder.problem(f"{path}:{header_name}", "not an Inspect log header: no `eval` object")
        return None
    return _InspectLog(path, header, samples)


def _zip_json(archive: zipfile.ZipFile, name: str, path: Path, builder: _Builder) -> Any:
    try:
        document = json.loads(archive.read(name).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        builder.problem(f"{path}:{name}", f"not valid JSON: {error}")
        return None
    if not isinstance(document, dict):
        builder.problem(f"{path}:{name}", "must hold a JSON object")
        return None
    return document


def _inspect_provider(model: str) -> str | None:
    """Inspect model names are "<provider>/<model>"."""
    return model.split("/", 1)[0] if "/" in model else None


def _inspect_shuffled(header: dict[str, Any]) -> bool:
    plan = header.get("plan")
    steps = plan.get("steps") if isinstance(plan, dict) else None
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict) or not str(step.get("solver", "")).endswith(
            "multiple_choice"
        ):
            continue
        params = step.get("params")
        shuffle = params.get("shuffle") if isinstance(params, dict) else None
        if shuffle not in (None, False, "False", "false"):
            return True
    return False


def _inspect_log(
    log: _InspectLog, builder: _Builder, pending: list[_PendingVerdict], scorer: str | None
) -> None:
    spec = log.header["eval"]
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        builder.problem(f"{log.path}.eval.model", f"must name the evaluated model; got {model!r}")
        return
    if log.header.get("status") not in (None, "success"):
        builder.skip("logs of unfinished runs (their completed samples were read)")
    shuffled = _inspect_shuffled(log.header)
    used_model = False
    for sample in log.samples:
        data = sample.data
        if data.get("epoch", 1) != 1:
            builder.skip("skipped samples of epochs after the first")
            continue
        if data.get("error"):
            builder.skip("skipped samples that ended in an error")
            continue
        if data.get("choices"):
            used_model |= _inspect_choice_sample(sample, model, shuffled, builder)
        else:
            pending.extend(_inspect_verdicts(sample, spec, model, scorer, builder))
    if used_model:
        builder.add_model(model, _inspect_provider(model))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _resolve(value: Any, attachments: dict[str, Any]) -> Any:
    """Replace an "attachment://<hash>" reference with the attached text."""
    if isinstance(value, str) and value.startswith(_INSPECT_ATTACHMENT):
        return attachments.get(value[len(_INSPECT_ATTACHMENT) :], value)
    return value


def _message_text(message: Any, attachments: dict[str, Any]) -> str:
    content = _resolve(message.get("content"), attachments) if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(_resolve(part.get("text", ""), attachments))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _inspect_input_text(data: dict[str, Any], attachments: dict[str, Any]) -> str:
    value = _resolve(data.get("input"), attachments)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(
            _message_text(message, attachments)
            for message in value
            if isinstance(message, dict) and message.get("role") == "user"
        )
    return ""


def _inspect_completion(data: dict[str, Any], attachments: dict[str, Any]) -> tuple[str, Any]:
    """(text of output.choices[0].message, output.choices[0]) or ("", None)."""
    output = data.get("output")
    choices = output.get("choices") if isinstance(output, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return "", None
    return _message_text(choices[0].get("message"), attachments), choices[0]


def _inspect_choice_sample(
    sample: _InspectSample, model: str, shuffled: bool, builder: _Builder
) -> bool:
    data = sample.data
    where = sample.source
    attachments = _dict(data.get("attachments"))
    sample_id = data.get("id")
    if isinstance(sample_id, bool) or not isinstance(sample_id, int | str):
        builder.problem(f"{where}.id", f"must be a sample id; got {sample_id!r}")
        return False
    options = data["choices"]
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        builder.problem(f"{where}.choices", f"must be a list of strings; got {options!r}")
        return False
    options = [str(_resolve(o, attachments)) for o in options]
    target = data.get("target")
    letters = target if isinstance(target, list) else [target]
    if (
        len(letters) != 1
        or not isinstance(letters[0], str)
        or len(letters[0].strip()) != 1
        or not 0 <= _letter_index(letters[0].strip()) < len(options)
    ):
        builder.problem(
            f"{where}.target",
            f"must be one option letter A..{chr(ord('A') + len(options) - 1)}; got {target!r} "
            "(samples with several correct options are not supported)",
        )
        return False
    item_id = str(sample_id)
    builder.add_item(
        Item(
            id=item_id,
            question=_inspect_input_text(data, attachments),
            options=options,
            gold=_letter_index(letters[0].strip()),
        ),
        where,
    )

    completion, first_choice = _inspect_completion(data, attachments)
    scores = _dict(data.get("scores"))
    answer, sample_shuffled = _inspect_answer(scores, completion)
    shuffled = shuffled or sample_shuffled
    chosen = sorted({c.upper() for c in answer if c.isalpha()}) if answer is not None else []
    if len(chosen) != 1 or not 0 <= _letter_index(chosen[0]) < len(options):
        builder.skip(
            "skipped multiple-choice samples answered with several letters"
            if len(chosen) > 1
            else "skipped multiple-choice samples with no answer letter"
        )
        return False
    choice = _letter_index(chosen[0])
    probs = None
    if first_choice is not None and first_choice.get("logprobs"):
        if shuffled:
            builder.skip(
                "logprobs ignored because the choices were shuffled (outputs kept as choices)"
            )
        else:
            probs = _inspect_letter_probs(first_choice["logprobs"], chosen[0], options)
            if probs is None:
                builder.skip(
                    "logprobs with no option letter at the answer (outputs kept as choices)"
                )
    builder.add_output(Output(model=model, item=item_id, probs=probs, choice=choice), where)
    return True


def _inspect_answer(scores: dict[str, Any], completion: str) -> tuple[str | None, bool]:
    """(the answer letters, whether the scorer says the choices were shuffled)."""
    ordered = sorted(scores.items(), key=lambda kv: kv[0] != "choice")
    for _name, score in ordered:
        if not isinstance(score, dict):
            continue
        answer = score.get("answer")
        if isinstance(answer, str) and _INSPECT_SCORED_LETTERS.match(answer):
            explanation = score.get("explanation")
            shuffled = isinstance(explanation, str) and explanation.startswith(_INSPECT_SHUFFLED)
            return answer, shuffled
    match = _INSPECT_ANSWER_STRICT.search(completion) or _INSPECT_ANSWER_LENIENT.search(completion)
    return (match.group(1) if match else None), False


def _inspect_letter_probs(logprobs: Any, letter: str, options: list[str]) -> list[float] | None:
    """Probabilities of the option letters at the answer token, or None if not readable."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        return None
    tokens = [t for t in content if isinstance(t, dict) and isinstance(t.get("token"), str)]
    if len(tokens) != len(content):
        return None
    position = _inspect_answer_position(tokens, letter)
    if position is None:
        return None
    answer_token = tokens[position]
    alternatives: dict[str, float] = {}
    for top in answer_token.get("top_logprobs") or []:
        if isinstance(top, dict) and isinstance(top.get("token"), str):
            value = top.get("logprob")
            if isinstance(value, int | float) and not isinstance(value, bool):
                alternatives.setdefault(top["token"], float(value))
    if not alternatives:
        return None  # only the sampled token: nothing to compare it with
    sampled = answer_token.get("logprob")
    if isinstance(sampled, int | float) and not isinstance(sampled, bool):
        alternatives.setdefault(answer_token["token"], float(sampled))
    letters = [chr(ord("A") + i) for i in range(len(options))]
    mass = [0.0] * len(options)
    for token, value in alternatives.items():
        stripped = token.strip()
        if stripped in letters and not math.isnan(value):
            mass[letters.index(stripped)] += math.exp(value)
    total = math.fsum(mass)
    if not total > 0 or not math.isfinite(total):
        return None
    return [m / total for m in mass]


def _inspect_answer_position(tokens: list[dict[str, Any]], letter: str) -> int | None:
    """Index of the token that carries the answer letter in the output."""
    text = "".join(t["token"] for t in tokens)
    match = _INSPECT_ANSWER_STRICT.search(text) or _INSPECT_ANSWER_LENIENT.search(text)
    if match is not None:
        group = match.group(1)
        offset = match.start(1) + next((i for i, c in enumerate(group) if c.isalpha()), 0)
        start = 0
        for index, token in enumerate(tokens):
            end = start + len(token["token"])
            if start <= offset < end:
                return index if token["token"].strip() == letter else None
            start = end
    # No "ANSWER:" in the tokens (e.g. the template asked for the letter alone): the last token
    # that is exactly the answer letter.
    for index in range(len(tokens) - 1, -1, -1):
        if tokens[index]["token"].strip() == letter:
            return index
    return None


def _inspect_verdicts(
    sample: _InspectSample,
    spec: dict[str, Any],
    model: str,
    only: str | None,
    builder: _Builder,
) -> list[_PendingVerdict]:
    data = sample.data
    scores = data.get("scores")
    if not isinstance(scores, dict) or not scores:
        return []
    attachments = _dict(data.get("attachments"))
    sample_id = data.get("id")
    if isinstance(sample_id, bool) or not isinstance(sample_id, int | str):
        builder.problem(f"{sample.source}.id", f"must be a sample id; got {sample_id!r}")
        return []
    scorer_specs: dict[str, dict[str, Any]] = {}
    for entry in spec.get("scorers") or []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            scorer_specs[entry["name"].rsplit("/", 1)[-1]] = entry
    completion, _ = _inspect_completion(data, attachments)
    verdicts = []
    for name, score in scores.items():
        if only is not None and name != only:
            continue
        if not isinstance(score, dict):
            continue
        grader = _inspect_grader(name, score, scorer_specs.get(name), spec, model, builder)
        if grader is None:
            continue
        value = score.get("value")
        explanation = score.get("explanation")
        raw = str(_resolve(explanation, attachments)) if explanation is not None else None
        verdict: Literal[0, 1] | None
        if value == "C":
            verdict = 1
        elif value == "I" and not (raw or "").startswith(_INSPECT_NO_GRADE):
            verdict = 0
        else:
            verdict = None
            builder.skip("unparseable verdicts kept as null")
        verdicts.append(
            _PendingVerdict(
                source=f"{sample.source}.scores.{name}",
                judge=grader,
                candidate=model,
                item=str(sample_id),
                verdict=verdict,
                raw=raw,
                response=completion or None,
            )
        )
    return verdicts


def _inspect_grader(
    name: str,
    score: dict[str, Any],
    scorer_spec: dict[str, Any] | None,
    spec: dict[str, Any],
    model: str,
    builder: _Builder,
) -> str | None:
    """The model that graded with scorer ``name``, or None if it is not a model-graded score."""
    options = scorer_spec.get("options") if scorer_spec else None
    options = options if isinstance(options, dict) else {}
    configured = options.get("model")
    if isinstance(configured, str) and configured:
        return configured
    if isinstance(configured, list) and configured:
        builder.skip(f"skipped {name} scores by a majority of several graders (no single judge)")
        return None
    metadata = score.get("metadata")
    grading = metadata.get("grading") if isinstance(metadata, dict) else None
    if isinstance(grading, list) and grading and isinstance(grading[-1], dict):
        graded_by = grading[-1].get("model")
        if isinstance(graded_by, str) and graded_by:
            return graded_by
    builtin = name in INSPECT_MODEL_GRADED_SCORERS
    role = options.get("model_role", "grader" if builtin else None)
    roles = spec.get("model_roles")
    if isinstance(role, str) and isinstance(roles, dict) and isinstance(roles.get(role), dict):
        role_model = roles[role].get("model")
        if isinstance(role_model, str) and role_model:
            return role_model
    if builtin or isinstance(grading, list):
        return model  # Inspect's default: the model being evaluated grades
    return None


# --- simple tables (CSV, JSONL) ------------------------------------------------------------------

TABLE_COLUMNS: Final = {
    "item_id": "Item id (required on every row).",
    "question": "Question text.",
    "options": "The options as a JSON list of strings; or option_1, option_2, ... columns.",
    "option_<n>": "The n-th option (option_1 is index 0, letter A); empty cells after the last.",
    "gold": "The correct option: a 0-based index or a letter (A = option_1).",
    "category": "Optional subject or category of the item.",
    "difficulty": "Optional difficulty (a number).",
    "model": "The answering model; a row without one only defines its item.",
    "provider": "Optional provider of `model`.",
    "family": "Optional family of `model`.",
    "probs": "The model's probabilities as a JSON list; or prob_1, prob_2, ... columns.",
    "prob_<n>": "The model's probability of option_<n>.",
    "choice": "The model's chosen option: a 0-based index or a letter.",
    "response": "The model's free-form answer.",
    "judge": "A judge of `model`'s free-form answer; with `verdict`, the row adds a verdict.",
    "verdict": "1/0, true/false, C/I or correct/incorrect; empty = unparseable judge reply.",
    "judge_raw": "The judge's raw reply.",
}
"""The columns (CSV) or keys (JSONL) `import_table` reads; one row per item and model."""


def import_table(
    path: Path, *, table_format: TableFormat, normalize: Normalization = "none"
) -> ImportResult:
    """Import a simple table of items and answers, CSV (with a header row) or JSONL.

    One row per item and model (see `TABLE_COLUMNS`): item columns may repeat on each row of the
    item and must then agree; a row with ``model`` adds that model's output (``probs`` and/or
    ``choice``, optional ``response``); a row with ``judge`` adds the judge's verdict on
    ``model``'s answer. Empty cells are missing values. Problems name the line and column.
    ``normalize`` is applied to the probabilities as `validate_bundle` does.
    """
    builder = _Builder()
    rows = _csv_rows(path, builder) if table_format == "csv" else _jsonl_rows(path, builder)
    item_fields: dict[str, dict[str, Any]] = {}
    field_rows: dict[tuple[str, str], str] = {}
    first_rows: dict[str, str] = {}
    model_fields: dict[str, dict[str, Any]] = {}
    answer_rows: list[tuple[str, dict[str, Any]]] = []
    for where, row in rows:
        parsed = _table_row(row, where, builder)
        if parsed is None:
            continue
        item_id = parsed["item_id"]
        known = item_fields.setdefault(item_id, {})
        first_rows.setdefault(item_id, where)
        for name in _ITEM_FIELDS:
            if name not in parsed:
                continue
            if name in known and known[name] != parsed[name]:
                builder.problem(
                    f"{where}.{name}",
                    f"item {item_id!r} has {known[name]!r} at {field_rows[item_id, name]}; "
                    f"here {parsed[name]!r}",
                )
                continue
            known[name] = parsed[name]
            field_rows.setdefault((item_id, name), where)
        if "model" in parsed:
            _table_model_fields(parsed, where, model_fields, builder)
            answer_rows.append((where, parsed))
        elif _ANSWER_FIELDS.intersection(parsed):
            builder.problem(where, "answer and verdict columns need a `model`")

    for item_id, known in item_fields.items():
        item = _table_item(item_id, known, first_rows[item_id], field_rows, builder)
        if item is not None:
            builder.add_item(item, first_rows[item_id])
    for name, info in model_fields.items():
        builder.models[name] = ModelInfo(
            name=name, provider=info.get("provider"), family=info.get("family")
        )
    for where, parsed in answer_rows:
        _table_answer(where, parsed, builder)
    return builder.finish(normalize=normalize)


_ITEM_FIELDS: Final = ("question", "options", "gold", "category", "difficulty")
_ANSWER_FIELDS: Final = frozenset({"probs", "choice", "response", "judge", "verdict", "judge_raw"})
_TEXT_FIELDS: Final = (
    "item_id",
    "question",
    "category",
    "model",
    "provider",
    "family",
    "response",
    "judge",
    "judge_raw",
)
_NUMBERED = re.compile(r"^(option|prob)_(\d+)$")
_VERDICT_WORDS: Final[dict[str, Literal[0, 1]]] = {
    "1": 1,
    "0": 0,
    "true": 1,
    "false": 0,
    "c": 1,
    "i": 0,
    "correct": 1,
    "incorrect": 0,
}


def _table_item(
    item_id: str,
    known: dict[str, Any],
    where: str,
    field_rows: dict[tuple[str, str], str],
    builder: _Builder,
) -> Item | None:
    missing = [name for name in ("question", "options", "gold") if name not in known]
    if missing:
        builder.problem(where, f"item {item_id!r} has no {', '.join(missing)} on any row")
        return None
    gold = _resolved_index(known["gold"], len(known["options"]))
    if isinstance(gold, str):
        builder.problem(f"{field_rows[item_id, 'gold']}.gold", gold)
        return None
    return Item(
        id=item_id,
        question=known["question"],
        options=known["options"],
        gold=gold,
        category=known.get("category"),
        difficulty=known.get("difficulty"),
    )


def _resolved_index(value: int | str, n_options: int) -> int | str:
    """An index as given, or a letter's index; a message if a letter is past the options."""
    if isinstance(value, int):
        return value
    index = _letter_index(value)
    if index >= n_options:
        return f"letter {value!r} is past the last option ({chr(ord('A') + n_options - 1)})"
    return index


def _table_model_fields(
    parsed: dict[str, Any],
    where: str,
    model_fields: dict[str, dict[str, Any]],
    builder: _Builder,
) -> None:
    info = model_fields.setdefault(parsed["model"], {})
    for name in ("provider", "family"):
        if name not in parsed:
            continue
        if name in info and info[name] != parsed[name]:
            builder.problem(
                f"{where}.{name}",
                f"model {parsed['model']!r} has {name} {info[name]!r} on an earlier row; "
                f"here {parsed[name]!r}",
            )
        info.setdefault(name, parsed[name])


def _table_answer(where: str, parsed: dict[str, Any], builder: _Builder) -> None:
    model, item_id = parsed["model"], parsed["item_id"]
    item = builder.items.get(item_id)
    choice = parsed.get("choice")
    if isinstance(choice, str) and item is not None:
        choice = _resolved_index(choice, len(item.options))
        if isinstance(choice, str):
            builder.problem(f"{where}.choice", choice)
            return
    if "probs" in parsed or choice is not None:
        output = Output(
            model=model,
            item=item_id,
            probs=parsed.get("probs"),
            choice=choice if isinstance(choice, int) else None,
            response=parsed.get("response"),
        )
        # Rows that repeat the same answer (one row per judge) add it once.
        if builder.outputs.get((model, item_id)) != output:
            builder.add_output(output, where)
    elif "response" in parsed and "judge" not in parsed:
        builder.problem(where, "an answer needs `probs`, `choice`, or both")
    if "verdict" in parsed and "judge" not in parsed:
        builder.problem(f"{where}.judge", "a verdict needs the judge's name")
    elif "judge" in parsed:
        builder.models.setdefault(parsed["judge"], ModelInfo(name=parsed["judge"]))
        if parsed.get("verdict") is None:
            builder.skip("unparseable verdicts kept as null")
        builder.add_verdict(
            Verdict(
                judge=parsed["judge"],
                candidate=model,
                item=item_id,
                verdict=parsed.get("verdict"),
                raw=parsed.get("judge_raw"),
            ),
            where,
        )


def _csv_rows(path: Path, builder: _Builder) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a byte-order mark
    except (OSError, UnicodeDecodeError) as error:
        builder.problem(str(path), _os_message(error))
        return
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            builder.problem(str(path), "empty file: expected a header row")
            return
        header = [name.strip() for name in header]
        if not _table_header_ok(header, f"{path} line 1", builder):
            return
        start = reader.line_num + 1
        for cells in reader:
            where = f"{path} line {start}"
            start = reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                builder.problem(where, f"has {len(cells)} cells; the header has {len(header)}")
                continue
            yield (
                where,
                {
                    name: cell.strip()
                    for name, cell in zip(header, cells, strict=True)
                    if cell.strip()
                },
            )
    except csv.Error as error:
        builder.problem(f"{path} line {reader.line_num}", f"not valid CSV: {error}")


def _table_header_ok(header: list[str], where: str, builder: _Builder) -> bool:
    ok = True
    if "item_id" not in header:
        builder.problem(where, "no item_id column")
        ok = False
    for name in header:
        if name not in TABLE_COLUMNS and not _NUMBERED.match(name):
            builder.problem(
                f"{where}.{name}", f"unknown column (known: {', '.join(TABLE_COLUMNS)})"
            )
            ok = False
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates:
        builder.problem(where, f"columns named more than once: {', '.join(duplicates)}")
        ok = False
    return ok


def _jsonl_rows(path: Path, builder: _Builder) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, record in _json_lines(path, builder):
        where = f"{path} line {number}"
        if "kind" in record:
            builder.problem(
                f"{where}.kind",
                "this is a bundle record (it has `kind`): a JSONL bundle needs no import",
            )
            continue
        unknown = [k for k in record if k not in TABLE_COLUMNS and not _NUMBERED.match(k)]
        for key in unknown:
            builder.problem(f"{where}.{key}", f"unknown key (known: {', '.join(TABLE_COLUMNS)})")
        if not unknown:
            yield where, {k: v for k, v in record.items() if v is not None and v != ""}


def _table_row(row: dict[str, Any], where: str, builder: _Builder) -> dict[str, Any] | None:
    """The typed fields of one row, or None after recording its problems."""
    before = len(builder.problems)
    parsed: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        if name not in row:
            continue
        value = row[name]
        if name == "item_id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # JSONL ids may be numbers
        if isinstance(value, str):
            parsed[name] = value
        else:
            builder.problem(f"{where}.{name}", f"must be text; got {value!r}")
    if "item_id" not in row:
        builder.problem(f"{where}.item_id", "missing: every row names its item")
    lists: tuple[tuple[str, str, Literal["text", "number"]], ...] = (
        ("options", "option", "text"),
        ("probs", "prob", "number"),
    )
    for list_name, prefix, kind in lists:
        values = _table_list(row, list_name, prefix, kind, where, builder)
        if values is not None:
            parsed[list_name] = values
    for name in ("gold", "choice"):
        if name in row:
            index = _as_index(row[name])
            if index is None:
                builder.problem(
                    f"{where}.{name}",
                    f"must be a 0-based option index or a letter A-Z; got {row[name]!r}",
                )
            else:
                parsed[name] = index
    if "difficulty" in row:
        difficulty = _as_number(row["difficulty"])
        if difficulty is None:
            builder.problem(f"{where}.difficulty", f"not a number: {row['difficulty']!r}")
        else:
            parsed["difficulty"] = difficulty
    if "verdict" in row:
        value = row["verdict"]
        word = ("true" if value else "false") if isinstance(value, bool) else str(value)
        verdict = _VERDICT_WORDS.get(word.strip().lower())
        if verdict is None:
            builder.problem(
                f"{where}.verdict",
                "must be 1/0, true/false, C/I or correct/incorrect (empty = unparseable); "
                f"got {value!r}",
            )
        else:
            parsed["verdict"] = verdict
    elif "judge" in row:
        parsed["verdict"] = None  # an empty verdict: the judge's reply could not be parsed
    return parsed if len(builder.problems) == before else None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _as_index(value: Any) -> int | str | None:
    """A 0-based index, an upper-case letter (resolved once the options are known), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        stripped = value.strip()
        if re.fullmatch(r"-?\d+", stripped):
            return int(stripped)
        if re.fullmatch(r"[A-Za-z]", stripped):
            return stripped.upper()
    return None


def _table_list(
    row: dict[str, Any],
    list_name: str,
    prefix: str,
    kind: Literal["text", "number"],
    where: str,
    builder: _Builder,
) -> list[Any] | None:
    """A list given as one JSON list (``options``) or as numbered columns (``option_1``, ...)."""
    numbered: dict[int, str] = {}
    for key in row:
        match = _NUMBERED.match(key)
        if match is not None and match.group(1) == prefix:
            numbered[int(match.group(2))] = key
    if list_name in row and numbered:
        builder.problem(
            f"{where}.{list_name}", f"given both as `{list_name}` and as {prefix}_<n> columns"
        )
        return None
    if list_name in row:
        value = row[list_name]
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as error:
                builder.problem(f"{where}.{list_name}", f"not a JSON list: {error.msg}")
                return None
        if not isinstance(value, list):
            builder.problem(f"{where}.{list_name}", f"must be a list; got {value!r}")
            return None
        cells = [(f"{list_name}[{i}]", cell) for i, cell in enumerate(value)]
    elif numbered:
        count = max(numbered)
        gaps = [n for n in range(0, count + 1) if (n in numbered) != (n > 0)]
        if gaps:
            builder.problem(
                f"{where}.{prefix}_{gaps[0]}",
                f"{prefix}_1..{prefix}_{count} must be filled in order, without gaps",
            )
            return None
        cells = [(numbered[n], row[numbered[n]]) for n in range(1, count + 1)]
    else:
        return None
    values: list[Any] = []
    for name, cell in cells:
        if kind == "text":
            if not isinstance(cell, str):
                builder.problem(f"{where}.{name}", f"must be text; got {cell!r}")
                return None
            values.append(cell)
        else:
            number = _as_number(cell)
            if number is None:
                builder.problem(f"{where}.{name}", f"not a number: {cell!r}")
                return None
            values.append(number)
    return values
