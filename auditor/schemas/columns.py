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
        and np.array_equal(row_of, np.repeat(np.arange(n_models), n_items))
        and np.array_equal(col_of, np.tile(np.arange(n_items), n_models))
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
    """Each float as ``repr`` writes it (and so ``json.dumps``), for finite values below 1e15.

    orjson writes the shortest round-trip digits like ``repr`` but words exponents and small
    numbers differently (``1e-7`` for ``1e-07``, ``0.00002`` for ``2e-05``); those few tokens
    are rewritten by ``repr``, the rest are taken as orjson writes them (C speed).
    """
    import orjson

    tokens = orjson.dumps(values.tolist()).decode()[1:-1].split(",")
    odd = np.flatnonzero((np.abs(values) < 1e-4) & (values != 0))
    for k in odd.tolist():
        tokens[k] = repr(float(values[k]))
    return tokens


def _probability_rows(matrix: np.ndarray) -> list[str]:
    """Each row of an (outputs x options) block of finite probabilities below 1e15 as the JSON
    list ``json.dumps`` writes: the block serialized by orjson at once (its numpy rows), cut
    into rows; a row holding a value orjson words differently from ``repr`` (below 1e-4: see
    `_python_float_tokens`) is written again by ``repr``. The same text as the token path, at
    a fraction of the cost (no Python float or token per probability)."""
    import orjson

    text = orjson.dumps(matrix, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    rows = text[1:-1].replace("],[", "]\n[").split("\n")
    odd = ((np.abs(matrix) < 1e-4) & (matrix != 0)).any(axis=1)
    for k in np.flatnonzero(odd).tolist():
        rows[k] = "[" + ",".join(map(repr, matrix[k].tolist())) + "]"
    return rows


def _json_strings(values: list[str | None] | None) -> Iterable[str]:
    """Each value as json.dumps writes it (``null`` for None), or ``null`` forever."""
    if values is None:
        return itertools.repeat("null")
    encode = json.encoder.encode_basestring_ascii
    return ["null" if v is None else encode(v) for v in values]


CANONICAL_BLOCK: Final = 65_536
"""Outputs (and verdicts) written per block of canonical JSON: bounds the text held at once."""


def canonical_parts(columns: BundleColumns) -> Iterable[str]:
    """The bundle's canonical JSON in consecutive parts (see `canonical_json`), block by block
    of outputs and verdicts, so a bundle of millions of outputs is hashed in bounded memory."""
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
    offsets = columns.probs_offsets()
    yield f'{head[:-1]},"outputs":['
    for start in range(0, columns.n_outputs, CANONICAL_BLOCK):
        stop = min(start + CANONICAL_BLOCK, columns.n_outputs)
        values = columns.output_probs[offsets[start] : offsets[stop]]
        plain = bool(
            values.size and np.all(np.isfinite(values)) and float(np.abs(values).max()) < 1e15
        )
        local = offsets[start : stop + 1] - offsets[start]
        has_probs = columns.output_has_probs[start:stop]
        width = int(local[1] - local[0]) if stop > start else 0
        if plain and width and bool(has_probs.all()) and bool((np.diff(local) == width).all()):
            probs_text = _probability_rows(values.reshape(-1, width))
        else:
            if plain:
                tokens = _python_float_tokens(values)
            else:  # not produced by validation; json.dumps is always right
                tokens = [json.dumps(v) for v in values.tolist()]
            bounds = local.tolist()
            probs_text = [
                "[" + ",".join(tokens[bounds[k] : bounds[k + 1]]) + "]" if has else "null"
                for k, has in enumerate(has_probs.tolist())
            ]
        choices = ["null" if c < 0 else str(c) for c in columns.output_choice[start:stop].tolist()]
        responses = _json_strings(_block(columns.output_response, start, stop))
        variants = _json_strings(_block(columns.output_variant, start, stop))
        text = ",".join(
            f'{{"choice":{c},"item":{ids[i]},"model":{names[m]},"probs":{p},"response":{r},'
            f'"variant":{v}}}'
            for c, i, m, p, r, v in zip(
                choices,
                columns.output_item[start:stop].tolist(),
                columns.output_model[start:stop].tolist(),
                probs_text,
                responses,
                variants,
                strict=False,
            )
        )
        yield text if start == 0 else "," + text
    yield f'],"schema_version":{encode(columns.schema_version)},"verdicts":['
    verdict_text = {-1: "null", 0: "0", 1: "1"}
    for start in range(0, columns.n_verdicts, CANONICAL_BLOCK):
        stop = min(start + CANONICAL_BLOCK, columns.n_verdicts)
        raws = _json_strings(_block(columns.verdict_raw, start, stop))
        variants = _json_strings(_block(columns.verdict_variant, start, stop))
        text = ",".join(
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
        yield text if start == 0 else "," + text
    yield "]}"


def _block(values: list[Any] | None, start: int, stop: int) -> list[Any] | None:
    return None if values is None else values[start:stop]


def canonical_json(columns: BundleColumns) -> str:
    """The bundle's canonical JSON, the text hashed into ``provenance.input_sha256``::

        json.dumps(bundle.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    for ``bundle = columns.to_bundle()``, written from the columns without building records
    (probabilities formatted by orjson, the few tokens it writes differently from ``repr``
    rewritten). The tests check it against the expression above.
    """
    return "".join(canonical_parts(columns))


def columns_sha256(columns: BundleColumns) -> str:
    """SHA-256 (hex) of `canonical_json`, UTF-8, fed block by block: equal to `bundle_sha256`
    of the same bundle in record form."""
    digest = hashlib.sha256()
    for part in canonical_parts(columns):
        digest.update(part.encode("utf-8"))
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
