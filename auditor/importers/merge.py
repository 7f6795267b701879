"""Several bundles merged into one (lm-eval outputs + Inspect verdicts + a table of human labels),
with every conflict reported by record.

Records are keyed as the analyses key them: an item by ``id``, a model by ``name``, an output
by (model, item), a verdict by (judge, candidate, item), a label by (item, candidate,
annotator), a comparison by (judge, item, candidate_a, candidate_b). The same key read twice
with the same content is one record (counted); with another content it is a conflict naming
the key, both files and the fields that differ. A field one bundle leaves empty (a response,
a provider) is taken from the other: records, models included, are the union of their fields,
and a conflict only where both give one field different values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from auditor.importers.common import Builder, ImportResult
from auditor.schemas.bundle import Bundle, BundleError, ModelInfo, load_bundle, validate_bundle

__all__ = ["merge_bundles"]

_KEYS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "items": lambda r: (r.id,),
    "outputs": lambda r: (r.model, r.item),
    "verdicts": lambda r: (r.judge, r.candidate, r.item),
    "labels": lambda r: (r.item, r.candidate, r.annotator),
    "comparisons": lambda r: (r.judge, r.item, r.candidate_a, r.candidate_b),
}


def merge_bundles(paths: Sequence[Path]) -> ImportResult:
    """Merge the bundles at ``paths`` (``.json``, ``.jsonl`` or Parquet) into one validated bundle.

    Raises `BundleError` listing every conflict, e.g. ``outputs (model='m1', item='q1'):
    a.json has choice 2, b.json has choice 1``, and every bundle that cannot be read.

    Example: ``merge_bundles([Path("lm_eval.json"), Path("inspect.json")])`` gives the items
    once, both tools' models, and the outputs of the first with the verdicts of the second.
    """
    builder = Builder()
    if len(paths) < 2:
        builder.problem("paths", f"give at least two bundles to merge; got {len(paths)}")
    bundles: list[tuple[Path, Bundle]] = []
    for path in paths:
        try:
            bundles.append((path, load_bundle(path)))
        except BundleError as error:
            for problem in error.problems:
                builder.problem(f"{path}: {problem.path}", problem.message)
        except (OSError, ValueError) as error:
            builder.problem(str(path), f"cannot read this bundle: {error}")
    builder.fail()

    merged: dict[str, dict[tuple[Any, ...], Any]] = {name: {} for name in _KEYS}
    origin: dict[tuple[str, tuple[Any, ...]], Path] = {}
    models: dict[str, ModelInfo] = {}
    model_origin: dict[str, Path] = {}
    for path, bundle in bundles:
        builder.count("bundles")
        for section, key_of in _KEYS.items():
            for record in getattr(bundle, section):
                key = key_of(record)
                first = merged[section].get(key)
                if first is None:
                    merged[section][key] = record
                    origin[section, key] = path
                elif first == record:
                    builder.skip(f"{section} read twice, the same in both bundles")
                elif _conflicts(first, record):
                    builder.problem(
                        f"{section} {_key_text(section, key)}",
                        f"{origin[section, key]} has {_differences(first, record, path)}",
                    )
                else:  # one bundle carries a field the other leaves empty (e.g. a response)
                    merged[section][key] = _completed(first, record)
                    builder.skip(f"{section} read twice, completed by the other bundle's fields")
        for model in bundle.models:
            known = models.get(model.name)
            if known is None:
                models[model.name] = model
                model_origin[model.name] = path
                continue
            update: dict[str, Any] = {}
            for name, value in model.model_dump().items():
                mine = getattr(known, name)
                if value is None or value == mine:
                    continue
                if mine is None:
                    update[name] = value
                else:
                    builder.problem(
                        f"models (name={model.name!r})",
                        f"{model_origin[model.name]} has {name} {mine!r}, {path} has {value!r}",
                    )
            models[model.name] = known.model_copy(update=update)
    builder.fail()
    bundle = Bundle(
        items=list(merged["items"].values()),
        models=list(models.values()),
        outputs=list(merged["outputs"].values()),
        verdicts=list(merged["verdicts"].values()),
        labels=list(merged["labels"].values()),
        comparisons=list(merged["comparisons"].values()),
    )
    try:
        validated = validate_bundle(bundle)
    except BundleError as error:
        raise BundleError(error.problems) from None
    notes = tuple(f"{reason}: {count}" for reason, count in builder.skipped.items())
    return ImportResult(validated, notes, builder.read_summary())


def _key_text(section: str, key: tuple[Any, ...]) -> str:
    names = {
        "items": ("id",),
        "outputs": ("model", "item"),
        "verdicts": ("judge", "candidate", "item"),
        "labels": ("item", "candidate", "annotator"),
        "comparisons": ("judge", "item", "candidate_a", "candidate_b"),
    }[section]
    return "(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, key, strict=True)) + ")"


def _conflicts(first: BaseModel, second: BaseModel) -> bool:
    """Whether two records give one field two values (an empty field conflicts with none)."""
    a, b = first.model_dump(), second.model_dump()
    return any(a[n] != b[n] and a[n] not in (None, []) and b[n] not in (None, []) for n in a)


def _completed(first: BaseModel, second: BaseModel) -> Any:
    """``first`` with its empty fields taken from ``second``."""
    b = second.model_dump()
    update = {n: b[n] for n, v in first.model_dump().items() if v in (None, []) and b[n]}
    return first.model_copy(update={n: getattr(second, n) for n in update})


def _differences(first: BaseModel, second: BaseModel, path: Path) -> str:
    """``choice 2, b.json has choice 1`` for the fields in which two records differ."""
    a, b = first.model_dump(), second.model_dump()
    fields = [n for n in a if a[n] != b[n] and a[n] not in (None, []) and b[n] not in (None, [])]
    return "; ".join(f"{name} {a[name]!r}, {path} has {name} {b[name]!r}" for name in fields)
