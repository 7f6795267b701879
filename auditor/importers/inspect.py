"""UK AISI Inspect logs (``.json`` and the zipped ``.eval`` format) turned into a bundle."""

from __future__ import annotations

import json
import math
import re
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from auditor.importers.common import Builder, ImportResult, letter_index, read_json_file
from auditor.schemas.bundle import Item, Output, Verdict

__all__ = ["INSPECT_MODEL_GRADED_SCORERS", "import_inspect"]

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
    served: str | None = None
    how: str = ""


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
    builder = Builder()
    logs = [log for path in _inspect_files(paths, builder) if (log := _inspect_read(path, builder))]
    if not logs and not builder.problems:
        builder.problem("paths", "no Inspect logs given")
    pending: list[_PendingVerdict] = []
    for log in logs:
        _inspect_log(log, builder, pending, scorer)
    _inspect_check_served_names(pending, builder)
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


def _inspect_check_served_names(pending: list[_PendingVerdict], builder: Builder) -> None:
    """Each judge must have been served under one name: else verdicts are mis-attributed.

    A grader's server names the model it ran in every grading reply. Verdicts we give to one
    judge that came back from differently named models were graded by different models, so
    the log was read wrong or was edited; refuse rather than mix two judges' verdicts.
    """
    served: dict[str, dict[str, str]] = {}
    for verdict in pending:
        if verdict.served is not None:
            served.setdefault(verdict.judge, {}).setdefault(verdict.served, verdict.source)
    for judge, names in served.items():
        how = next((v.how for v in pending if v.judge == judge), "")
        if len(names) > 1:
            builder.problem(
                f"judge {judge!r}",
                "its verdicts were graded by models the servers called "
                + ", ".join(f"{name!r} (e.g. {where})" for name, where in names.items())
                + ": two graders are mixed up under one name",
            )
        else:
            builder.say(f"judge {judge!r} (from {how}) was served as {next(iter(names))!r}")


def _inspect_files(paths: Sequence[Path], builder: Builder) -> list[Path]:
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


def _inspect_read(path: Path, builder: Builder) -> _InspectLog | None:
    """Read one log; any error of the readers becomes a problem naming the file, not a crash."""
    try:
        if path.suffix == ".eval":
            return _inspect_read_eval(path, builder)
        return _inspect_read_json(path, builder)
    except Exception as error:  # a reader's surprise (zip, zstd, JSON) must name the file
        builder.problem(str(path), f"cannot read this log: {type(error).__name__}: {error}")
        return None


def _inspect_read_json(path: Path, builder: Builder) -> _InspectLog | None:
    document = read_json_file(path, builder)
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


def _zstd_zipfile() -> None:
    """Teach `zipfile` to read zstd members (zip method 93), which Inspect writes since 0.3.2xx.

    Python 3.14's `zipfile` reads them itself; below it, Inspect depends on `zipfile-zstd`,
    which registers the method with the standard module when imported. We do the same.
    """
    if sys.version_info < (3, 14):
        import zipfile_zstd  # noqa: F401  (registers method 93 with zipfile)


def _inspect_read_eval(path: Path, builder: Builder) -> _InspectLog | None:
    _zstd_zipfile()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        builder.problem(str(path), f"not a readable .eval (zip) file: {error}")
        return None
    with archive:
        names = archive.namelist()
        header_name = next((n for n in ("header.json", "_journal/start.json") if n in names), None)
        if header_name is None:
            builder.problem(str(path), "not an Inspect .eval log: no header.json")
            return None
        header = _zip_json(archive, header_name, path, builder)
        if isinstance(header, dict) and header_name != "header.json":
            header = {"status": "started", **header}  # the run never finished
        samples = []
        for name in sorted(n for n in names if n.startswith("samples/") and n.endswith(".json")):
            sample = _zip_json(archive, name, path, builder)
            if sample is not None:
                samples.append(_InspectSample(f"{path}:{name}", sample))
    if not isinstance(header, dict) or not isinstance(header.get("eval"), dict):
        builder.problem(f"{path}:{header_name}", "not an Inspect log header: no `eval` object")
        return None
    return _InspectLog(path, header, samples)


def _zip_json(archive: zipfile.ZipFile, name: str, path: Path, builder: Builder) -> Any:
    try:
        data = archive.read(name)
    except Exception as error:  # zipfile, zlib and zstd each raise their own kinds
        builder.problem(f"{path}:{name}", f"cannot unpack this member: {error}")
        return None
    try:
        document = json.loads(data.decode("utf-8"))
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
    log: _InspectLog, builder: Builder, pending: list[_PendingVerdict], scorer: str | None
) -> None:
    spec = log.header["eval"]
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        builder.problem(f"{log.path}.eval.model", f"must name the evaluated model; got {model!r}")
        return
    builder.count("logs")
    builder.count("samples", len(log.samples))
    if log.header.get("status") not in (None, "success"):
        builder.skip("logs of unfinished runs (their completed samples were read)")
    shuffled = _inspect_shuffled(log.header)
    graders = _inspect_scorer_graders(spec, model)
    before = builder.skipped.copy()
    used = 0
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
            answered = _inspect_choice_sample(sample, model, shuffled, builder)
            used_model |= answered
            used += answered
        else:
            verdicts = _inspect_verdicts(sample, graders, model, scorer, builder)
            pending.extend(verdicts)
            used += bool(verdicts)
    if used_model:
        builder.add_model(model, _inspect_provider(model))
    if log.samples and not used:
        reasons = builder.skipped - before
        because = "; ".join(f"{count} {reason}" for reason, count in reasons.items())
        message = f"all {len(log.samples)} samples skipped" + (
            f": {because}" if because else ": none is multiple-choice or model-graded"
        )
        example = _inspect_example_reply(log)
        if example and "no answer letter" in because:
            message += f" (the model replied e.g. {example!r}, with no 'ANSWER: <letter>')"
        builder.say(f"{log.path}: {message}")


def _inspect_example_reply(log: _InspectLog) -> str | None:
    for sample in log.samples:
        completion, _ = _inspect_completion(sample.data, _dict(sample.data.get("attachments")))
        if completion:
            return completion[:80]
    return None


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
    sample: _InspectSample, model: str, shuffled: bool, builder: Builder
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
        or not 0 <= letter_index(letters[0].strip()) < len(options)
    ):
        builder.problem(
            f"{where}.target",
            f"must be one option letter A..{chr(ord('A') + len(options) - 1)}; got {target!r} "
            "(samples with several correct options are not supported)",
        )
        return False
    item_id = str(sample_id)
    gold = letter_index(letters[0].strip())
    # Inspect's shuffle_choices() leaves no mark in the log: the same sample read in another
    # log with its options in another order is recognized by the options themselves.
    order = _inspect_reordering(builder.items.get(item_id), options, gold)
    if order is not None:
        builder.skip(
            "multiple-choice samples whose choices were shuffled (their options are in "
            "another order than in the first log; answers mapped back by option text)"
        )
        options, gold = [options[order.index(i)] for i in range(len(options))], order[gold]
    if not builder.add_item(
        Item(
            id=item_id,
            question=_inspect_input_text(data, attachments),
            options=options,
            gold=gold,
        ),
        where,
    ):
        if sorted(builder.items[item_id].options) == sorted(options):
            builder.hint(
                "the items that differ have the same options in another order: the choices "
                "were shuffled (shuffle_choices) and option texts repeat, so answers cannot "
                "be mapped back"
            )
        return False

    completion, first_choice = _inspect_completion(data, attachments)
    scores = _dict(data.get("scores"))
    answer, sample_shuffled = _inspect_answer(scores, completion)
    shuffled = shuffled or sample_shuffled
    chosen = sorted({c.upper() for c in answer if c.isalpha()}) if answer is not None else []
    if len(chosen) != 1 or not 0 <= letter_index(chosen[0]) < len(options):
        builder.skip(
            "skipped multiple-choice samples answered with several letters"
            if len(chosen) > 1
            else "skipped multiple-choice samples with no answer letter"
        )
        return False
    choice = letter_index(chosen[0])
    probs = None
    if first_choice is not None and first_choice.get("logprobs"):
        if shuffled or order is not None:
            builder.skip(
                "logprobs ignored because the choices were shuffled (outputs kept as choices)"
            )
        else:
            probs = _inspect_letter_probs(first_choice["logprobs"], chosen[0], options)
            if probs is None:
                builder.skip(
                    "logprobs with no option letter at the answer (outputs kept as choices)"
                )
    if order is not None:
        choice = order[choice]
    builder.add_output(Output(model=model, item=item_id, probs=probs, choice=choice), where)
    return True


def _inspect_reordering(first: Item | None, options: list[str], gold: int) -> list[int] | None:
    """Where each option of this sample stands in the first reading of the item, if the two
    list the same, distinct options in another order with the same gold option; else None.

    Example: first ``["Berlin", "Paris"]`` (gold 1), here ``["Paris", "Berlin"]`` (gold 0)
    gives ``[1, 0]``.
    """
    if first is None or first.options == options or len(set(options)) != len(options):
        return None
    if sorted(first.options) != sorted(options):
        return None
    order = [first.options.index(option) for option in options]
    return order if order[gold] == first.gold else None


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


@dataclass(frozen=True)
class _Grader:
    """Who graded with one scorer of a log, and how we know."""

    judge: str | None  # None: the scorer's grader cannot be named from the log's spec
    how: str
    builtin: bool


def _inspect_scorer_graders(spec: dict[str, Any], model: str) -> dict[str, _Grader]:
    """Score key -> grader, from ``eval.scorers`` and ``eval.model_roles``.

    Inspect keys each sample's scores by the scorer's name made unique in the order of
    ``eval.scorers`` (`unique_scorer_name`: ``model_graded_qa``, ``model_graded_qa1``, ...), so
    the n-th scorer spec gives the n-th key; two graders named by string are never confused.
    The grader is the scorer's ``model`` option, else the model of its ``model_role`` option
    (``grader`` for the built-in model-graded scorers) in ``eval.model_roles``, else, for the
    built-in scorers, the evaluated model (Inspect's default). The model name the provider's
    server returned (``score.metadata.grading[-1].model``) is not the run's name for the model
    (``gpt-4o-mini-2024-07-18`` for ``openai/gpt-4o-mini``); it is kept as provenance only.
    """
    graders: dict[str, _Grader] = {}
    used: list[str] = []
    roles = _dict(spec.get("model_roles"))
    for entry in spec.get("scorers") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        base = entry["name"].rsplit("/", 1)[-1]
        key = base
        count = 1
        while key in used:  # inspect_ai.scorer._scorer.unique_scorer_name
            key = f"{base}{count}"
            count += 1
        used.append(key)
        options = _dict(entry.get("options"))
        builtin = base in INSPECT_MODEL_GRADED_SCORERS
        configured = options.get("model")
        role = options.get("model_role", "grader" if builtin else None)
        role_model = _dict(roles.get(role)).get("model") if isinstance(role, str) else None
        if isinstance(configured, str) and configured:
            graders[key] = _Grader(configured, f"the scorer's model option ({key})", builtin)
        elif isinstance(configured, list) and configured:
            graders[key] = _Grader(None, "several graders (a majority vote)", builtin)
        elif isinstance(role_model, str) and role_model:
            graders[key] = _Grader(role_model, f"the {role!r} model role", builtin)
        elif builtin:
            graders[key] = _Grader(model, "no grader named: the evaluated model grades", builtin)
        else:
            graders[key] = _Grader(None, "not named in the scorer's options or roles", builtin)
    return graders


def _inspect_verdicts(
    sample: _InspectSample,
    graders: dict[str, _Grader],
    model: str,
    only: str | None,
    builder: Builder,
) -> list[_PendingVerdict]:
    data = sample.data
    scores = data.get("scores")
    if not isinstance(scores, dict) or not scores:
        builder.skip("skipped free-form samples with no scores")
        return []
    attachments = _dict(data.get("attachments"))
    sample_id = data.get("id")
    if isinstance(sample_id, bool) or not isinstance(sample_id, int | str):
        builder.problem(f"{sample.source}.id", f"must be a sample id; got {sample_id!r}")
        return []
    completion, _ = _inspect_completion(data, attachments)
    verdicts = []
    for name, score in scores.items():
        if only is not None and name != only:
            continue
        if not isinstance(score, dict):
            continue
        served = _inspect_served_name(score)
        grader = graders.get(name)
        if grader is None or grader.judge is None:
            if grader is not None and grader.how.startswith("several"):
                builder.skip(f"skipped {name} scores by a majority of several graders")
            elif served is not None:
                builder.problem(
                    f"{sample.source}.scores.{name}",
                    f"graded by a model the server called {served!r}, but the log's "
                    "eval.scorers and eval.model_roles do not name it (pass --scorer to "
                    "import another scorer's verdicts)",
                )
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
                judge=grader.judge,
                candidate=model,
                item=str(sample_id),
                verdict=verdict,
                raw=raw,
                response=completion or None,
                served=served,
                how=grader.how,
            )
        )
    return verdicts


def _inspect_served_name(score: dict[str, Any]) -> str | None:
    """The model name the grader's server returned (``metadata.grading[-1].model``), if any."""
    grading = _dict(score.get("metadata")).get("grading")
    if isinstance(grading, list) and grading and isinstance(grading[-1], dict):
        served = grading[-1].get("model")
        if isinstance(served, str) and served:
            return served
    return None
