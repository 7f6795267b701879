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

import itertools
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Final, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.schemas.candidates import parse_candidate
from auditor.schemas.limits import MAX_CANDIDATE_ID_LENGTH, MAX_NAME_LENGTH
from auditor.schemas.problems import BundleError, Problem
from auditor.stats.responses import PROBABILITY_TOLERANCE, ResponseMatrix, segment_argmax

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

    @property
    def n_outputs(self) -> int:
        """Number of outputs (as `auditor.schemas.columns.BundleColumns` has it)."""
        return len(self.outputs)

    @property
    def n_verdicts(self) -> int:
        """Number of verdicts (as `auditor.schemas.columns.BundleColumns` has it)."""
        return len(self.verdicts)

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
    """The cross-record rules (`check_records`) over a bundle of typed records."""
    _check_normalize(normalize)

    def where(section: str, index: int, details: str) -> str:
        line = f"{record_lines[section][index]}, " if record_lines is not None else ""
        return f"{section}[{index}] ({line}{details})"

    outputs = _raw_outputs_of(bundle.outputs)
    checked = check_records(
        list(bundle.items),
        list(bundle.models),
        outputs,
        _raw_verdicts_of(bundle.verdicts),
        normalize,
        where,
        comparisons=bundle.comparisons,
        labels=bundle.labels,
    )
    if checked.problems:
        raise BundleError(checked.problems)
    if normalize == "none":
        return bundle
    values = checked.output_probs
    ends = np.cumsum(outputs.lengths).tolist()
    starts = [end - length for end, length in zip(ends, outputs.lengths.tolist(), strict=True)]
    return bundle.model_copy(
        update={
            "outputs": [
                output
                if output.probs is None
                else output.model_copy(update={"probs": values[start:end].tolist()})
                for output, start, end in zip(bundle.outputs, starts, ends, strict=True)
            ]
        }
    )


def _raw_outputs_of(outputs: list[Output]) -> RawOutputs:
    """Typed output records as columns (all kept: pydantic has validated each one)."""
    n = len(outputs)
    model, model_names = _factorize([o.model for o in outputs])
    item, item_names = _factorize([o.item for o in outputs])
    probs = [o.probs for o in outputs]
    choices = [o.choice for o in outputs]
    responses = [o.response for o in outputs]
    variants = [o.variant for o in outputs]
    limit = int(np.iinfo(np.int64).max)  # a choice beyond int64 is out of range all the same
    return RawOutputs(
        model=model,
        model_names=model_names,
        item=item,
        item_names=item_names,
        has_probs=np.fromiter((p is not None for p in probs), bool, n),
        lengths=np.fromiter((0 if p is None else len(p) for p in probs), np.int64, n),
        values=np.fromiter(
            itertools.chain.from_iterable(p for p in probs if p is not None), np.float64
        ),
        has_choice=np.fromiter((c is not None for c in choices), bool, n),
        choice=np.fromiter(
            (-1 if c is None else max(-limit, min(c, limit)) for c in choices), np.int64, n
        ),
        response=responses if any(r is not None for r in responses) else None,
        keep=np.ones(n, dtype=bool),
        variant=variants if any(v is not None for v in variants) else None,
    )


def _raw_verdicts_of(verdicts: list[Verdict]) -> RawVerdicts:
    """Typed verdict records as columns (all kept)."""
    n = len(verdicts)
    codes, names = _factorize([v.judge for v in verdicts] + [v.candidate for v in verdicts])
    item, item_names = _factorize([v.item for v in verdicts])
    raws = [v.raw for v in verdicts]
    variants = [v.variant for v in verdicts]
    return RawVerdicts(
        judge=codes[:n],
        candidate=codes[n:],
        item=item,
        names=names,
        item_names=item_names,
        value=np.fromiter((-1 if v.verdict is None else v.verdict for v in verdicts), np.int8, n),
        raw=raws if any(r is not None for r in raws) else None,
        keep=np.ones(n, dtype=bool),
        variant=variants if any(v is not None for v in variants) else None,
    )


def check_records(
    items: list[Item],
    models: list[ModelInfo],
    outputs: RawOutputs,
    verdicts: RawVerdicts,
    normalize: Normalization,
    where: Callable[[str, int, str], str],
    *,
    record_problems: Sequence[tuple[str, list[tuple[int, Problem]]]] = (),
    header_valid: bool = True,
    comparisons: Sequence[Comparison] = (),
    labels: Sequence[Label] = (),
) -> CheckedRecords:
    """THE cross-record rules of a bundle, for every way of reading one (typed records here,
    JSON documents, JSONL records and Parquet tables in `auditor.schemas.columns`): items and
    models (`_header_problems`), outputs (`check_outputs`), verdicts (`check_verdicts`),
    comparisons and labels. Returns every problem in record order (``record_problems``, the
    per-record pydantic ones of outputs and verdicts, merged in), and the codes and the
    outputs' flat probabilities (normalized as ``normalize`` says), meaningful when there is
    no problem. ``where(section, index, details)`` words a
    record's location. When an item or model record itself is invalid (``header_valid``
    False) nothing is checked against the items and models: every reference would look
    unknown.
    """
    problems: list[Problem] = []
    if header_valid:
        has_records = bool(outputs.keep.size or verdicts.keep.size)
        problems += _header_problems(items, models, where, bool(comparisons), has_records)
    else:
        outputs.keep[:] = False
        verdicts.keep[:] = False
    output_problems: list[tuple[int, Problem]] = []
    verdict_problems: list[tuple[int, Problem]] = []
    for section, found in record_problems:
        (output_problems if section == "outputs" else verdict_problems).extend(found)
    model, item, values = check_outputs(
        outputs, items, models, normalize, lambda k, d: where("outputs", k, d), output_problems
    )
    judge, candidate, verdict_item = check_verdicts(
        verdicts, items, models, lambda k, d: where("verdicts", k, d), verdict_problems
    )
    problems += [p for _, p in sorted(output_problems, key=lambda e: e[0])]
    problems += [p for _, p in sorted(verdict_problems, key=lambda e: e[0])]
    if header_valid:
        names = {m.name for m in models}
        problems += _comparison_problems(list(comparisons), names, where)
        problems += _label_problems(list(labels), names, {i.id for i in items}, where)
    return CheckedRecords(problems, model, item, values, judge, candidate, verdict_item)


@dataclass(frozen=True, eq=False)
class CheckedRecords:
    """What `check_records` found: the problems, and the records coded against items/models."""

    problems: list[Problem]
    output_model: np.ndarray
    output_item: np.ndarray
    output_probs: np.ndarray
    verdict_judge: np.ndarray
    verdict_candidate: np.ndarray
    verdict_item: np.ndarray


# --- the rules, vectorized over columns ---------------------------------------------------------


_SUM_MARGIN: Final = 1e-12
"""A vectorized sum within ``PROBABILITY_TOLERANCE - _SUM_MARGIN`` of 1 is accepted at once; the
exact sum (``math.fsum``) decides the rest, as the record-by-record path does."""


def _int_column(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64) if values else np.zeros(0, dtype=np.int64)


@dataclass
class RawOutputs:
    """Outputs as read, names not yet resolved: ``model``/``item`` are codes into
    ``model_names``/``item_names`` (the distinct strings in order of appearance); ``keep``
    is False for records already reported (their pydantic problems are in the problem list)."""

    model: np.ndarray
    model_names: list[str]
    item: np.ndarray
    item_names: list[str]
    has_probs: np.ndarray
    lengths: np.ndarray
    values: np.ndarray
    has_choice: np.ndarray
    choice: np.ndarray
    response: list[str | None] | None
    keep: np.ndarray
    variant: list[str | None] | None = None


@dataclass
class RawVerdicts:
    """Verdicts as read (see `RawOutputs`); ``value`` is -1 where null."""

    judge: np.ndarray
    candidate: np.ndarray
    item: np.ndarray
    names: list[str]
    item_names: list[str]
    value: np.ndarray
    raw: list[str | None] | None
    keep: np.ndarray
    variant: list[str | None] | None = None


def _factorize(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Codes into the distinct values in order of appearance (C-level loops: map, fromkeys)."""
    uniques = list(dict.fromkeys(values))
    index = {value: k for k, value in enumerate(uniques)}
    return np.fromiter(map(index.__getitem__, values), np.int64, len(values)), uniques


def _check_normalize(normalize: str) -> None:
    if normalize not in get_args(Normalization):
        raise ValueError(
            f"normalize: must be one of {', '.join(get_args(Normalization))}; got {normalize!r}"
        )


def _header_problems(
    items: list[Item],
    models: list[ModelInfo],
    where: Callable[[str, int, str], str],
    has_comparisons: bool = False,
    has_records: bool = True,
) -> list[Problem]:
    """The rules on items and models, as `validate_bundle` words them (they are few: a loop)."""
    problems: list[Problem] = []
    if not items and not has_comparisons:
        problems.append(Problem("items", "must contain at least one item (or comparisons)"))
    if not models and has_records:
        # Items alone (``models: []``) are the input of an audit whose spec names the models.
        problems.append(Problem("models", "must contain at least one model"))
    seen: set[str] = set()
    for i, item in enumerate(items):
        at = where("items", i, f"id={item.id!r}")
        if item.id in seen:
            problems.append(Problem(f"{at}.id", f"duplicate item id {item.id!r}"))
        seen.add(item.id)
        if len(item.options) < 2:
            problems.append(
                Problem(f"{at}.options", f"needs at least 2 options; got {len(item.options)}")
            )
        elif (message := _index_problem(item.gold, len(item.options))) is not None:
            problems.append(Problem(f"{at}.gold", message))
    names: set[str] = set()
    for i, model in enumerate(models):
        if model.name in names:
            at = where("models", i, f"name={model.name!r}")
            problems.append(Problem(f"{at}.name", f"duplicate model name {model.name!r}"))
        names.add(model.name)
    return problems


def _variant_codes(variants: list[str | None] | None, n: int) -> tuple[np.ndarray, int]:
    """Codes of the ``variant`` column (null is a value of its own) and how many there are."""
    if variants is None:
        return np.zeros(n, dtype=np.int64), 1
    codes, uniques = _factorize(variants)  # type: ignore[arg-type]
    return codes, len(uniques)


def _later_duplicates(key: np.ndarray) -> np.ndarray:
    """Indices whose key appeared at a lower index already (every repeat after the first)."""
    if key.size < 2:
        return np.zeros(0, dtype=np.int64)
    # A dense count is cheaper than sorting, and almost every bundle has no duplicate.
    if int(key.max()) < 4 * key.size and not (np.bincount(key) > 1).any():
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(key, kind="stable")
    repeat = np.flatnonzero(key[order][1:] == key[order][:-1]) + 1
    return np.sort(order[repeat])


def _lookup(names: list[str], index: dict[str, int]) -> np.ndarray:
    """Code of each name in ``index``, -1 where unknown."""
    return _int_column([index.get(name, -1) for name in names])


def _segment_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    sums = np.zeros(lengths.size, dtype=np.float64)
    nonempty = lengths > 0
    if values.size:
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        sums[nonempty] = np.add.reduceat(values, starts)
    return sums


def _probability_checks(
    values: np.ndarray, lengths: np.ndarray, normalize: Normalization
) -> tuple[np.ndarray, np.ndarray]:
    """Flag the segments that may be invalid, and the (normalized) values.

    Returns ``(suspect, values)``: ``suspect`` marks every segment the exact scalar rules might
    reject (a superset: the caller re-checks those with `auditor.schemas.bundle._normalized`);
    values of unflagged segments are final. Sum normalization divides by a pairwise float sum rather
    than `math.fsum`: equal within a few units in the last place.
    """
    n = lengths.size
    suspect = np.zeros(n, dtype=bool)
    if values.size == 0:
        return suspect, values
    if normalize == "none":
        # Per-segment sums and minima only (no temporary as large as the values): a NaN or an
        # infinity makes the sum non-finite, a negative value shows in the minimum.
        width = int(lengths[0])
        if width > 0 and values.size == n * width and bool((lengths == width).all()):
            # every segment as long: the segments are the rows of a view
            rows = values.reshape(n, width)
            with np.errstate(invalid="ignore", over="ignore"):
                suspect |= ~(np.abs(rows.sum(axis=1) - 1.0) <= PROBABILITY_TOLERANCE - _SUM_MARGIN)
                suspect |= rows.min(axis=1) < 0
            return suspect, values
        nonempty = lengths > 0
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        with np.errstate(invalid="ignore", over="ignore"):
            totals = np.zeros(n)
            totals[nonempty] = np.add.reduceat(values, starts)
            minima = np.zeros(n)
            minima[nonempty] = np.minimum.reduceat(values, starts)
        suspect |= ~(np.abs(totals - 1.0) <= PROBABILITY_TOLERANCE - _SUM_MARGIN)
        suspect |= minima < 0
        return suspect, values
    segment = np.repeat(np.arange(n), lengths)
    if normalize == "softmax":
        bad = np.isnan(values) | (values == np.inf)
        suspect[segment[bad]] = True
        starts = (np.cumsum(lengths) - lengths)[lengths > 0]
        top = np.full(n, -np.inf)
        top[lengths > 0] = np.maximum.reduceat(values, starts)
        suspect |= (lengths > 0) & ~np.isfinite(top)  # every value -inf (or bad)
        shift = np.where(np.isfinite(top), top, 0.0)
        with np.errstate(invalid="ignore", over="ignore"):
            exps = np.exp(values - shift[segment])
            totals = _segment_sums(exps, lengths)
            out = exps / totals[segment]
        return suspect, out
    bad = ~np.isfinite(values) | (values < 0)
    suspect[segment[bad]] = True
    with np.errstate(invalid="ignore", over="ignore"):
        totals = _segment_sums(values, lengths)
    suspect |= ~(totals > 0) | ~np.isfinite(totals)  # normalize == "sum"
    with np.errstate(invalid="ignore", divide="ignore"):
        out = values / totals[segment]
    return suspect, out


@dataclass
class _Found:
    """Problems keyed for ordering: (record index, rule order, path suffix, message)."""

    entries: list[tuple[int, int, str, str]] = dataclass_field(default_factory=list)

    def add(self, indices: Iterable[int], rule: int, suffix: str, message: Callable[[int], str]):
        self.entries.extend((int(k), rule, suffix, message(int(k))) for k in indices)


def check_outputs(
    raw: RawOutputs,
    items: list[Item],
    models: list[ModelInfo],
    normalize: Normalization,
    details_location: Callable[[int, str], str],
    problems: list[tuple[int, Problem]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the cross-record rules of outputs; return (model codes, item codes, values).

    Appends located problems to ``problems``; the returned arrays are meaningful only when no
    problem was found.
    """
    model_index = {m.name: k for k, m in enumerate(models)}
    item_index = {item.id: k for k, item in enumerate(items)}  # a repeated id: the last wins
    model_of_name = _lookup(raw.model_names, model_index)
    item_of_name = _lookup(raw.item_names, item_index)
    model = model_of_name[raw.model]
    item = item_of_name[raw.item]
    keep = raw.keep
    counts = np.fromiter((len(i.options) for i in items), np.int64, len(items))
    n_options = np.where(item >= 0, counts[np.maximum(item, 0)] if counts.size else 0, -1)
    found = _Found()
    found.add(
        np.flatnonzero(keep & (model < 0)),
        0,
        ".model",
        lambda k: f"unknown model {raw.model_names[raw.model[k]]!r}",
    )
    found.add(
        np.flatnonzero(keep & (item < 0)),
        1,
        ".item",
        lambda k: f"unknown item {raw.item_names[raw.item[k]]!r}",
    )
    # Duplicates are judged on the names as written (unknown ones included), as in the loop.
    pair = raw.model * max(len(raw.item_names), 1) + raw.item
    if raw.variant is not None:
        variant, n_variants = _variant_codes(raw.variant, raw.model.size)
        pair = pair * n_variants + variant
        del variant
    if keep.all():  # the usual case: no gathered copies of the keys
        repeated = _later_duplicates(pair)
    else:
        kept = np.flatnonzero(keep)
        repeated = kept[_later_duplicates(pair[kept])]
        del kept
    del pair  # a large temporary: peak memory of a bundle of millions of outputs
    found.add(repeated, 2, "", lambda k: "duplicate output for this model, item and variant")
    found.add(
        np.flatnonzero(keep & ~raw.has_probs & ~raw.has_choice),
        3,
        "",
        lambda k: "needs `probs`, `choice`, or both",
    )
    checked = keep & (n_options >= 2)
    with_probs = raw.has_probs
    wrong_length = checked & with_probs & (raw.lengths != n_options)
    found.add(
        np.flatnonzero(wrong_length),
        4,
        ".probs",
        lambda k: f"has {raw.lengths[k]} values but the item has {n_options[k]} options",
    )
    suspect, values = _probability_checks(raw.values, raw.lengths[with_probs], normalize)
    flagged = np.flatnonzero(with_probs)[suspect]
    flagged = flagged[checked[flagged] & ~wrong_length[flagged]]
    starts = np.cumsum(raw.lengths) - raw.lengths if flagged.size else raw.lengths
    messages: dict[int, str] = {}
    for k in flagged.tolist():
        start, stop = int(starts[k]), int(starts[k] + raw.lengths[k])
        result = _normalized(raw.values[start:stop].tolist(), normalize)
        if isinstance(result, str):
            messages[k] = result
        else:  # the exact rules accept it: their values are the ones kept
            values[start:stop] = result
    found.add(sorted(messages), 5, ".probs", messages.__getitem__)
    bad_choice = checked & raw.has_choice & ((raw.choice < 0) | (raw.choice >= n_options))
    found.add(
        np.flatnonzero(bad_choice),
        6,
        ".choice",
        lambda k: _index_problem(int(raw.choice[k]), int(n_options[k])) or "",
    )
    for k, _, suffix, message in sorted(found.entries, key=lambda e: (e[0], e[1])):
        location = details_location(
            k, f"model={raw.model_names[raw.model[k]]!r}, item={raw.item_names[raw.item[k]]!r}"
        )
        problems.append((k, Problem(f"{location}{suffix}", message)))
    return model, item, values


def check_verdicts(
    raw: RawVerdicts,
    items: list[Item],
    models: list[ModelInfo],
    details_location: Callable[[int, str], str],
    problems: list[tuple[int, Problem]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply the cross-record rules of verdicts; return (judge, candidate, item) codes."""
    model_index = {m.name: k for k, m in enumerate(models)}
    item_index = {item.id: k for k, item in enumerate(items)}  # a repeated id: the last wins
    model_of_name = _lookup(raw.names, model_index)
    item_of_name = _lookup(raw.item_names, item_index)
    judge, candidate = model_of_name[raw.judge], model_of_name[raw.candidate]
    item = item_of_name[raw.item]
    keep = raw.keep
    found = _Found()
    found.add(
        np.flatnonzero(keep & (judge < 0)),
        0,
        ".judge",
        lambda k: f"unknown model {raw.names[raw.judge[k]]!r}",
    )
    found.add(
        np.flatnonzero(keep & (candidate < 0)),
        1,
        ".candidate",
        lambda k: f"unknown model {raw.names[raw.candidate[k]]!r}",
    )
    found.add(
        np.flatnonzero(keep & (item < 0)),
        2,
        ".item",
        lambda k: f"unknown item {raw.item_names[raw.item[k]]!r}",
    )
    n_names, n_items = max(len(raw.names), 1), max(len(raw.item_names), 1)
    variant, n_variants = _variant_codes(raw.variant, raw.judge.size)
    key = ((raw.judge * n_names + raw.candidate) * n_items + raw.item) * n_variants + variant
    kept = np.flatnonzero(keep)
    found.add(
        kept[_later_duplicates(key[kept])],
        3,
        "",
        lambda k: "duplicate verdict for this judge, candidate, item and variant",
    )
    for k, _, suffix, message in sorted(found.entries, key=lambda e: (e[0], e[1])):
        location = details_location(
            k,
            f"judge={raw.names[raw.judge[k]]!r}, candidate={raw.names[raw.candidate[k]]!r}, "
            f"item={raw.item_names[raw.item[k]]!r}",
        )
        problems.append((k, Problem(f"{location}{suffix}", message)))
    return judge, candidate, item


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
        argmax = segment_argmax(values, lengths)
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
