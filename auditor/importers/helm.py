"""Stanford CRFM HELM run directories turned into a bundle.

Read from stanford-crfm/helm (0.5.x):

* ``run_spec.json``: the `RunSpec` {name, scenario_spec {class_name, args}, adapter_spec
  {method, model, model_deployment, ...}}.
* ``scenario_state.json``: {adapter_spec, request_states: [RequestState]}; a request state has
  ``instance`` {id, input {text}, references [{output {text}, tags ["correct"]}]},
  ``train_trial_index``, ``output_mapping`` (joint multiple choice: letter -> reference text),
  ``reference_index`` and ``request_mode`` (separate multiple choice: one request state per
  reference, mode ``original`` or ``calibration``), ``request`` {prompt, model, echo_prompt},
  ``result`` {completions [{text, logprob, tokens [{text, logprob}]}]} and ``annotations``
  {annotator name: {...}}.
* ``per_instance_stats.json``: [{instance_id, train_trial_index, stats [{name {name}, mean}]}].
* helm/benchmark/metrics/basic_metrics.py (`compute_logprob_and_length`): a separate-choice
  score is the sum of the log-probabilities of the completion's last tokens, those of
  ``" " + reference``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from auditor.importers.common import Builder, ImportResult, argmax, read_json_file
from auditor.schemas.bundle import Item, Output, Verdict

__all__ = ["import_helm"]

_JOINT: Final = ("multiple_choice_joint", "multiple_choice_joint_chain_of_thought")
_SEPARATE: Final = ("multiple_choice_separate_original", "multiple_choice_separate_calibrated")
_CORRECT: Final = "correct"


@dataclass
class _Run:
    path: Path
    spec: dict[str, Any]
    states: list[dict[str, Any]]
    stats: dict[str, dict[str, float]]  # instance id -> stat name -> mean (trial 0)


def import_helm(
    paths: Sequence[Path], *, annotation_judges: Mapping[str, str] | None = None
) -> ImportResult:
    """Import HELM run directories (or folders holding them, searched for ``run_spec.json``).

    Items: each instance is item ``"<scenario>/<instance id>"`` (the scenario's class name, and
    its args when it has some), question = the input text, options = the references' texts,
    gold = the one reference tagged ``correct`` (instances with none or several are skipped and
    counted). The run's ``adapter_spec.model`` answered them; only train trial 0 is read.

    * Joint multiple choice: the completion, stripped, is looked up in ``output_mapping``
      (letter -> reference text); ``choice`` is that reference. HELM keeps only the chosen
      token's log-probability, so there are no ``probs``. A completion that maps to no option
      is skipped and counted, with an example. HELM's own ``exact_match`` for the instance is
      checked against ``choice == gold``, so a misread run fails instead of importing.
    * Separate multiple choice (one request per reference, the prompt echoed): the score of
      reference :math:`i` is :math:`\\ell_i = \\sum_t \\log p(t)` over the completion's last
      tokens whose texts join to exactly ``" " + reference`` (or the reference itself), as HELM
      scores it; tokens are matched by their text, never counted by a tokenizer guess, and a
      completion whose last tokens do not spell the reference is a problem. ``probs`` are the
      softmax :math:`p_i = e^{\\ell_i} / \\sum_j e^{\\ell_j}` (no length normalization), the
      model's distribution over the options given it answers with one of them; ``choice`` is
      the argmax. In calibrated mode only the ``original`` requests are read (said).
    * Annotations (``request_state.annotations[<annotator>]`` with ``<judge>_score`` entries)
      become verdicts on the instance's answer: score 1 -> 1, 0 -> 0, anything else null
      (counted). HELM names the judge by a short name only (``gpt``); ``annotation_judges``
      maps ``"<annotator>.<judge>"`` or ``"<judge>"`` to the judge model's name, and a judge
      with no mapping is a problem, never a guess.

    Example: separate scores ``[-1.0, -2.0]`` give ``probs`` ≈ [0.731, 0.269] and ``choice`` 0.
    """
    builder = Builder()
    judges = dict(annotation_judges or {})
    runs = [run for path in _run_dirs(paths, builder) if (run := _read_run(path, builder))]
    if not runs and not builder.problems:
        builder.problem("paths", "no HELM run directories given")
    for run in runs:
        _import_run(run, judges, builder)
    return builder.finish(normalize="softmax")


def _run_dirs(paths: Sequence[Path], builder: Builder) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if (path / "run_spec.json").is_file():
            found.append(path)
        elif path.is_dir():
            runs = sorted(p.parent for p in path.rglob("run_spec.json"))
            if not runs:
                builder.problem(str(path), "no HELM run directory here (no run_spec.json)")
            found.extend(runs)
        else:
            builder.problem(str(path), "not a HELM run directory (no run_spec.json)")
    return list(dict.fromkeys(found))


def _read_run(path: Path, builder: Builder) -> _Run | None:
    spec = read_json_file(path / "run_spec.json", builder)
    state = read_json_file(path / "scenario_state.json", builder)
    if not isinstance(spec, dict) or not isinstance(state, dict):
        return None
    states = state.get("request_states")
    if not isinstance(states, list):
        builder.problem(f"{path / 'scenario_state.json'}.request_states", "must be a list")
        return None
    stats: dict[str, dict[str, float]] = {}
    stats_path = path / "per_instance_stats.json"
    if stats_path.is_file():
        entries = read_json_file(stats_path, builder)
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("train_trial_index", 0) != 0:
                continue
            for stat in entry.get("stats") or []:
                name = stat.get("name") if isinstance(stat, dict) else None
                if isinstance(name, dict) and name.get("perturbation") is None:
                    stats.setdefault(str(entry.get("instance_id")), {})[str(name.get("name"))] = (
                        stat.get("mean")
                    )
    return _Run(path, spec, [s for s in states if isinstance(s, dict)], stats)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _scenario_key(spec: dict[str, Any]) -> str:
    scenario = _obj(spec.get("scenario_spec"))
    name = str(scenario.get("class_name", "scenario")).rsplit(".", 1)[-1]
    args = _obj(scenario.get("args"))
    return name + "".join(f",{k}={args[k]}" for k in sorted(args))


def _import_run(run: _Run, judges: dict[str, str], builder: Builder) -> None:
    adapter = _obj(run.spec.get("adapter_spec"))
    model = adapter.get("model")
    method = adapter.get("method")
    where = str(run.path)
    if not isinstance(model, str) or not model:
        builder.problem(f"{where}/run_spec.json.adapter_spec.model", f"no model; got {model!r}")
        return
    builder.count("runs")
    builder.count("request states", len(run.states))
    scenario = _scenario_key(run.spec)
    by_instance: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for index, state in enumerate(run.states):
        if state.get("train_trial_index", 0) != 0:
            builder.skip("skipped request states of train trials after the first")
            continue
        instance = _obj(state.get("instance"))
        by_instance.setdefault(str(instance.get("id")), []).append((index, state))
    answered = False
    for instance_id, states in by_instance.items():
        source = f"{where}/scenario_state.json request_states[{states[0][0]}]"
        item = _item(states[0][1], f"{scenario}/{instance_id}", builder)
        if item is None:
            continue
        if method in _JOINT:
            output = _joint_output(states[0][1], item, model, source, run, instance_id, builder)
        elif method in _SEPARATE:
            output = _separate_output(states, item, model, where, builder, method)
        else:
            output = None
            if not any(s.get("annotations") for _, s in states):
                builder.skip(f"skipped instances of runs that are not multiple choice ({method})")
        if output is not None:
            builder.add_item(item, source)
            builder.add_output(output, source)
            answered = True
        for _, state in states:
            _annotations(state, item, model, source, judges, builder)
    if answered:
        builder.add_model(model, model.split("/", 1)[0] if "/" in model else None)


def _item(state: dict[str, Any], item_id: str, builder: Builder) -> Item | None:
    instance = _obj(state.get("instance"))
    references = instance.get("references") or []
    options = [
        str(_obj(r.get("output")).get("text", "")) for r in references if isinstance(r, dict)
    ]
    gold = [i for i, r in enumerate(references) if _CORRECT in (r.get("tags") or [])]
    if len(options) < 2 or len(gold) != 1:
        builder.skip(
            "skipped instances without exactly one reference tagged correct among 2 or more"
        )
        return None
    question = _obj(instance.get("input")).get("text", "")
    return Item(id=item_id, question=str(question), options=options, gold=gold[0])


def _completion(state: dict[str, Any]) -> dict[str, Any] | None:
    result = _obj(state.get("result"))
    completions = result.get("completions") or []
    return completions[0] if completions and isinstance(completions[0], dict) else None


def _joint_output(
    state: dict[str, Any],
    item: Item,
    model: str,
    source: str,
    run: _Run,
    instance_id: str,
    builder: Builder,
) -> Output | None:
    completion = _completion(state)
    mapping = _obj(state.get("output_mapping"))
    text = str(completion.get("text", "")).strip() if completion else ""
    chosen = mapping.get(text)
    if chosen not in item.options:
        builder.skip("skipped joint multiple-choice answers that map to no option")
        builder.say(f"{run.path}: answers that map to no option in output_mapping, e.g. {text!r}")
        return None
    choice = item.options.index(chosen)
    logged = run.stats.get(instance_id, {}).get("exact_match")
    if isinstance(logged, int | float) and (logged == 1) != (choice == item.gold):
        builder.problem(
            source,
            f"HELM's exact_match for instance {instance_id!r} is {logged}, but the answer "
            f"{text!r} read through output_mapping gives choice {choice} and gold {item.gold}",
        )
        return None
    return Output(model=model, item=item.id, choice=choice)


def _reference_logprob(completion: dict[str, Any], reference: str) -> float | str:
    """Sum of the log-probabilities of the last tokens that spell ``" " + reference``."""
    tokens = completion.get("tokens") or []
    joined = ""
    total = 0.0
    for token in reversed(tokens):
        if not isinstance(token, dict) or not isinstance(token.get("text"), str):
            return "a token without text"
        joined = token["text"] + joined
        value = token.get("logprob")
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            return f"token {token['text']!r} has no log-probability"
        total += float(value)
        if joined in (f" {reference}", reference):
            return total
        if not (f" {reference}").endswith(joined) and not reference.endswith(joined):
            break
    return (
        f"the completion's last tokens do not spell the reference {reference!r} "
        f"(they end {joined!r})"
    )


def _separate_output(
    states: list[tuple[int, dict[str, Any]]],
    item: Item,
    model: str,
    where: str,
    builder: Builder,
    method: str,
) -> Output | None:
    scores: dict[int, float] = {}
    for index, state in states:
        source = f"{where}/scenario_state.json request_states[{index}]"
        if state.get("request_mode", "original") != "original":
            builder.skip("skipped calibration requests (original log-likelihoods read)")
            continue
        reference_index = state.get("reference_index")
        completion = _completion(state)
        if not isinstance(reference_index, int) or completion is None:
            builder.problem(source, "a separate-choice request needs reference_index and result")
            return None
        value = _reference_logprob(completion, item.options[reference_index])
        if isinstance(value, str):
            builder.problem(f"{source}.result.completions[0].tokens", value)
            return None
        scores[reference_index] = value
    if sorted(scores) != list(range(len(item.options))):
        builder.problem(
            f"{where}/scenario_state.json",
            f"instance {item.id!r}: requests for references {sorted(scores)} of "
            f"{len(item.options)}",
        )
        return None
    if method.endswith("calibrated"):
        builder.say(f"{where}: calibrated run read through its original log-likelihoods")
    lls = [scores[i] for i in range(len(item.options))]
    return Output(model=model, item=item.id, probs=lls, choice=argmax(lls))


def _annotations(
    state: dict[str, Any],
    item: Item,
    model: str,
    source: str,
    judges: dict[str, str],
    builder: Builder,
) -> None:
    annotations = state.get("annotations")
    if not isinstance(annotations, dict):
        return
    for annotator, values in annotations.items():
        if not isinstance(values, dict):
            continue
        for key, score in values.items():
            if not key.endswith("_score"):
                continue
            short = key[: -len("_score")]
            judge = judges.get(f"{annotator}.{short}") or judges.get(short)
            if judge is None:
                builder.problem(
                    f"{source}.annotations.{annotator}.{key}",
                    f"HELM names this judge only {short!r}: name its model with "
                    f"--annotation-judge {annotator}.{short}=<model>",
                )
                continue
            verdict: Literal[0, 1] | None
            if score in (0, 1) and not isinstance(score, bool):
                verdict = 1 if score == 1 else 0
            else:
                verdict = None
                builder.skip("annotation scores other than 0 or 1 kept as null verdicts")
            builder.add_item(item, source)
            builder.add_model(model, model.split("/", 1)[0] if "/" in model else None)
            builder.add_model(judge, judge.split("/", 1)[0] if "/" in judge else None)
            reasoning = values.get(f"{short}_reasoning")
            builder.add_verdict(
                Verdict(
                    judge=judge,
                    candidate=model,
                    item=item.id,
                    verdict=verdict,
                    raw=str(reasoning) if reasoning is not None else None,
                ),
                f"{source}.annotations.{annotator}.{key}",
            )
