"""The evaluation bundle as columns: the fast way to load, validate and analyze large bundles.

A `Bundle` holds one pydantic object per output and verdict; building 100,000 of them costs
seconds, while the statistics only need integer codes and one flat array of probabilities.
`BundleColumns` is that array view: ``outputs`` and ``verdicts`` as numpy columns coded against
the bundle's ``models`` and ``items`` (which stay pydantic records: they are few).

`columns_from_document` and `columns_from_records` read decoded JSON (or JSONL records) and
apply exactly the rules of `auditor.schemas.bundle.validate_bundle`, column-wise with numpy, and
report every problem at once with the texts of the record-by-record path: a record whose fields are
not plainly typed (a string where a number belongs, an unknown field) is validated by its pydantic
model, so its problems read the same; the cross-record rules (unknown references, duplicates,
option counts, probabilities, indices) run vectorized over all remaining records, and only the
flagged records are formatted. A document with sections this module does not know (added to
`Bundle` later) is handed to the record-by-record path whole, so nothing is ever accepted here
that `validate_bundle` would reject.

`response_matrix_from_columns` stacks the columns into the `ResponseMatrix` the statistics use
without a Python loop over outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from pydantic import BaseModel, ValidationError

from auditor.schemas.bundle import (
    SCHEMA_VERSION,
    Bundle,
    BundleError,
    Comparison,
    Item,
    Label,
    ModelInfo,
    Normalization,
    Output,
    Problem,
    RawOutputs,
    RawVerdicts,
    Verdict,
    _check_normalize,
    _factorize,
    _int_column,
    _pydantic_problems,
    check_records,
    validate_bundle,
)
from auditor.schemas.canonical import canonical_sha256
from auditor.stats.responses import ResponseMatrix, segment_argmax

__all__ = [
    "BundleColumns",
    "bundle_columns",
    "bundle_sha256",
    "canonical_json",
    "columns_from_document",
    "columns_from_records",
    "columns_sha256",
    "response_matrix_from_columns",
]

_OUTPUT_FIELDS: Final = frozenset({"model", "item", "probs", "choice", "response", "variant"})
_VERDICT_FIELDS: Final = frozenset({"judge", "candidate", "item", "verdict", "raw", "variant"})
_DOCUMENT_FIELDS: Final = frozenset(
    {"schema_version", "items", "models", "outputs", "verdicts", "comparisons", "labels"}
)
_SECTIONS: Final = {
    "item": "items",
    "model": "models",
    "output": "outputs",
    "verdict": "verdicts",
    "comparison": "comparisons",
    "label": "labels",
}
"""JSONL record kinds and their sections, in the order `auditor.schemas.bundle` names them."""
_RECORD_KINDS: Final[dict[str, type[BaseModel]]] = {
    "item": Item,
    "model": ModelInfo,
    "comparison": Comparison,
    "label": Label,
}
"""Kinds kept as pydantic records (few; validated by their models and `auditor.schemas.bundle`'s
rules)."""
_MISSING: Final = object()


def fast_path_matches_schema() -> bool:
    """True when `Output`, `Verdict` and `Bundle` have exactly the fields (and plain types) this
    module was written for; otherwise every load takes the record-by-record path."""
    return (
        set(Output.model_fields) == _OUTPUT_FIELDS
        and set(Verdict.model_fields) == _VERDICT_FIELDS
        and set(Bundle.model_fields) == _DOCUMENT_FIELDS
        # Constraints are only the ones checked here: a non-empty `variant`.
        and all(not i.metadata for n, i in Output.model_fields.items() if n != "variant")
        and all(not i.metadata for n, i in Verdict.model_fields.items() if n != "variant")
    )


# --- the columnar bundle -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BundleColumns:
    """A validated bundle with ``outputs`` and ``verdicts`` as columns.

    Codes index ``models`` and ``items``. An output's probabilities (when it has them:
    ``output_has_probs``) are the next ``len(item.options)`` values of ``output_probs``, in
    output order. ``output_choice`` and ``verdict_value`` are -1 where null. ``output_response``,
    ``output_variant``, ``verdict_raw`` and ``verdict_variant`` are None when every value is
    null. ``comparisons`` and ``labels`` stay records.
    """

    items: list[Item]
    models: list[ModelInfo]
    output_model: np.ndarray
    output_item: np.ndarray
    output_has_probs: np.ndarray
    output_probs: np.ndarray
    output_choice: np.ndarray
    output_response: list[str | None] | None
    verdict_judge: np.ndarray
    verdict_candidate: np.ndarray
    verdict_item: np.ndarray
    verdict_value: np.ndarray
    verdict_raw: list[str | None] | None
    output_variant: list[str | None] | None = None
    verdict_variant: list[str | None] | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION
    option_counts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        counts = np.fromiter((len(i.options) for i in self.items), np.int64, len(self.items))
        object.__setattr__(self, "option_counts", counts)

    @property
    def n_outputs(self) -> int:
        return int(self.output_model.size)

    @property
    def n_verdicts(self) -> int:
        return int(self.verdict_value.size)

    def primary_outputs(self) -> np.ndarray:
        """Mask of the outputs under the primary prompt template (no ``variant``), the ones
        every measure but prompt stability reads (`auditor.schemas.bundle.primary_view`)."""
        if self.output_variant is None:
            return np.ones(self.n_outputs, dtype=bool)
        return np.array([v is None for v in self.output_variant], dtype=bool)

    def primary_verdicts(self) -> np.ndarray:
        """Mask of the verdicts under the primary judge template (no ``variant``)."""
        if self.verdict_variant is None:
            return np.ones(self.n_verdicts, dtype=bool)
        return np.array([v is None for v in self.verdict_variant], dtype=bool)

    def probs_offsets(self) -> np.ndarray:
        """Start of each output's probabilities in ``output_probs`` (n_outputs + 1 entries;
        an output without probabilities has an empty range)."""
        lengths = np.where(self.output_has_probs, self.option_counts[self.output_item], 0)
        offsets = np.zeros(lengths.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return offsets

    def chosen_options(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The option each output chose (int64, -1 = none): its stated ``choice``, else the
        argmax of its probabilities with ties to the lowest index (the rule of
        `response_matrix_from_columns`). ``rows`` (output indices) selects the outputs; None:
        all. When every item has as many options, the probabilities are read as one
        (outputs x options) view: no temporary per probability, whatever ``rows`` selects."""
        chosen = self.output_choice.copy() if rows is None else self.output_choice[rows]
        has_probs = self.output_has_probs if rows is None else self.output_has_probs[rows]
        unstated = np.flatnonzero((chosen < 0) & has_probs)
        if unstated.size == 0:
            return chosen
        outputs = unstated if rows is None else rows[unstated]
        counts = self.option_counts
        if bool((counts == counts[0]).all()):
            # output k's probabilities are row (number of outputs with probabilities before k)
            ranks = outputs
            if not bool(self.output_has_probs.all()):
                ranks = np.cumsum(self.output_has_probs)[outputs] - 1
            width = int(counts[0])
            view = self.output_probs.reshape(-1, width)
            if ranks.size * width < view.shape[0]:  # a few rows: copy just those
                chosen[unstated] = view[ranks].argmax(axis=1)
            else:  # many: one pass over the view, one integer per output
                chosen[unstated] = view.argmax(axis=1)[ranks]
            return chosen
        offsets = self.probs_offsets()
        starts = offsets[outputs]
        lengths = offsets[outputs + 1] - starts
        segment = np.repeat(np.cumsum(lengths) - lengths, lengths)
        gathered = np.repeat(starts, lengths) + np.arange(int(lengths.sum())) - segment
        chosen[unstated] = segment_argmax(self.output_probs[gathered], lengths)
        return chosen

    def to_bundle(self) -> Bundle:
        """The record form (one pydantic object per output and verdict; slow for large bundles)."""
        names = [m.name for m in self.models]
        ids = [i.id for i in self.items]
        offsets = self.probs_offsets().tolist()
        values = self.output_probs.tolist()
        responses = self.output_response or itertools.repeat(None)
        output_variants = self.output_variant or itertools.repeat(None)
        outputs: list[dict[str, Any]] = [
            {
                "model": names[m],
                "item": ids[i],
                "probs": values[offsets[k] : offsets[k + 1]] if has else None,
                "choice": None if c < 0 else c,
                "response": r,
                "variant": variant,
            }
            for k, (m, i, has, c, r, variant) in enumerate(
                zip(
                    self.output_model.tolist(),
                    self.output_item.tolist(),
                    self.output_has_probs.tolist(),
                    self.output_choice.tolist(),
                    responses,
                    output_variants,
                    strict=False,
                )
            )
        ]
        raws = self.verdict_raw or itertools.repeat(None)
        verdict_variants = self.verdict_variant or itertools.repeat(None)
        verdicts: list[dict[str, Any]] = [
            {
                "judge": names[j],
                "candidate": names[c],
                "item": ids[i],
                "verdict": None if v < 0 else v,
                "raw": r,
                "variant": variant,
            }
            for j, c, i, v, r, variant in zip(
                self.verdict_judge.tolist(),
                self.verdict_candidate.tolist(),
                self.verdict_item.tolist(),
                self.verdict_value.tolist(),
                raws,
                verdict_variants,
                strict=False,
            )
        ]
        # One validation of the whole document: pydantic's loop runs in Rust.
        return Bundle.model_validate(
            {
                "schema_version": self.schema_version,
                "items": list(self.items),
                "models": list(self.models),
                "outputs": outputs,
                "verdicts": verdicts,
                "comparisons": list(self.comparisons),
                "labels": list(self.labels),
            }
        )


def bundle_columns(bundle: Bundle) -> BundleColumns:
    """The columns of a validated `Bundle` (one pass per attribute over its records)."""
    model_code = {m.name: k for k, m in enumerate(bundle.models)}
    item_code = {i.id: k for k, i in enumerate(bundle.items)}
    outputs, verdicts = bundle.outputs, bundle.verdicts
    probs = [o.probs for o in outputs]
    responses = [o.response for o in outputs]
    raws = [v.raw for v in verdicts]
    output_variants = [o.variant for o in outputs]
    verdict_variants = [v.variant for v in verdicts]
    return BundleColumns(
        items=list(bundle.items),
        models=list(bundle.models),
        output_model=_int_column([model_code[o.model] for o in outputs]),
        output_item=_int_column([item_code[o.item] for o in outputs]),
        output_has_probs=np.array([p is not None for p in probs], dtype=bool),
        output_probs=np.array(
            list(itertools.chain.from_iterable(p for p in probs if p is not None)),
            dtype=np.float64,
        ),
        output_choice=_int_column([-1 if o.choice is None else o.choice for o in outputs]),
        output_response=responses if any(r is not None for r in responses) else None,
        verdict_judge=_int_column([model_code[v.judge] for v in verdicts]),
        verdict_candidate=_int_column([model_code[v.candidate] for v in verdicts]),
        verdict_item=_int_column([item_code[v.item] for v in verdicts]),
        verdict_value=np.array(
            [-1 if v.verdict is None else v.verdict for v in verdicts], dtype=np.int8
        ),
        verdict_raw=raws if any(r is not None for r in raws) else None,
        output_variant=output_variants if _any_not_none(output_variants) else None,
        verdict_variant=verdict_variants if _any_not_none(verdict_variants) else None,
        comparisons=list(bundle.comparisons),
        labels=list(bundle.labels),
        schema_version=bundle.schema_version,
    )


# --- raw columns, before the cross-record rules --------------------------------------------------


def _field(records: list[dict[str, Any]], name: str, default: Any = None) -> list[Any]:
    """``record.get(name, default)`` of every record (map over dict.get runs at C speed)."""
    return list(map(dict.get, records, itertools.repeat(name), itertools.repeat(default)))


class _Fallback(Exception):
    """The input needs the record-by-record path (an unusual value the columns do not carry)."""


def _types(values: Iterable[Any]) -> set[type]:
    return set(map(type, values))


def _not_none(values: list[Any]) -> Iterable[bool]:
    """``value is not None`` for each value (C-level: operator.is_not over a repeat)."""
    return map(operator.is_not, values, itertools.repeat(None))


def _any_not_none(values: list[Any]) -> bool:
    return values.count(None) != len(values)


def _plain_variants(plain: list[bool], variants: list[Any]) -> list[bool]:
    """A ``variant`` is plain when null or a non-empty string (the schema's `min_length=1`)."""
    if not _any_not_none(variants):
        return plain
    return [
        ok and (v is None or (type(v) is str and v != ""))
        for ok, v in zip(plain, variants, strict=True)
    ]


def raw_outputs(
    records: list[Any], location: Callable[[int], str], problems: list[tuple[int, Problem]]
) -> RawOutputs:
    """Read output records (decoded JSON objects) into columns.

    A record that is not a plain object of plainly typed fields is validated by `Output`
    itself: its problems go to ``problems`` (keyed by its index) in pydantic's words, or, when
    pydantic accepts it (lax numbers such as ``"0.5"``), its validated values are used.
    """
    n = len(records)
    plain = [True] * n
    if _types(records) != {dict} and n:
        plain = [type(r) is dict for r in records]
    dicts = [r if ok else {} for r, ok in zip(records, plain, strict=True)]
    keys: set[str] = set().union(*dicts) if dicts else set()
    if not keys <= _OUTPUT_FIELDS:
        plain = [ok and r.keys() <= _OUTPUT_FIELDS for r, ok in zip(dicts, plain, strict=True)]
    models = _field(dicts, "model")
    items = _field(dicts, "item")
    probs = _field(dicts, "probs")
    choices = _field(dicts, "choice")
    responses = _field(dicts, "response")
    variants = _field(dicts, "variant")
    if _types(models) != {str} or _types(items) != {str}:
        plain = [
            ok and type(m) is str and type(i) is str
            for ok, m, i in zip(plain, models, items, strict=True)
        ]
    if not _types(probs) <= {list, type(None)}:
        plain = [ok and (p is None or type(p) is list) for ok, p in zip(plain, probs, strict=True)]
        probs = [p if type(p) is list else None for p in probs]
    flat = list(itertools.chain.from_iterable(filter(None, probs)))
    if not _types(flat) <= {float, int}:
        plain = [
            ok and (p is None or _types(p) <= {float, int})
            for ok, p in zip(plain, probs, strict=True)
        ]
    if not _types(choices) <= {int, type(None)}:
        plain = [ok and (c is None or type(c) is int) for ok, c in zip(plain, choices, strict=True)]
    if not _types(responses) <= {str, type(None)}:
        plain = [
            ok and (r is None or type(r) is str) for ok, r in zip(plain, responses, strict=True)
        ]
    plain = _plain_variants(plain, variants)
    keep = [True] * n
    plain_all = all(plain)
    for k in [k for k, ok in enumerate(plain) if not ok]:
        try:
            output = Output.model_validate(records[k])
        except ValidationError as error:
            problems.extend((k, p) for p in _pydantic_problems(error, location(k)))
            keep[k] = False
            models[k], items[k], probs[k], choices[k], responses[k] = "", "", None, None, None
            variants[k] = None
            continue
        models[k], items[k], probs[k] = output.model, output.item, output.probs
        choices[k], responses[k] = output.choice, output.response
        variants[k] = output.variant
    if not plain_all:
        flat = list(itertools.chain.from_iterable(filter(None, probs)))
    has_probs = np.fromiter(_not_none(probs), bool, n)
    lengths = np.zeros(n, dtype=np.int64)
    lengths[has_probs] = np.fromiter(map(len, itertools.compress(probs, has_probs)), np.int64)
    has_choice = np.fromiter(_not_none(choices), bool, n)
    try:
        values = np.array(flat, dtype=np.float64)
        choice = np.full(n, -1, dtype=np.int64)
        if has_choice.all():
            choice = np.array(choices, dtype=np.int64)
        elif has_choice.any():
            choice[has_choice] = np.array(
                list(itertools.compress(choices, has_choice)), dtype=np.int64
            )
    except OverflowError:  # an integer beyond int64 / float64: rare, let pydantic word it
        raise _Fallback from None
    model, model_names = _factorize(models)
    item, item_names = _factorize(items)
    return RawOutputs(
        model=model,
        model_names=model_names,
        item=item,
        item_names=item_names,
        has_probs=has_probs,
        lengths=lengths,
        values=values,
        has_choice=has_choice,
        choice=choice,
        response=responses if _any_not_none(responses) else None,
        keep=np.array(keep, dtype=bool),
        variant=variants if _any_not_none(variants) else None,
    )


def raw_verdicts(
    records: list[Any], location: Callable[[int], str], problems: list[tuple[int, Problem]]
) -> RawVerdicts:
    """Read verdict records into columns (see `raw_outputs`)."""
    n = len(records)
    plain = [True] * n
    if _types(records) != {dict} and n:
        plain = [type(r) is dict for r in records]
    dicts = [r if ok else {} for r, ok in zip(records, plain, strict=True)]
    keys: set[str] = set().union(*dicts) if dicts else set()
    if not keys <= _VERDICT_FIELDS:
        plain = [ok and r.keys() <= _VERDICT_FIELDS for r, ok in zip(dicts, plain, strict=True)]
    judges = _field(dicts, "judge")
    candidates = _field(dicts, "candidate")
    items = _field(dicts, "item")
    values = _field(dicts, "verdict", _MISSING)
    raws = _field(dicts, "raw")
    variants = _field(dicts, "variant")
    for column in (judges, candidates, items):
        if _types(column) != {str}:
            plain = [ok and type(v) is str for ok, v in zip(plain, column, strict=True)]
    if not _types(values) <= {int, type(None)} or not set(values) <= {0, 1, None}:
        plain = [
            ok and (v is None or (type(v) is int and v in (0, 1)))
            for ok, v in zip(plain, values, strict=True)
        ]
    if not _types(raws) <= {str, type(None)}:
        plain = [ok and (r is None or type(r) is str) for ok, r in zip(plain, raws, strict=True)]
    plain = _plain_variants(plain, variants)
    keep = [True] * n
    for k in [k for k, ok in enumerate(plain) if not ok]:
        try:
            verdict = Verdict.model_validate(records[k])
        except ValidationError as error:
            problems.extend((k, p) for p in _pydantic_problems(error, location(k)))
            keep[k] = False
            judges[k] = candidates[k] = items[k] = ""
            values[k], raws[k], variants[k] = None, None, None
            continue
        judges[k], candidates[k], items[k] = verdict.judge, verdict.candidate, verdict.item
        values[k], raws[k], variants[k] = verdict.verdict, verdict.raw, verdict.variant
    # Judges and candidates share one table of names, so one lookup resolves both.
    codes, names = _factorize(judges + candidates)
    item, item_names = _factorize(items)
    value = np.full(n, -1, dtype=np.int8)
    valued = np.fromiter(_not_none(values), bool, n)
    value[valued] = np.array(list(itertools.compress(values, valued)), dtype=np.int8)
    return RawVerdicts(
        judge=codes[:n],
        candidate=codes[n:],
        item=item,
        names=names,
        item_names=item_names,
        value=value,
        raw=raws if _any_not_none(raws) else None,
        keep=np.array(keep, dtype=bool),
        variant=variants if _any_not_none(variants) else None,
    )


# --- the cross-record rules, vectorized ----------------------------------------------------------


# --- whole documents -----------------------------------------------------------------------------


def _validate_header(document: dict[str, Any]) -> tuple[Bundle | None, list[Problem]]:
    """Items, models, comparisons, labels, the schema version and unknown top-level fields, by
    the `Bundle` model (everything but outputs and verdicts)."""
    shallow = {k: v for k, v in document.items() if k not in ("outputs", "verdicts")}
    try:
        return Bundle.model_validate(shallow), []
    except ValidationError as error:
        return None, _pydantic_problems(error, "")


def _section(document: dict[str, Any], name: str, problems: list[Problem]) -> list[Any]:
    value = document.get(name, [])
    if type(value) is list:
        return value
    try:
        Bundle.model_validate({"items": [], "models": [], name: value})
    except ValidationError as error:
        problems.extend(p for p in _pydantic_problems(error, "") if p.path.startswith(name))
    return []


def assemble(
    items: list[Item],
    models: list[ModelInfo],
    outputs: RawOutputs,
    verdicts: RawVerdicts,
    normalize: Normalization,
    problems: list[Problem],
    *,
    record_problems: Sequence[tuple[str, list[tuple[int, Problem]]]] = (),
    where: Callable[[str, int, str], str] | None = None,
    header_valid: bool = True,
    comparisons: Sequence[Comparison] = (),
    labels: Sequence[Label] = (),
) -> BundleColumns:
    """Run the cross-record rules over read columns; raise `BundleError` with every problem.

    ``problems`` holds the document-level ones (header, items, models); ``record_problems``
    the per-record pydantic ones of outputs and verdicts, merged in record order with the
    cross-record ones. ``where(section, index, details)`` words a record's location. When an
    item or model record itself is invalid (``header_valid`` False) nothing is checked against
    the items and models: every reference would look unknown.
    """
    locate = where or (lambda section, index, details: f"{section}[{index}] ({details})")
    checked = check_records(
        items,
        models,
        outputs,
        verdicts,
        normalize,
        locate,
        record_problems=record_problems,
        header_valid=header_valid,
        comparisons=comparisons,
        labels=labels,
    )
    problems = problems + checked.problems
    if problems:
        raise BundleError(problems)
    return BundleColumns(
        items=items,
        models=models,
        output_model=checked.output_model,
        output_item=checked.output_item,
        output_has_probs=outputs.has_probs,
        output_probs=checked.output_probs,
        output_choice=outputs.choice,
        output_response=outputs.response,
        verdict_judge=checked.verdict_judge,
        verdict_candidate=checked.verdict_candidate,
        verdict_item=checked.verdict_item,
        verdict_value=verdicts.value,
        verdict_raw=verdicts.raw,
        output_variant=outputs.variant,
        verdict_variant=verdicts.variant,
        comparisons=list(comparisons),
        labels=list(labels),
    )


def columns_from_document(document: Any, *, normalize: Normalization = "none") -> BundleColumns:
    """Validate a decoded JSON bundle document into columns; raise `BundleError` listing every
    problem (the same rules and texts as `auditor.schemas.bundle.parse_bundle`, all in one pass)."""
    _check_normalize(normalize)
    if not isinstance(document, dict):
        raise BundleError([Problem("<document>", "a bundle must be a JSON object")])
    if not fast_path_matches_schema() or not document.keys() <= _DOCUMENT_FIELDS:
        return _record_by_record(document, normalize)
    header, header_problems = _validate_header(document)
    problems = list(header_problems)
    outputs_list = _section(document, "outputs", problems)
    verdicts_list = _section(document, "verdicts", problems)
    output_problems: list[tuple[int, Problem]] = []
    verdict_problems: list[tuple[int, Problem]] = []
    try:
        outputs = raw_outputs(outputs_list, lambda k: f"outputs[{k}]", output_problems)
    except _Fallback:
        return _record_by_record(document, normalize)
    verdicts = raw_verdicts(verdicts_list, lambda k: f"verdicts[{k}]", verdict_problems)
    return assemble(
        list(header.items) if header else [],
        list(header.models) if header else [],
        outputs,
        verdicts,
        normalize,
        problems,
        record_problems=(("outputs", output_problems), ("verdicts", verdict_problems)),
        header_valid=header is not None,
        comparisons=header.comparisons if header else (),
        labels=header.labels if header else (),
    )


def _record_by_record(document: Any, normalize: Normalization) -> BundleColumns:
    from auditor.schemas.bundle import parse_bundle

    return bundle_columns(parse_bundle(document, normalize=normalize))


def columns_from_records(
    records: Iterable[tuple[str, Any]],
    *,
    normalize: Normalization = "none",
) -> BundleColumns:
    """Validate JSONL records, given as ``(where, decoded record)`` pairs (``where`` names the
    line, e.g. ``"eval.jsonl line 7"``), into columns; every problem at once, located by line."""
    _check_normalize(normalize)
    outputs: list[Any] = []
    verdicts: list[Any] = []
    parsed_records: dict[str, list[Any]] = {section: [] for section in _SECTIONS.values()}
    lines: dict[str, list[str]] = {section: [] for section in _SECTIONS.values()}
    problems: list[Problem] = []
    header_valid = True
    for where, record in records:
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
        if kind == "output":
            outputs.append(record)
            lines["outputs"].append(where)
        elif kind == "verdict":
            verdicts.append(record)
            lines["verdicts"].append(where)
        elif kind in _RECORD_KINDS:
            try:
                parsed = _RECORD_KINDS[kind].model_validate(record)
            except ValidationError as error:
                problems.extend(_pydantic_problems(error, f"{where} ({kind})"))
                header_valid = False
                continue
            parsed_records[_SECTIONS[kind]].append(parsed)
            lines[_SECTIONS[kind]].append(where)
        else:
            problems.append(
                Problem(
                    f"{where}.kind",
                    f"must be one of header, {', '.join(_SECTIONS)}; got {kind!r}",
                )
            )
    output_problems: list[tuple[int, Problem]] = []
    verdict_problems: list[tuple[int, Problem]] = []
    raw_out = raw_outputs(outputs, lambda k: f"{lines['outputs'][k]} (output)", output_problems)
    raw_ver = raw_verdicts(
        verdicts, lambda k: f"{lines['verdicts'][k]} (verdict)", verdict_problems
    )

    def locate(section: str, index: int, details: str) -> str:
        return f"{section}[{index}] ({lines[section][index]}, {details})"

    return assemble(
        parsed_records["items"],
        parsed_records["models"],
        raw_out,
        raw_ver,
        normalize,
        problems,
        record_problems=(("outputs", output_problems), ("verdicts", verdict_problems)),
        where=locate,
        header_valid=header_valid,
        comparisons=parsed_records["comparisons"],
        labels=parsed_records["labels"],
    )


def validate_columns(bundle: Bundle, *, normalize: Normalization = "none") -> BundleColumns:
    """`auditor.schemas.bundle.validate_bundle` then `bundle_columns` (for bundles built in
    code)."""
    return bundle_columns(validate_bundle(bundle, normalize=normalize))


# --- the array view ------------------------------------------------------------------------------


def _model_major_grid(row_of: np.ndarray, col_of: np.ndarray, n_models: int, n_items: int) -> bool:
    """Whether output k is model ``k // n_items``'s answer to item ``k % n_items`` (``row_of ==
    repeat(arange(n_models), n_items)`` and ``col_of == tile(arange(n_items), n_models)``),
    compared row by row without building either array (200 MB for 12 M outputs)."""
    if row_of.size != n_models * n_items or col_of.size != row_of.size:
        return False
    rows = row_of.reshape(n_models, n_items)
    cols = col_of.reshape(n_models, n_items)
    return bool((rows == np.arange(n_models)[:, None]).all()) and bool(
        (cols == np.arange(n_items)[None, :]).all()
    )


def response_matrix_from_columns(
    columns: BundleColumns, models: Iterable[str] | None = None
) -> ResponseMatrix:
    """Stack validated columns into a `ResponseMatrix` (same layout and rules as
    `auditor.schemas.bundle.response_matrix`: choice, else the argmax of probs with ties to the
    lowest index; discrete-only models hold one-hot rows). Vectorized: no loop over outputs.

    When every model answered every item with probabilities, in model-major order, and the
    rows are the bundle's models, the probability matrix is a reshape of the values (no copy).
    Outputs under a template ``variant`` are left out, as in `auditor.schemas.bundle.primary_view`.
    """
    known = [m.name for m in columns.models]
    names = tuple(models) if models is not None else tuple(known)
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"models: {duplicate!r} is named more than once")
    position = {name: k for k, name in enumerate(known)}
    unknown = sorted(set(names).difference(position))
    if unknown:
        raise ValueError(f"models: {unknown!r} not in the bundle")
    row_of_code = np.full(len(known), -1, dtype=np.int64)
    row_of_code[[position[name] for name in names]] = np.arange(len(names))

    counts = columns.option_counts
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    gold = np.fromiter((i.gold for i in columns.items), np.int64, len(columns.items))
    n_models, n_items, n_columns = len(names), len(columns.items), int(offsets[-1])

    row_of = row_of_code[columns.output_model]
    col_of = columns.output_item
    with_probs = columns.output_has_probs
    lengths = counts[col_of[with_probs]]
    values = columns.output_probs
    choice_of = columns.chosen_options()

    selected = (row_of >= 0) & columns.primary_outputs()  # variants: prompt stability only
    complete = (
        names == tuple(known)
        and bool(with_probs.all())
        and columns.n_outputs == n_models * n_items
        and _model_major_grid(row_of, col_of, n_models, n_items)
    )
    if complete:
        probs = values.reshape(n_models, n_columns)
    else:
        probs = np.zeros((n_models, n_columns), dtype=np.float64)
        if values.size:
            keep_values = np.repeat(selected[with_probs], lengths)
            segment_start = np.cumsum(lengths) - lengths
            within = np.arange(values.size, dtype=np.int64) - np.repeat(segment_start, lengths)
            target_cols = np.repeat(offsets[col_of[with_probs]], lengths) + within
            target_rows = np.repeat(row_of[with_probs], lengths)
            probs[target_rows[keep_values], target_cols[keep_values]] = values[keep_values]

    if complete and bool(selected.all()):  # every output in place: no scatter
        choice = choice_of.astype(np.int64, copy=False).reshape(n_models, n_items)
        present = np.ones((n_models, n_items), dtype=bool)
    else:
        choice = np.full((n_models, n_items), -1, dtype=np.int64)
        present = np.zeros((n_models, n_items), dtype=bool)
        choice[row_of[selected], col_of[selected]] = choice_of[selected]
        present[row_of[selected], col_of[selected]] = True
    probabilistic = np.ones(n_models, dtype=bool)
    probabilistic[row_of[selected & ~with_probs]] = False
    probabilistic &= present.any(axis=1)
    discrete = np.flatnonzero(~probabilistic)
    if discrete.size:
        if complete:
            probs = probs.copy()
        probs[discrete] = 0.0
        sub_rows, sub_cols = np.nonzero(present[discrete])
        model_rows = discrete[sub_rows]
        probs[model_rows, offsets[sub_cols] + choice[model_rows, sub_cols]] = 1.0
    return ResponseMatrix(
        models=names,
        items=tuple(item.id for item in columns.items),
        offsets=offsets,
        gold=gold,
        probs=probs,
        choice=choice,
        present=present,
        probabilistic=probabilistic,
    )


# --- the canonical JSON, for the input hash ------------------------------------------------------


def _python_float_tokens(values: np.ndarray) -> list[str]:
    """Each float as ``repr`` writes it (and so ``json.dumps``), for finite values below 1e15:
    orjson's text (C speed), the values it words differently reworded by `_python_float_text`."""
    import orjson

    tokens = orjson.dumps(values.tolist()).decode()[1:-1].split(",")
    odd = np.flatnonzero((np.abs(values) < 1e-4) & (values != 0))
    if odd.size:
        again = _python_float_text(orjson.dumps(values[odd].tolist()))[1:-1].decode().split(",")
        for k, token in zip(odd.tolist(), again, strict=True):
            tokens[k] = token
    return tokens


_DIGIT: Final = np.zeros(256, dtype=bool)
_DIGIT[ord("0") : ord("9") + 1] = True
_TOKEN_END: Final = np.zeros(256, dtype=bool)
_TOKEN_END[[ord(","), ord("]")]] = True
_TOKEN_START: Final = np.zeros(256, dtype=bool)
_TOKEN_START[[ord(","), ord("["), ord("-")]] = True
_LONGEST_FLOAT: Final = 25
"""Bytes in the longest float orjson writes (``-2.2250738585072014e-308`` is 24)."""
_EXPONENT_05: Final = np.frombuffer(b"e-05", dtype=np.uint8)


def _bytes_at(text: np.ndarray, positions: np.ndarray, offset: Any) -> np.ndarray:
    """``text[positions + offset]`` (broadcast), with a NUL byte where that is outside the text."""
    index = positions + offset
    inside = (index >= 0) & (index < text.size)
    found = np.zeros(index.shape, dtype=np.uint8)
    found[inside] = text[index[inside]]
    return found


def _python_float_text(text: bytes) -> bytes:
    """orjson's JSON list (or list of lists) of finite floats below 1e15 in magnitude, with
    every float worded as ``repr`` (and so ``json.dumps``) words it.

    The two write the same shortest round-trip digits and differ only below 1e-4 in
    magnitude, where ``repr`` always writes an exponent of two digits or more: orjson writes
    ``0.00002`` for ``2e-05`` (1e-5 up to 1e-4) and ``1.5e-7`` for ``1.5e-07``. Both are
    rewritten on the bytes, with numpy, not value by value (``repr`` takes ~1.4 us a value, and
    a confident model's probabilities are mostly that small):
    ``0.0000D`` + rest -> ``D`` + (``.`` + rest) + ``e-05``, then ``e-N`` -> ``e-0N``.
    """
    data = np.frombuffer(text, dtype=np.uint8)
    zero = ord("0")
    dots = np.flatnonzero(data == ord("."))
    first = _bytes_at(data, dots, 5)
    decimal = (
        (_bytes_at(data, dots, -1) == zero)
        & (_TOKEN_START[_bytes_at(data, dots, -2)] | (dots == 1))
        & (_bytes_at(data, dots, 1) == zero)
        & (_bytes_at(data, dots, 2) == zero)
        & (_bytes_at(data, dots, 3) == zero)
        & (_bytes_at(data, dots, 4) == zero)
        & (first > zero)
        & _DIGIT[first]
    )
    starts = dots[decimal] - 1  # each at the "0" of "0.0000D"
    if starts.size:
        tail = _bytes_at(data, starts[:, None] + 7, np.arange(_LONGEST_FLOAT))
        ends = starts + 7 + np.argmax(_TOKEN_END[tail], axis=1)  # the "," or "]" after it
        edited = data.copy()
        edited[(starts[:, None] + np.arange(6)).ravel()] = 0  # "0.0000" out: JSON holds no NUL
        dotted = starts[ends > starts + 7] + 7  # a "." before the rest of the digits
        where = np.concatenate([dotted, np.repeat(ends, _EXPONENT_05.size)])
        what = np.concatenate(
            [np.full(dotted.size, ord("."), np.uint8), np.tile(_EXPONENT_05, ends.size)]
        )
        order = np.argsort(where, kind="stable")  # "e-05" stays in order at its position
        edited = np.insert(edited, where[order], what[order])
        data = edited[edited != 0]
    exponents = np.flatnonzero(data == ord("e"))
    short = (
        (_bytes_at(data, exponents, 1) == ord("-"))
        & _DIGIT[_bytes_at(data, exponents, 2)]
        & _TOKEN_END[_bytes_at(data, exponents, 3)]
    )
    if short.any():
        data = np.insert(data, exponents[short] + 2, zero)
    elif not starts.size:
        return text
    return data.tobytes()


def _odd_rows(matrix: np.ndarray) -> np.ndarray:
    """Indices of the rows holding a value orjson words differently from ``repr`` (nonzero and
    below 1e-4 in magnitude: see `_python_float_text`)."""
    return np.flatnonzero(((np.abs(matrix) < 1e-4) & (matrix != 0)).any(axis=1))


def _json_strings(values: list[str | None] | None) -> Iterable[str]:
    """Each value as json.dumps writes it (``null`` for None), or ``null`` forever."""
    if values is None:
        return itertools.repeat("null")
    encode = json.encoder.encode_basestring_ascii
    return ["null" if v is None else encode(v) for v in values]


CANONICAL_BLOCK: Final = 65_536
"""Outputs (and verdicts) written per block of canonical JSON: bounds the text held at once."""
ARROW_MIN_OUTPUTS: Final = 262_144
"""From this many outputs on, the blocks of outputs are put together by Arrow's compute
functions (`_ArrowOutputs`); below, by numpy's string functions and ``bytes.join``
(`_joined_outputs`). Both write the same bytes; Arrow is ~1.8x faster per output but importing
``pyarrow.compute`` costs ~0.2 s, which a small bundle would not win back."""


@dataclass(frozen=True)
class _OutputBlock:
    """One block of outputs, ready to be written: the row codes, and each output's
    probabilities as the JSON text ``json.dumps`` writes (``[...]`` or ``null``) given either
    as orjson's text of the whole (outputs x options) matrix plus the rows it words
    differently, written again (``orjson_text``, ``odd``, ``odd_texts``), or as a list
    (``rows``)."""

    choice: np.ndarray
    item: np.ndarray
    model: np.ndarray
    tails: list[bytes] | None
    """Each output's ``"response":R,"variant":V}``; None when both are null throughout."""
    rows: list[bytes] | None = None
    orjson_text: bytes = b""
    odd: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    odd_texts: list[bytes] = field(default_factory=list)


def _output_blocks(columns: BundleColumns) -> Iterable[_OutputBlock]:
    """The outputs in blocks of `CANONICAL_BLOCK`, their probabilities serialized."""
    import orjson

    offsets = columns.probs_offsets()
    for start in range(0, columns.n_outputs, CANONICAL_BLOCK):
        stop = min(start + CANONICAL_BLOCK, columns.n_outputs)
        values = columns.output_probs[offsets[start] : offsets[stop]]
        plain = bool(
            values.size and np.all(np.isfinite(values)) and float(np.abs(values).max()) < 1e15
        )
        local = offsets[start : stop + 1] - offsets[start]
        has_probs = columns.output_has_probs[start:stop]
        width = int(local[1] - local[0]) if stop > start else 0
        tails = None
        if columns.output_response is not None or columns.output_variant is not None:
            tails = [
                f'"response":{r},"variant":{v}}},'.encode("ascii")
                for r, v in zip(
                    _json_strings(_block(columns.output_response, start, stop)),
                    _json_strings(_block(columns.output_variant, start, stop)),
                    strict=False,
                )
            ]
        block = _OutputBlock(
            choice=columns.output_choice[start:stop],
            item=columns.output_item[start:stop],
            model=columns.output_model[start:stop],
            tails=tails,
        )
        if plain and width and bool(has_probs.all()) and bool((np.diff(local) == width).all()):
            matrix = values.reshape(-1, width)
            text = orjson.dumps(matrix, option=orjson.OPT_SERIALIZE_NUMPY)
            odd = _odd_rows(matrix)
            again: list[bytes] = []
            if odd.size:  # only these rows' text is reworded: usually few, for some models most
                odd_text = orjson.dumps(matrix[odd], option=orjson.OPT_SERIALIZE_NUMPY)
                again = _python_float_text(odd_text)[1:-1].replace(b"],[", b"]\n[").split(b"\n")
            yield dataclasses.replace(block, orjson_text=text, odd=odd, odd_texts=again)
            continue
        # Values json.dumps writes differently are not produced by validation; it is always
        # right about them.
        tokens = _python_float_tokens(values) if plain else [json.dumps(v) for v in values.tolist()]
        bounds = local.tolist()
        rows = [
            ("[" + ",".join(tokens[bounds[k] : bounds[k + 1]]) + "]").encode("ascii")
            if has
            else b"null"
            for k, has in enumerate(has_probs.tolist())
        ]
        yield dataclasses.replace(block, rows=rows)


_NULL_TAIL: Final = b'"response":null,"variant":null},'


class _OutputPieces:
    """The texts an output is written from, by code: ``{"choice":C,"item":`` by choice,
    ``ID,"model":`` by item, ``NAME,"probs":`` by model. An output is then
    ``head + probabilities + "," + tail`` with ``head`` the three pieces and ``tail``
    ``"response":R,"variant":V},`` (every output ends with a comma; the last one's is cut)."""

    def __init__(self, columns: BundleColumns) -> None:
        encode = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str
        most = int(columns.output_choice.max()) if columns.n_outputs else -1
        self.choice = [
            ('{"choice":' + ("null" if c < 0 else str(c)) + ',"item":').encode("ascii")
            for c in range(-1, most + 1)
        ]
        self.item = [f'{encode(item.id)},"model":'.encode("ascii") for item in columns.items]
        self.model = [f'{encode(m.name)},"probs":'.encode("ascii") for m in columns.models]


def _fixed_width(texts: list[bytes]) -> np.ndarray:
    """The texts as a numpy ``S`` array (ASCII JSON never holds a NUL byte, which ``json.dumps``
    writes ``\\u0000``, so the padding ``S`` strips is never text)."""
    return np.array(texts, dtype=np.bytes_)


def _joined_outputs(columns: BundleColumns, pieces: _OutputPieces) -> Iterable[bytes | memoryview]:
    """The blocks of outputs as text, each output ending with a comma: the heads put together
    by numpy's string functions, each with the previous output's tail, so a block is one
    ``bytes.join`` of two pieces per output."""
    choice_pieces = _fixed_width(pieces.choice)
    item_pieces = _fixed_width(pieces.item)
    model_pieces = _fixed_width(pieces.model)
    for block in _output_blocks(columns):
        if block.rows is None:
            # [[a,b],[c,d]] -> [a,b] | [c,d]: no bracket occurs inside a number.
            rows = block.orjson_text[1:-1].replace(b"],[", b"]\n[").split(b"\n")
            for k, row in zip(block.odd.tolist(), block.odd_texts, strict=True):
                rows[k] = row
        else:
            rows = block.rows
        heads = np.strings.add(
            np.strings.add(choice_pieces[block.choice + 1], item_pieces[block.item]),
            model_pieces[block.model],
        )
        tails = _fixed_width([_NULL_TAIL] if block.tails is None else block.tails)
        # Between two probability texts: a comma, the first output's tail, the second's head.
        joints = np.strings.add(
            np.strings.add(b",", tails[:-1] if tails.size > 1 else tails), heads[1:]
        )
        texts: list[bytes] = [b""] * (2 * len(rows) + 1)
        texts[0] = bytes(heads[0])
        texts[1::2] = rows
        texts[2:-1:2] = joints.tolist()
        texts[-1] = b"," + bytes(tails[-1])
        yield b"".join(texts)


def _arrow_outputs(columns: BundleColumns, pieces: _OutputPieces) -> Iterable[bytes | memoryview]:
    """The blocks of outputs as text (the same bytes as `_joined_outputs`), put together by
    Arrow's compute functions: each output's probabilities are a view into the orjson text of
    the block (no Python object per output), and one element-wise join writes
    head + probabilities + comma + tail for the whole block."""
    import pyarrow as pa
    import pyarrow.compute as pc

    choice_pieces = pa.array(pieces.choice, pa.binary())
    item_pieces = pa.array(pieces.item, pa.binary())
    model_pieces = pa.array(pieces.model, pa.binary())
    null_tail = pa.scalar(_NULL_TAIL, pa.binary())
    for block in _output_blocks(columns):
        n = block.choice.size
        if block.rows is None:
            # [[a,b],[c,d]] -> [a,b],[c,d], : one value "[a,b]," per row, starting at each "[".
            text = block.orjson_text[1:-1] + b","
            starts = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == ord("["))
            bounds = np.empty(n + 1, dtype=np.int64)
            bounds[:n], bounds[n] = starts, len(text)
            rows = pa.LargeBinaryArray.from_buffers(
                pa.large_binary(), n, [None, pa.py_buffer(bounds), pa.py_buffer(text)]
            )
            if block.odd.size:
                mask = np.zeros(n, dtype=bool)
                mask[block.odd] = True
                again = pa.array([row + b"," for row in block.odd_texts], pa.large_binary())
                rows = pc.replace_with_mask(rows, mask, again)
        else:
            rows = pa.array([row + b"," for row in block.rows], pa.large_binary())
        tails = null_tail if block.tails is None else pa.array(block.tails, pa.binary())
        joined = pc.binary_join_element_wise(
            pc.take(choice_pieces, block.choice + 1).cast(pa.large_binary()),
            pc.take(item_pieces, block.item).cast(pa.large_binary()),
            pc.take(model_pieces, block.model).cast(pa.large_binary()),
            rows,
            tails.cast(pa.large_binary()),
            pa.scalar(b"", pa.large_binary()),
        )
        _, value_offsets, data = joined.buffers()
        first, last = np.frombuffer(value_offsets, dtype=np.int64)[[0, n]]
        yield memoryview(data)[int(first) : int(last)]


def canonical_parts(columns: BundleColumns) -> Iterable[bytes | memoryview]:
    """The bundle's canonical JSON (see `canonical_json`) in consecutive ASCII parts, block by
    block of outputs and verdicts, so a bundle of millions of outputs is hashed in bounded
    memory.

    An output is ``{"choice":C,"item":ID,"model":NAME,"probs":P,"response":R,"variant":V}``:
    the pieces that depend on a code (choice, item, model) are picked for a whole block at
    once, the probabilities of a block are one orjson text (the few values orjson words
    differently from ``repr`` written again), and the block is joined at C speed
    (`_joined_outputs`, or `_arrow_outputs` from `ARROW_MIN_OUTPUTS` outputs on): no Python
    code runs per output unless it has a response or a variant, or its probabilities hold a
    value below 1e-4.
    """
    encode = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str
    head = json.dumps(
        {
            "comparisons": [c.model_dump(mode="json") for c in columns.comparisons],
            "items": [item.model_dump(mode="json") for item in columns.items],
            "labels": [label.model_dump(mode="json") for label in columns.labels],
            "models": [model.model_dump(mode="json") for model in columns.models],
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    names = [encode(model.name) for model in columns.models]
    ids = [encode(item.id) for item in columns.items]
    yield f'{head[:-1]},"outputs":['.encode("ascii")
    pieces = _OutputPieces(columns)
    blocks = (
        _arrow_outputs(columns, pieces)
        if columns.n_outputs >= ARROW_MIN_OUTPUTS
        else _joined_outputs(columns, pieces)
    )
    written = 0
    for text in blocks:
        written += min(CANONICAL_BLOCK, columns.n_outputs - written)
        # Every output ends with a comma: the last one's is cut.
        yield memoryview(text)[:-1] if written == columns.n_outputs else text
    yield f'],"schema_version":{encode(columns.schema_version)},"verdicts":['.encode("ascii")
    verdict_text = {-1: "null", 0: "0", 1: "1"}
    for start in range(0, columns.n_verdicts, CANONICAL_BLOCK):
        stop = min(start + CANONICAL_BLOCK, columns.n_verdicts)
        raws = _json_strings(_block(columns.verdict_raw, start, stop))
        variants = _json_strings(_block(columns.verdict_variant, start, stop))
        verdicts = ",".join(
            f'{{"candidate":{names[c]},"item":{ids[i]},"judge":{names[j]},'
            f'"raw":{r},"variant":{variant},"verdict":{verdict_text[v]}}}'
            for j, c, i, v, r, variant in zip(
                columns.verdict_judge[start:stop].tolist(),
                columns.verdict_candidate[start:stop].tolist(),
                columns.verdict_item[start:stop].tolist(),
                columns.verdict_value[start:stop].tolist(),
                raws,
                variants,
                strict=False,
            )
        )
        yield (verdicts if start == 0 else "," + verdicts).encode("ascii")
    yield b"]}"


def _block(values: list[Any] | None, start: int, stop: int) -> list[Any] | None:
    return None if values is None else values[start:stop]


def canonical_json(columns: BundleColumns) -> str:
    """The bundle's canonical JSON, the text hashed into ``provenance.input_sha256``::

        json.dumps(bundle.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    for ``bundle = columns.to_bundle()``, written from the columns without building records
    (probabilities formatted by orjson, the few tokens it writes differently from ``repr``
    rewritten). The tests check it against the expression above.
    """
    return b"".join(canonical_parts(columns)).decode("ascii")


def columns_sha256(columns: BundleColumns) -> str:
    """SHA-256 (hex) of `canonical_json` (ASCII), fed block by block: equal to `bundle_sha256`
    of the same bundle in record form.

    The digest runs on a second thread while the next block is written (hashlib releases the
    GIL on large buffers; at most two blocks are held at once), so on two cores the hashing
    of gigabytes of text costs almost no wall time."""
    from concurrent.futures import Future, ThreadPoolExecutor

    digest = hashlib.sha256()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="input-sha256") as hashing:
        pending: Future[None] | None = None
        for part in canonical_parts(columns):
            if pending is not None:
                pending.result()
            pending = hashing.submit(digest.update, part)
        if pending is not None:
            pending.result()
    return digest.hexdigest()


def bundle_sha256(bundle: Bundle | BundleColumns) -> str:
    """SHA-256 (hex) of the bundle's canonical JSON (`auditor.schemas.canonical`), the hash in
    ``provenance.input_sha256``::

        canonical_sha256(bundle.model_dump(mode="json"))

    A bundle in columns is written from its columns by `canonical_parts` in bounded memory: the
    same bytes (the tests check it).
    """
    if isinstance(bundle, BundleColumns):
        return columns_sha256(bundle)
    return canonical_sha256(bundle.model_dump(mode="json"))
