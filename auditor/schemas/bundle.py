"""The evaluation bundle: the interchange format of Judge Auditor.

One document holds the multiple-choice ``items`` with their gold answers, the ``models``, each
model's ``outputs`` on the items (per-option probabilities and/or the chosen option, and an
optional free-form answer) and the judges' ``verdicts`` on candidates' free-form answers.

A bundle is JSON (one document) or JSONL (one record per line, each with a ``kind`` field:
``header``, ``item``, ``model``, ``output`` or ``verdict``), so that large evaluations can be
streamed. Every problem found is reported with the record and field it concerns; nothing is
silently dropped or repaired unless the caller asks for it (``normalize``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.schemas.candidates import parse_candidate
from auditor.schemas.limits import MAX_CANDIDATE_ID_LENGTH, MAX_NAME_LENGTH
from auditor.stats.responses import PROBABILITY_TOLERANCE, ResponseMatrix, _segment_argmax

__all__ = [
    "OUTCOMES",
    "PROBABILITY_TOLERANCE",
    "SCHEMA_VERSION",
    "Bundle",
    "BundleError",
    "Comparison",
    "HumanChoice",
    "Item",
    "Label",
    "ModelInfo",
    "Normalization",
    "Outcome",
    "Output",
    "Problem",
    "ResponseMatrix",
    "Verdict",
    "bundle_json_schema",
    "load_bundle",
    "output_value_problems",
    "parse_bundle",
    "parse_records",
    "primary_view",
    "response_matrix",
    "validate_bundle",
]

SCHEMA_VERSION: Final = "1.0"

Normalization = Literal["none", "sum", "softmax"]
"""How ``probs`` are read: ``none`` = already probabilities; ``sum`` = non-negative scores divided
by their total; ``softmax`` = logits or log-probabilities, exponentiated and renormalized."""

_STRICT = ConfigDict(extra="forbid", frozen=True)
_FINITE = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
"""Records with numbers of their own: NaN and infinities are refused (they would also make
the canonical JSON, and so the bundle's hash, impossible). Output probabilities have their own
finiteness check (`output_value_problems`), shared with the columnar path."""


class Item(BaseModel):
    """A multiple-choice item with its gold answer."""

    model_config = _FINITE

    id: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, description="Unique item identifier.")
    question: str = Field(description="The question text shown to models and judges.")
    options: list[str] = Field(description="Answer options, in order (at least 2).")
    gold: int = Field(description="Index of the correct option in `options` (0-based).")
    difficulty: float | None = Field(default=None, description="Optional difficulty score.")
    category: str | None = Field(
        default=None, max_length=MAX_NAME_LENGTH, description="Optional subject or category."
    )


class ModelInfo(BaseModel):
    """A model that answered items, or judged answers, or both."""

    model_config = _FINITE

    name: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Unique model name (e.g. a litellm model string).",
    )
    provider: str | None = Field(
        default=None, max_length=MAX_NAME_LENGTH, description="Provider or vendor, e.g. `openai`."
    )
    family: str | None = Field(
        default=None, max_length=MAX_NAME_LENGTH, description="Model family or architecture."
    )
    params: float | None = Field(default=None, description="Parameter count in billions.")


class Output(BaseModel):
    """One model's answer to one item."""

    model_config = _STRICT

    model: str = Field(description="Name of the answering model (must be in `models`).")
    item: str = Field(description="Id of the item answered (must be in `items`).")
    probs: list[float] | None = Field(
        default=None,
        description="One probability per option of the item, summing to 1 (see normalization).",
    )
    choice: int | None = Field(
        default=None, description="Index of the chosen option, when known (0-based)."
    )
    response: str | None = Field(default=None, description="Free-form answer, if collected.")
    variant: str | None = Field(
        default=None,
        min_length=1,
        description="Name of the prompt template variant the answer was given under (prompt "
        "stability); null = the audit's primary template. At most one output per model, item "
        "and variant.",
    )


class Verdict(BaseModel):
    """A judge's verdict on one candidate's free-form answer to one item."""

    model_config = _STRICT

    judge: str = Field(description="Name of the judging model (must be in `models`).")
    candidate: str = Field(description="Name of the judged model (must be in `models`).")
    item: str = Field(description="Id of the item (must be in `items`).")
    verdict: Literal[0, 1] | None = Field(
        description="1 = judged correct, 0 = judged incorrect, null = unparseable judge output."
    )
    raw: str | None = Field(default=None, description="The judge's raw output.")
    variant: str | None = Field(
        default=None,
        min_length=1,
        description="Name of the judge prompt template variant (prompt stability); null = the "
        "audit's primary template.",
    )


Outcome = Literal["correct", "avoidant", "incorrect"]
"""Three-way outcome of a free-form answer (Zhou et al., Nature 2024)."""
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)


class Label(BaseModel):
    """The three-way outcome of one candidate's free-form answer to one item.

    ``avoidant`` covers refusals, "I don't know" and off-task replies. The source of truth for
    reliability and supervision: human labels first, then a grader model's, then a simulation's
    planted truth.
    """

    model_config = _STRICT

    item: str = Field(description="Id of the item answered (must be in `items`).")
    candidate: str = Field(description="Name of the answering model (must be in `models`).")
    outcome: Outcome = Field(description="`correct`, `avoidant` or `incorrect`.")
    annotator: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Who labelled: an annotator id or the grader model's name.",
    )
    source: Literal["human", "grader", "planted"] = Field(
        default="human",
        description="`human` annotation, a `grader` model's reading, or a simulation's "
        "`planted` truth.",
    )


TIE: Final = "tie"
"""The winner (or gold, or human choice) of a comparison judged a tie."""


class HumanChoice(BaseModel):
    """One human annotator's choice on a pairwise comparison."""

    model_config = _STRICT

    annotator: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Annotator id (unique per comparison).",
    )
    choice: str | None = Field(
        max_length=MAX_CANDIDATE_ID_LENGTH,
        description="The preferred candidate's id, `tie`, or null (no choice recorded).",
    )


class Comparison(BaseModel):
    """A judge's pairwise verdict: which of two answers to one question is better."""

    model_config = _STRICT

    judge: str = Field(
        max_length=MAX_NAME_LENGTH, description="Name of the judging model (must be in `models`)."
    )
    item: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="Id of the question: an `items` id, or a free id when the question is not "
        "a multiple-choice item (pairwise-only bundles have no items).",
    )
    candidate_a: str = Field(
        max_length=MAX_CANDIDATE_ID_LENGTH,
        description="Id of the answer shown first: a candidate (usually its model's name) or a "
        "synthetic variant `<base>::<kind>:<name>` (see auditor.schemas.candidates).",
    )
    candidate_b: str = Field(
        max_length=MAX_CANDIDATE_ID_LENGTH, description="Id of the answer shown second."
    )
    winner: str | None = Field(
        max_length=MAX_CANDIDATE_ID_LENGTH,
        description="candidate_a, candidate_b, `tie`, or null when the judge's output could "
        "not be parsed (counted, never coerced).",
    )
    raw: str | None = Field(default=None, description="The judge's raw output.")
    gold: str | None = Field(
        default=None,
        max_length=MAX_CANDIDATE_ID_LENGTH,
        description="The better candidate (or `tie`) when known.",
    )
    human: list[HumanChoice] = Field(
        default_factory=list, description="Human annotators' choices, when collected."
    )
    question: str | None = Field(default=None, description="Question text, if carried along.")
    text_a: str | None = Field(default=None, description="Answer text shown first, if carried.")
    text_b: str | None = Field(default=None, description="Answer text shown second, if carried.")


class Bundle(BaseModel):
    """An evaluation bundle: items, models, their outputs, and judges' verdicts."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1.0"] = Field(
        default=SCHEMA_VERSION, description="Version of the bundle schema."
    )
    items: list[Item] = Field(description="Multiple-choice items with gold answers.")
    models: list[ModelInfo] = Field(description="Models that answered or judged.")
    outputs: list[Output] = Field(default_factory=list, description="Models' answers to items.")
    verdicts: list[Verdict] = Field(
        default_factory=list, description="Judges' verdicts on candidates' answers."
    )
    comparisons: list[Comparison] = Field(
        default_factory=list,
        description="Judges' pairwise verdicts (a bundle of comparisons alone is valid).",
    )
    labels: list[Label] = Field(
        default_factory=list,
        description="Three-way outcomes (correct, avoidant, incorrect) of candidates' free-form "
        "answers, by humans or a grader model.",
    )

    @classmethod
    def from_frames(
        cls,
        *,
        items: Any,
        outputs: Any = None,
        verdicts: Any = None,
        models: Any = None,
        normalize: Normalization = "none",
    ) -> Bundle:
        """A validated bundle from pandas DataFrames, one row per record with the record's fields
        as columns (``items``: id, question, options, gold, ...; ``outputs``: model, item,
        probs and/or choice, ...; ``verdicts``: judge, candidate, item, verdict, ...;
        ``models``: name, provider, family, params). Without ``models`` the models are the
        names met in outputs and verdicts. Validated by `parse_bundle` with the same rules, so a
        problem names the row and field (``outputs[3].probs: ...``); missing cells (NaN) are
        absent values.

        >>> Bundle.from_frames(items=items, outputs=outputs, verdicts=verdicts)  # doctest: +SKIP
        """
        sections = {"items": items, "outputs": outputs, "verdicts": verdicts, "models": models}
        document: dict[str, Any] = {
            name: _frame_records(name, frame)
            for name, frame in sections.items()
            if frame is not None
        }
        if models is None:
            names = [r.get("model") for r in document.get("outputs", [])] + [
                name
                for r in document.get("verdicts", [])
                for name in (r.get("judge"), r.get("candidate"))
            ]
            document["models"] = [
                {"name": name} for name in dict.fromkeys(names) if isinstance(name, str)
            ]
        return parse_bundle(document, normalize=normalize)


_INTEGER_FIELDS = {"items": ("gold",), "outputs": ("choice",), "verdicts": ("verdict",)}


def _cell(value: Any) -> Any:
    """A DataFrame cell as the JSON value the record-by-record rules read (NaN -> None, numpy
    scalars and arrays -> Python numbers and lists)."""
    if hasattr(value, "tolist"):  # numpy scalars and arrays (list cells read from Parquet)
        value = value.tolist()
    if isinstance(value, float) and value != value:
        return None
    return value


def _frame_records(section: str, frame: Any) -> list[dict[str, Any]]:
    if not hasattr(frame, "to_dict") or not hasattr(frame, "columns"):
        raise ValueError(f"{section}: must be a pandas DataFrame; got {type(frame).__name__}")
    records = []
    for row in frame.to_dict("records"):
        record = {str(key): _cell(value) for key, value in row.items()}
        for name in _INTEGER_FIELDS.get(section, ()):
            value = record.get(name)
            # a column with a missing value is float in pandas: 1.0 means the integer 1
            if isinstance(value, float) and value.is_integer():
                record[name] = int(value)
        records.append(record)
    return records


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by a path such as ``outputs[3].probs``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class BundleError(ValueError):
    """Raised when a bundle is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid bundle: {shown}{more}")


def bundle_json_schema() -> dict[str, Any]:
    """The JSON Schema of a bundle document (what `auditor schema` prints)."""
    return Bundle.model_json_schema()


# --- parsing -------------------------------------------------------------------------------------

_RECORD_TYPES: dict[str, type[BaseModel]] = {
    "item": Item,
    "model": ModelInfo,
    "output": Output,
    "verdict": Verdict,
    "comparison": Comparison,
    "label": Label,
}
_SECTION = {
    "item": "items",
    "model": "models",
    "output": "outputs",
    "verdict": "verdicts",
    "comparison": "comparisons",
    "label": "labels",
}


def _pydantic_problems(error: ValidationError, prefix: str) -> list[Problem]:
    problems = []
    for detail in error.errors():
        path = prefix
        for part in detail["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        value = detail.get("input")
        shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
        problems.append(Problem(path or "<document>", f"{detail['msg']}{shown}"))
    return problems


def parse_bundle(document: Any, *, normalize: Normalization = "none") -> Bundle:
    """Validate a decoded JSON bundle document; raise `BundleError` listing every problem."""
    if not isinstance(document, dict):
        raise BundleError([Problem("<document>", "a bundle must be a JSON object")])
    try:
        bundle = Bundle.model_validate(document)
    except ValidationError as error:
        raise BundleError(_pydantic_problems(error, "")) from None
    return validate_bundle(bundle, normalize=normalize)


def parse_records(
    lines: Iterable[str], *, normalize: Normalization = "none", source: str = "line"
) -> Bundle:
    """Read a JSONL bundle: one JSON record per line, each with a `kind` field.

    Problems name the line (``f"{source} {number}"``); cross-record problems name both the
    record (``outputs[3]``) and its line.
    """
    items: list[Item] = []
    models: list[ModelInfo] = []
    outputs: list[Output] = []
    verdicts: list[Verdict] = []
    comparisons: list[Comparison] = []
    labels: list[Label] = []
    record_lines: dict[str, list[str]] = {name: [] for name in _SECTION.values()}
    problems: list[Problem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source} {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(Problem(where, f"not valid JSON: {error.msg}"))
            continue
        if not isinstance(record, dict):
            problems.append(Problem(where, "a record must be a JSON object"))
            continue
        kind = record.pop("kind", None)
        if kind == "header":
            version = record.get("schema_version", SCHEMA_VERSION)
            if version != SCHEMA_VERSION:
                problems.append(
                    Problem(f"{where}.schema_version", f"unsupported version {version!r}")
                )
            continue
        if kind not in _RECORD_TYPES:
            problems.append(
                Problem(
                    f"{where}.kind",
                    f"must be one of header, {', '.join(_RECORD_TYPES)}; got {kind!r}",
                )
            )
            continue
        try:
            if kind == "item":
                items.append(Item.model_validate(record))
            elif kind == "model":
                models.append(ModelInfo.model_validate(record))
            elif kind == "output":
                outputs.append(Output.model_validate(record))
            elif kind == "comparison":
                comparisons.append(Comparison.model_validate(record))
            elif kind == "label":
                labels.append(Label.model_validate(record))
            else:
                verdicts.append(Verdict.model_validate(record))
        except ValidationError as error:
            problems.extend(_pydantic_problems(error, f"{where} ({kind})"))
            continue
        record_lines[_SECTION[kind]].append(where)
    if problems:
        raise BundleError(problems)
    # Each record was validated on its own above; the cross-record checks follow.
    bundle = Bundle.model_construct(
        schema_version=SCHEMA_VERSION,
        items=items,
        models=models,
        outputs=outputs,
        verdicts=verdicts,
        comparisons=comparisons,
        labels=labels,
    )
    return _validate(bundle, normalize, record_lines)


def load_bundle(path: str | Path, *, normalize: Normalization = "none") -> Bundle:
    """Load a bundle from a `.json` document, a `.jsonl` record stream or a Parquet directory.

    Read and validated column-wise (`auditor.schemas.formats.load_columns`: every problem at
    once), then built into records. Analyses that do not need records should call
    `load_columns` directly: it is several times faster on large bundles.
    """
    from auditor.schemas.formats import load_columns

    return load_columns(path, normalize=normalize).to_bundle()


# --- cross-record validation ---------------------------------------------------------------------


def _normalized(values: list[float], normalize: Normalization) -> list[float] | str:
    """Return the probabilities, or a message saying why they are not valid."""
    if normalize == "none":
        # Fast path for the common case; anything unusual falls through to the checks below.
        total = _total(values)
        if math.isfinite(total) and values and min(values) >= 0.0:  # all finite (total is) and >= 0
            return values if abs(total - 1.0) <= PROBABILITY_TOLERANCE else _sum_message(total)
    if normalize == "softmax":
        # A log-probability of -inf is a probability of 0; NaN and +inf mean nothing.
        if any(math.isnan(v) or v == math.inf for v in values):
            return f"must be finite numbers or -inf (log 0); got {values!r}"
        top = max(values)
        if top == -math.inf:
            return f"cannot be normalized: every value is -inf; got {values!r}"
        exps = [math.exp(v - top) for v in values]
        total = math.fsum(exps)  # each term is in [0, 1]: no overflow
        return [e / total for e in exps]
    if any(not math.isfinite(v) for v in values):
        return f"must be finite numbers; got {values!r}"
    if any(v < 0 for v in values):
        return f"must be non-negative; got {values!r}"
    total = _total(values)
    if normalize == "sum":
        if total <= 0:
            return f"cannot be normalized: they sum to {total!r}"
        if total == math.inf:  # finite scores whose sum overflows: scale by the largest first
            top = max(values)
            values = [v / top for v in values]
            total = math.fsum(values)
        return [v / total for v in values]
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        return _sum_message(total)
    return values


def _total(values: list[float]) -> float:
    """Exact sum; inf when it overflows, NaN for inf - inf or NaN entries."""
    try:
        return math.fsum(values)
    except OverflowError:
        return math.inf
    except ValueError:  # -inf + inf
        return math.nan


def _sum_message(total: float) -> str:
    return (
        f"must sum to 1 within {PROBABILITY_TOLERANCE:g}; they sum to {total!r} "
        "(use --normalize sum|softmax for scores, logits or log-probabilities)"
    )


def _index_problem(value: int, n_options: int) -> str | None:
    if 0 <= value < n_options:
        return None
    return f"must be an option index in 0..{n_options - 1}; got {value}"


def output_value_problems(
    output: Output,
    n_options: int | None,
    normalize: Normalization,
    found: list[tuple[str, str]],
) -> list[float] | None:
    """Check an output's own values against its item's option count; return its probabilities.

    Appends ``(field, message)`` to ``found`` for: neither ``probs`` nor ``choice``, a ``probs``
    length other than ``n_options``, probabilities that are not a distribution (or cannot be
    renormalized under ``normalize``), a ``choice`` out of range. ``n_options`` is None when
    the item is unknown (or < 2 when the item itself is invalid): only the first rule applies.
    The returned probabilities are the renormalized ones where ``normalize`` asked for that.
    Shared by `validate_bundle` and the streaming upload, so both apply the same rules.
    """
    if output.probs is None and output.choice is None:
        found.append(("", "needs `probs`, `choice`, or both"))
    probs = output.probs
    if n_options is None or n_options < 2:
        return probs
    if probs is not None:
        if len(probs) != n_options:
            found.append(
                (".probs", f"has {len(probs)} values but the item has {n_options} options")
            )
        else:
            checked = _normalized(probs, normalize)
            if isinstance(checked, str):
                found.append((".probs", checked))
            else:
                probs = checked
    if output.choice is not None and (message := _index_problem(output.choice, n_options)):
        found.append((".choice", message))
    return probs


def validate_bundle(bundle: Bundle, *, normalize: Normalization = "none") -> Bundle:
    """Check the relations between records; return the bundle with normalized probabilities.

    Raises `BundleError` naming every problem: duplicate ids, unknown references, option
    counts that differ from the item's, indices out of range (negative included), invalid
    probabilities, outputs with neither ``probs`` nor ``choice``, and empty inputs.
    """
    return _validate(bundle, normalize, None)


def _validate(
    bundle: Bundle, normalize: Normalization, record_lines: dict[str, list[str]] | None
) -> Bundle:
    if normalize not in get_args(Normalization):
        raise ValueError(
            f"normalize: must be one of {', '.join(get_args(Normalization))}; got {normalize!r}"
        )

    def where(section: str, index: int, details: str) -> str:
        line = f"{record_lines[section][index]}, " if record_lines is not None else ""
        return f"{section}[{index}] ({line}{details})"

    problems: list[Problem] = []
    if not bundle.items and not bundle.comparisons:
        problems.append(Problem("items", "must contain at least one item (or comparisons)"))
    if not bundle.models and (bundle.outputs or bundle.verdicts):
        # Items alone (``models: []``) are the input of an audit whose spec names the models.
        problems.append(Problem("models", "must contain at least one model"))

    items: dict[str, Item] = {}
    for i, item in enumerate(bundle.items):
        at = where("items", i, f"id={item.id!r}")
        if item.id in items:
            problems.append(Problem(f"{at}.id", f"duplicate item id {item.id!r}"))
        items[item.id] = item
        if len(item.options) < 2:
            problems.append(
                Problem(f"{at}.options", f"needs at least 2 options; got {len(item.options)}")
            )
        elif (message := _index_problem(item.gold, len(item.options))) is not None:
            problems.append(Problem(f"{at}.gold", message))

    models: set[str] = set()
    for i, model in enumerate(bundle.models):
        at = where("models", i, f"name={model.name!r}")
        if model.name in models:
            problems.append(Problem(f"{at}.name", f"duplicate model name {model.name!r}"))
        models.add(model.name)

    outputs: list[Output] = []
    seen_outputs: set[tuple[str, str, str | None]] = set()
    for i, output in enumerate(bundle.outputs):
        found: list[tuple[str, str]] = []  # (field, message); located only if any
        if output.model not in models:
            found.append((".model", f"unknown model {output.model!r}"))
        answered = items.get(output.item)
        if answered is None:
            found.append((".item", f"unknown item {output.item!r}"))
        output_key = (output.model, output.item, output.variant)
        if output_key in seen_outputs:
            found.append(("", "duplicate output for this model, item and variant"))
        seen_outputs.add(output_key)
        probs = output_value_problems(
            output, len(answered.options) if answered is not None else None, normalize, found
        )
        if found:
            at = where("outputs", i, f"model={output.model!r}, item={output.item!r}")
            problems.extend(Problem(f"{at}{field}", message) for field, message in found)
        outputs.append(
            output if probs is output.probs else output.model_copy(update={"probs": probs})
        )

    seen_verdicts: set[tuple[str, str, str, str | None]] = set()
    for i, verdict in enumerate(bundle.verdicts):
        found = []
        for field in ("judge", "candidate"):
            name = getattr(verdict, field)
            if name not in models:
                found.append((f".{field}", f"unknown model {name!r}"))
        if verdict.item not in items:
            found.append((".item", f"unknown item {verdict.item!r}"))
        verdict_key = (verdict.judge, verdict.candidate, verdict.item, verdict.variant)
        if verdict_key in seen_verdicts:
            found.append(("", "duplicate verdict for this judge, candidate, item and variant"))
        seen_verdicts.add(verdict_key)
        if found:
            at = where(
                "verdicts",
                i,
                f"judge={verdict.judge!r}, candidate={verdict.candidate!r}, item={verdict.item!r}",
            )
            problems.extend(Problem(f"{at}{field}", message) for field, message in found)

    problems.extend(_comparison_problems(bundle.comparisons, models, where))
    problems.extend(_label_problems(bundle.labels, models, set(items), where))

    if problems:
        raise BundleError(problems)
    if normalize == "none":
        return bundle
    return bundle.model_copy(update={"outputs": outputs})


def _comparison_problems(
    comparisons: list[Comparison], models: set[str], where: Any
) -> list[Problem]:
    """Problems of pairwise comparisons: unknown judge, malformed or equal candidate ids,
    a winner/gold/human choice that is neither candidate nor `tie`, duplicate annotators,
    duplicate comparisons (a repeated call is a `placebo` variant, not a duplicate)."""
    problems: list[Problem] = []
    seen: set[tuple[str, str, str, str]] = set()
    for i, comparison in enumerate(comparisons):
        found: list[tuple[str, str]] = []
        if comparison.judge not in models:
            found.append((".judge", f"unknown model {comparison.judge!r}"))
        for field in ("candidate_a", "candidate_b"):
            try:
                parse_candidate(getattr(comparison, field))
            except ValueError as error:
                found.append((f".{field}", str(error).removeprefix("candidate: ")))
        a, b = comparison.candidate_a, comparison.candidate_b
        if a == b:
            found.append((".candidate_b", f"must differ from candidate_a; both are {a!r}"))
        allowed = (a, b, TIE)
        for field in ("winner", "gold"):
            value = getattr(comparison, field)
            if value is not None and value not in allowed:
                found.append((f".{field}", f"must be {a!r}, {b!r}, 'tie' or null; got {value!r}"))
        annotators: set[str] = set()
        for h, choice in enumerate(comparison.human):
            if choice.annotator in annotators:
                found.append(
                    (f".human[{h}].annotator", f"duplicate annotator {choice.annotator!r}")
                )
            annotators.add(choice.annotator)
            if choice.choice is not None and choice.choice not in allowed:
                found.append(
                    (
                        f".human[{h}].choice",
                        f"must be {a!r}, {b!r}, 'tie' or null; got {choice.choice!r}",
                    )
                )
        key = (comparison.judge, comparison.item, a, b)
        if key in seen:
            found.append(("", "duplicate comparison for this judge, item and candidate order"))
        seen.add(key)
        if found:
            at = where(
                "comparisons",
                i,
                f"judge={comparison.judge!r}, item={comparison.item!r}, "
                f"candidate_a={a!r}, candidate_b={b!r}",
            )
            problems.extend(Problem(f"{at}{field}", message) for field, message in found)
    return problems


def _label_problems(
    labels: list[Label], models: set[str], items: set[str], where: Any
) -> list[Problem]:
    """Problems of three-way labels: unknown item or candidate, a duplicate label by one
    annotator (the outcome values themselves are checked by the schema)."""
    problems: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for i, label in enumerate(labels):
        found: list[tuple[str, str]] = []
        if label.item not in items:
            found.append((".item", f"unknown item {label.item!r}"))
        if label.candidate not in models:
            found.append((".candidate", f"unknown model {label.candidate!r}"))
        key = (label.item, label.candidate, label.annotator)
        if key in seen:
            found.append(("", "duplicate label for this item, candidate and annotator"))
        seen.add(key)
        if found:
            at = where(
                "labels",
                i,
                f"item={label.item!r}, candidate={label.candidate!r}, "
                f"annotator={label.annotator!r}",
            )
            problems.extend(Problem(f"{at}{field}", message) for field, message in found)
    return problems


def primary_view(bundle: Bundle) -> Bundle:
    """The bundle under the audit's primary prompt templates: outputs and verdicts that carry
    a template ``variant`` are left out (they feed prompt stability only), so every other
    measure sees at most one output per (model, item) and one verdict per (judge, candidate,
    item). Returns ``bundle`` itself when nothing carries a variant."""
    if all(o.variant is None for o in bundle.outputs) and all(
        v.variant is None for v in bundle.verdicts
    ):
        return bundle
    return bundle.model_copy(
        update={
            "outputs": [o for o in bundle.outputs if o.variant is None],
            "verdicts": [v for v in bundle.verdicts if v.variant is None],
        }
    )


# --- the array view used by the statistics -------------------------------------------------------


def response_matrix(bundle: Bundle, models: Iterable[str] | None = None) -> ResponseMatrix:
    """Stack a validated bundle's outputs into a `ResponseMatrix` (all items, given models).

    The chosen option of an output is its ``choice`` when given, else the argmax of its
    ``probs`` (ties to the lowest index). ``models`` selects and orders the rows (default: the
    bundle's models in order); outputs under a template ``variant`` are left out (see
    `primary_view`); naming a model twice or one not in the bundle is a `ValueError`.
    One pass over the outputs in Python, the rest vectorized.
    """
    known = [m.name for m in bundle.models]
    names = tuple(models) if models is not None else tuple(known)
    model_row = {name: row for row, name in enumerate(names)}
    if len(model_row) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"models: {duplicate!r} is named more than once")
    unknown = set(names).difference(known)
    if unknown:
        raise ValueError(f"models: {sorted(unknown)!r} not in the bundle")
    item_col = {item.id: col for col, item in enumerate(bundle.items)}
    counts = np.array([len(item.options) for item in bundle.items], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    gold = np.array([item.gold for item in bundle.items], dtype=np.int64)

    rows: list[int] = []
    cols: list[int] = []
    stated: list[int] = []  # the stated choice, -1 where only probs were given
    has_probs: list[bool] = []
    prob_lengths: list[int] = []
    flat_probs: list[float] = []
    for output in bundle.outputs:
        row = model_row.get(output.model)
        if row is None or output.variant is not None:  # template variants: prompt stability
            continue
        rows.append(row)
        cols.append(item_col[output.item])
        stated.append(-1 if output.choice is None else output.choice)
        has_probs.append(output.probs is not None)
        if output.probs is not None:
            prob_lengths.append(len(output.probs))
            flat_probs.extend(output.probs)

    n_models, n_items = len(names), len(bundle.items)
    row_of = np.array(rows, dtype=np.int64)
    col_of = np.array(cols, dtype=np.int64)
    choice_of = np.array(stated, dtype=np.int64)
    with_probs = np.array(has_probs, dtype=bool)
    lengths = np.array(prob_lengths, dtype=np.int64)
    if not np.array_equal(lengths, counts[col_of[with_probs]]):
        bad = int(np.flatnonzero(lengths != counts[col_of[with_probs]])[0])
        raise ValueError(
            f"outputs: an output for item {bundle.items[col_of[with_probs][bad]].id!r} has "
            f"{lengths[bad]} probabilities; the item has {counts[col_of[with_probs][bad]]} "
            "options (validate the bundle first)"
        )

    probs = np.zeros((n_models, int(offsets[-1])), dtype=np.float64)
    if lengths.size:
        values = np.array(flat_probs, dtype=np.float64)
        segment_start = np.cumsum(lengths) - lengths
        columns = np.repeat(offsets[col_of[with_probs]] - segment_start, lengths)
        columns += np.arange(values.size, dtype=np.int64)
        probs[np.repeat(row_of[with_probs], lengths), columns] = values
        argmax = _segment_argmax(values, lengths)
        unstated = choice_of[with_probs] < 0
        choice_of[np.flatnonzero(with_probs)[unstated]] = argmax[unstated]

    choice = np.full((n_models, n_items), -1, dtype=np.int64)
    present = np.zeros((n_models, n_items), dtype=bool)
    choice[row_of, col_of] = choice_of
    present[row_of, col_of] = True
    probabilistic = np.ones(n_models, dtype=bool)
    probabilistic[row_of[~with_probs]] = False
    probabilistic &= present.any(axis=1)
    discrete = np.flatnonzero(~probabilistic)
    if discrete.size:
        # A discrete-only model's row holds one-hot vectors of its choices.
        probs[discrete] = 0.0
        sub_rows, sub_cols = np.nonzero(present[discrete])
        model_rows = discrete[sub_rows]
        probs[model_rows, offsets[sub_cols] + choice[model_rows, sub_cols]] = 1.0
    return ResponseMatrix(
        models=names,
        items=tuple(item.id for item in bundle.items),
        offsets=offsets,
        gold=gold,
        probs=probs,
        choice=choice,
        present=present,
        probabilistic=probabilistic,
    )
