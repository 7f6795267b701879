"""Evaluations as a service: a bundle stored whole (`store_bundle`), streamed as JSONL
(`StreamImporter`) or sent as a zip archive of its Parquet tables (`store_parquet_archive`), and
deleted while no active audit reads it (`delete_evaluation`). The REST
API and the CLI call these; the rows are `auditor.storage.store`'s.

Streaming import: validated record by record, stored in chunks. The upload is fed in pieces
of any size (`StreamImporter.feed`); complete lines are parsed and
validated as they arrive and the records go to storage in bulk chunks inside one transaction,
so memory holds one chunk and a few small indexes, never the upload. The checks are those of
`auditor.schemas.bundle.parse_records` and `validate_bundle` (the same helpers decide probabilities
and option indices); the cross-record checks use compact indexes:

- items: id -> (position, option count); models: name -> position;
- outputs already seen: one bit per (model, item) position pair;
- verdicts already seen: one bit per item for each (judge, candidate) pair.

Because records are checked as they stream, an item or model must come before the outputs and
verdicts that name it (a header, items and models first is the natural order anyway). Any
problem stops the writing, the transaction is rolled back at the end, and every problem found
(up to `MAX_PROBLEMS`, then a count) is reported with its line: nothing partial is ever visible.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Final

import orjson
from pydantic import BaseModel, ValidationError

from auditor.schemas.bundle import _RECORD_TYPES as RECORD_TYPES  # the same record kinds
from auditor.schemas.bundle import (
    SCHEMA_VERSION,
    TIE,
    Bundle,
    BundleError,
    Comparison,
    Item,
    Label,
    ModelInfo,
    Normalization,
    Output,
    Problem,
    Verdict,
    output_value_problems,
    validate_bundle,
)
from auditor.schemas.bundle import _index_problem as index_problem  # the rules of validate_bundle
from auditor.schemas.candidates import parse_candidate
from auditor.schemas.nul import NUL_MESSAGE, nul_paths
from auditor.storage.store import EvaluationImport, EvaluationInfo, Store

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_PROBLEMS",
    "ROWS_PER_CHUNK",
    "EvaluationInUse",
    "EvaluationNotFound",
    "StreamImporter",
    "delete_evaluation",
    "store_bundle",
    "store_parquet_archive",
    "visible_evaluation",
]

MAX_LINE_BYTES: Final = 8 * 1024 * 1024
"""Longest record accepted; a longer line is reported and skipped, never buffered whole."""
MAX_PROBLEMS: Final = 1000
"""Problems listed in full; beyond this only their number is reported."""
ROWS_PER_CHUNK: Final = 5000
"""Records buffered before they are written (one bulk INSERT per kind)."""

_ORDER_HINT = "items and models must come before the records that name them"
_KINDS: dict[str, type[BaseModel]] = RECORD_TYPES
"""The JSONL record kinds, as the bundle's own JSONL reader knows them."""


class EvaluationNotFound(LookupError):
    """No such evaluation for this tenant (or it is still being imported)."""


class EvaluationInUse(RuntimeError):
    """An active (queued or running) audit reads the evaluation."""

    def __init__(self, audit_ids: list[str]) -> None:
        self.audit_ids = sorted(audit_ids)
        super().__init__(f"audits still running on this evaluation: {', '.join(self.audit_ids)}")


def store_bundle(
    store: Store,
    bundle: Bundle,
    *,
    tenant: str,
    name: str | None = None,
    normalize: Normalization = "none",
) -> EvaluationInfo:
    """Validate a whole bundle (every problem reported, `BundleError`) and store it."""
    checked = validate_bundle(bundle, normalize=normalize)
    evaluation_id = store.add_evaluation(checked, tenant=tenant, name=name)
    info = store.get_evaluation(evaluation_id, tenant=tenant)
    if info is None:  # pragma: no cover - deleted between two statements
        raise EvaluationNotFound(evaluation_id)
    return info


def store_parquet_archive(
    store: Store,
    archive: IO[bytes],
    *,
    tenant: str,
    name: str | None = None,
    normalize: Normalization = "none",
    max_unpacked_bytes: int,
) -> EvaluationInfo:
    """Store a Parquet bundle sent as a zip archive of its table files (``items.parquet``,
    ``models.parquet``, ``outputs.parquet`` and, when present, ``verdicts.parquet``,
    ``comparisons.parquet``, ``labels.parquet``), at the archive's top or in one directory
    (``eval.parquet/items.parquet``, as zipping a bundle directory makes it).

    Read and validated by the rules of every bundle (`load_columns`: every problem at once,
    `BundleError`). The archive itself is checked first: a member that is not one of those
    tables, a path that leaves the archive, a table given twice, or more than
    ``max_unpacked_bytes`` unpacked (counted as the bytes are written, whatever the archive's
    headers claim) is a problem named by the member, and nothing is stored.
    """
    from auditor.schemas.formats import load_columns

    with tempfile.TemporaryDirectory(prefix="auditor-parquet-") as scratch:
        directory = Path(scratch) / "upload.parquet"
        directory.mkdir()
        _unpack_tables(archive, directory, max_unpacked_bytes)
        try:
            columns = load_columns(directory, normalize=normalize)
        except BundleError as error:  # named as in the archive, never by the server's paths
            raise BundleError(
                [
                    Problem(_in_body(p.path, directory), _in_body(p.message, directory))
                    for p in error.problems
                ]
            ) from None
    bundle = columns.to_bundle()
    if "\\u0000" in bundle.model_dump_json():  # PostgreSQL cannot store NUL in text
        found = nul_paths(bundle.model_dump(mode="json"))
        raise BundleError([Problem(_location(path).lstrip("."), NUL_MESSAGE) for path in found])
    evaluation_id = store.add_evaluation(bundle, tenant=tenant, name=name)
    info = store.get_evaluation(evaluation_id, tenant=tenant)
    if info is None:  # pragma: no cover - deleted between two statements
        raise EvaluationNotFound(evaluation_id)
    return info


def _in_body(text: str, directory: Path) -> str:
    return text.replace(str(directory), "body")


def _unpack_tables(archive: IO[bytes], directory: Path, max_unpacked_bytes: int) -> None:
    """Write the archive's table files into ``directory``; `BundleError` naming each member
    that is not one (see `store_parquet_archive`)."""
    from auditor.schemas.formats import PARQUET_TABLES

    wanted = {f"{table}.parquet" for table in PARQUET_TABLES}
    try:
        zipped = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise BundleError([Problem("body", f"not a zip archive: {error}")]) from None
    with zipped:
        members = [m for m in zipped.infolist() if not m.is_dir()]
        folders = {m.filename.rsplit("/", 1)[0] for m in members if "/" in m.filename}
        prefix = (
            f"{folders.pop()}/"
            if len(folders) == 1 and all("/" in m.filename for m in members)
            else ""
        )
        problems: list[Problem] = []
        chosen: dict[str, zipfile.ZipInfo] = {}
        for member in members:
            inner = member.filename[len(prefix) :]
            where = f"body/{member.filename}"
            if inner not in wanted:
                expected = ", ".join(sorted(wanted))
                problems.append(Problem(where, f"not a table of a Parquet bundle ({expected})"))
            elif inner in chosen:
                problems.append(Problem(where, "given more than once"))
            else:
                chosen[inner] = member
        if problems:
            raise BundleError(problems)
        budget = max_unpacked_bytes
        for inner, member in chosen.items():
            where = f"body/{member.filename}"
            try:
                with zipped.open(member) as source, (directory / inner).open("wb") as target:
                    while piece := source.read(1024 * 1024):
                        budget -= len(piece)
                        if budget < 0:
                            message = f"the tables unpack to more than {max_unpacked_bytes} bytes"
                            raise BundleError([Problem(where, message)])
                        target.write(piece)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
                raise BundleError([Problem(where, f"cannot be unpacked: {error}")]) from None


def visible_evaluation(store: Store, evaluation_id: str, *, tenant: str) -> EvaluationInfo:
    """The tenant's evaluation once its import is complete; `EvaluationNotFound` otherwise."""
    info = store.get_evaluation(evaluation_id, tenant=tenant)
    if info is None or info.status != "ready":
        raise EvaluationNotFound(evaluation_id)
    return info


def delete_evaluation(store: Store, evaluation_id: str, *, tenant: str) -> None:
    """Delete an evaluation and its records, not while a queued or running audit reads it
    (`EvaluationInUse` names them)."""
    visible_evaluation(store, evaluation_id, tenant=tenant)
    active = store.active_audits_of_evaluation(evaluation_id)
    if active:
        raise EvaluationInUse(active)
    if not store.delete_evaluation(evaluation_id, tenant=tenant):
        raise EvaluationNotFound(evaluation_id)


def _mark(bits: bytearray, index: int) -> bool:
    """Set bit ``index``; True if it was set already."""
    byte, bit = divmod(index, 8)
    if byte >= len(bits):
        bits.extend(bytes(max(byte + 1 - len(bits), len(bits))))  # amortized doubling
    mask = 1 << bit
    seen = bits[byte] & mask
    bits[byte] |= mask
    return bool(seen)


def _location(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


class StreamImporter:
    """One JSONL upload being validated and stored; `feed` pieces, then `finish` or `abort`."""

    def __init__(
        self, store: Store, *, tenant: str, name: str | None, normalize: Normalization = "none"
    ) -> None:
        self._store = store
        self._tenant = tenant
        self._name = name
        self._normalize: Normalization = normalize
        self._writer: EvaluationImport | None = None
        self._digest = hashlib.sha256()
        self._partial = b""
        self._skipping_long_line = False
        self._line = 0
        self._items: dict[str, tuple[int, int]] = {}
        self._models: dict[str, int] = {}
        self._outputs_seen: list[bytearray] = []
        self._verdicts_seen: dict[tuple[int, int], bytearray] = {}
        self._pending: dict[str, list[Any]] = {kind: [] for kind in _KINDS}
        self._pending_rows = 0
        self.problems: list[Problem] = []
        self.n_problems = 0
        self.n_bytes = 0

    # --- input --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Take the next piece of the upload (split anywhere, even inside a line)."""
        self._digest.update(data)
        self.n_bytes += len(data)
        if self._skipping_long_line:
            newline = data.find(b"\n")
            if newline < 0:
                return
            self._skipping_long_line = False
            self._line += 1
            data = data[newline + 1 :]
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._line += 1
            self._record(line)
        if len(self._partial) > MAX_LINE_BYTES:
            self._problem(f"line {self._line + 1}", f"longer than {MAX_LINE_BYTES} bytes")
            self._partial = b""
            self._skipping_long_line = True

    def finish(self) -> EvaluationInfo:
        """Check what only the whole upload shows, then commit; `BundleError` (after rolling
        back) if anything was wrong."""
        if self._skipping_long_line:
            self._skipping_long_line = False
        elif self._partial:
            self._line += 1
            self._record(self._partial)
        self._partial = b""
        if not self._items:
            self._problem("items", "must contain at least one item")
        # No model records is fine: items alone are the input of an audit whose spec names
        # the models (an output or verdict naming an unknown model is a problem of its own).
        if self.n_problems:
            self.abort()
            problems = list(self.problems)
            if self.n_problems > len(problems):
                hidden = self.n_problems - len(problems)
                problems.append(Problem("<upload>", f"{hidden} more problems not listed"))
            raise BundleError(problems)
        self._flush()
        writer = self._writer_now()
        self._writer = None
        return writer.commit(sha256=self._digest.hexdigest())

    def abort(self) -> None:
        """Discard everything written so far (safe to call more than once)."""
        self._pending = {kind: [] for kind in _KINDS}
        self._pending_rows = 0
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.rollback()

    # --- records --------------------------------------------------------------------------------

    def _problem(self, path: str, message: str) -> None:
        self.n_problems += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(path, message))
        if self._writer is not None or self._pending_rows:
            self.abort()  # nothing more will be written: release the transaction now

    def _record(self, line: bytes) -> None:
        if not line.strip():
            return
        where = f"line {self._line}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            self._problem(where, f"not valid JSON: {error}")
            return
        if not isinstance(record, dict):
            self._problem(where, "a record must be a JSON object")
            return
        if b"\\u0000" in line and (found := nul_paths(record)):
            for loc in found:
                self._problem(f"{where}{_location(loc)}", NUL_MESSAGE)
            return
        kind = record.pop("kind", None)
        if kind == "header":
            version = record.get("schema_version", SCHEMA_VERSION)
            if version != SCHEMA_VERSION:
                self._problem(f"{where}.schema_version", f"unsupported version {version!r}")
            return
        model = _KINDS.get(kind) if isinstance(kind, str) else None
        if model is None:
            self._problem(
                f"{where}.kind", f"must be one of header, {', '.join(_KINDS)}; got {kind!r}"
            )
            return
        try:
            value = model.model_validate(record, strict=True)  # as the JSON Schema says
        except ValidationError as error:
            for detail in error.errors():
                shown = detail.get("input")
                got = f" (got {shown!r})" if not isinstance(shown, dict | list) else ""
                self._problem(f"{where}{_location(detail['loc'])}", f"{detail['msg']}{got}")
            return
        if isinstance(value, Item):
            self._item(where, value)
        elif isinstance(value, ModelInfo):
            self._model(where, value)
        elif isinstance(value, Output):
            self._output(where, value)
        elif isinstance(value, Verdict):
            self._verdict(where, value)
        elif isinstance(value, Comparison):
            self._comparison(where, value)
        elif isinstance(value, Label):
            self._label(where, value)

    def _item(self, where: str, item: Item) -> None:
        ok = True
        if item.id in self._items:
            self._problem(f"{where}.id", f"duplicate item id {item.id!r}")
            ok = False
        if len(item.options) < 2:
            self._problem(f"{where}.options", f"needs at least 2 options; got {len(item.options)}")
            ok = False
        elif (message := index_problem(item.gold, len(item.options))) is not None:
            self._problem(f"{where}.gold", message)
            ok = False
        if item.id not in self._items:
            self._items[item.id] = (len(self._items), len(item.options))
        if ok:
            self._add("item", item)

    def _model(self, where: str, model: ModelInfo) -> None:
        if model.name in self._models:
            self._problem(f"{where}.name", f"duplicate model name {model.name!r}")
            return
        self._models[model.name] = len(self._models)
        self._outputs_seen.append(bytearray())
        self._add("model", model)

    def _output(self, where: str, output: Output) -> None:
        found: list[tuple[str, str]] = []
        model_index = self._models.get(output.model)
        if model_index is None:
            found.append((".model", f"unknown model {output.model!r} ({_ORDER_HINT})"))
        answered = self._items.get(output.item)
        if answered is None:
            found.append((".item", f"unknown item {output.item!r} ({_ORDER_HINT})"))
        if (
            model_index is not None
            and answered is not None
            and _mark(self._outputs_seen[model_index], answered[0])
        ):
            found.append(("", "duplicate output for this model and item"))
        probs = output_value_problems(
            output, answered[1] if answered is not None else None, self._normalize, found
        )
        for field, message in found:
            self._problem(f"{where}{field}", message)
        if not found:
            self._add(
                "output",
                output if probs is output.probs else output.model_copy(update={"probs": probs}),
            )

    def _verdict(self, where: str, verdict: Verdict) -> None:
        found: list[tuple[str, str]] = []
        indices = []
        for field in ("judge", "candidate"):
            name = getattr(verdict, field)
            index = self._models.get(name)
            if index is None:
                found.append((f".{field}", f"unknown model {name!r} ({_ORDER_HINT})"))
            indices.append(index)
        item = self._items.get(verdict.item)
        if item is None:
            found.append((".item", f"unknown item {verdict.item!r} ({_ORDER_HINT})"))
        judge, candidate = indices
        if judge is not None and candidate is not None and item is not None:
            seen = self._verdicts_seen.setdefault((judge, candidate), bytearray())
            if _mark(seen, item[0]):
                found.append(("", "duplicate verdict for this judge, candidate and item"))
        for field, message in found:
            self._problem(f"{where}{field}", message)
        if not found:
            self._add("verdict", verdict)

    def _comparison(self, where: str, comparison: Comparison) -> None:
        """The judge must be a model streamed before; the candidates and the winner follow the
        bundle's rules (`validate_bundle` applies the same when the upload is read back)."""
        found: list[tuple[str, str]] = []
        if comparison.judge not in self._models:
            found.append((".judge", f"unknown model {comparison.judge!r} ({_ORDER_HINT})"))
        for field in ("candidate_a", "candidate_b"):
            try:
                parse_candidate(getattr(comparison, field))
            except ValueError as error:
                found.append((f".{field}", str(error)))
        allowed = (comparison.candidate_a, comparison.candidate_b, TIE, None)
        if comparison.winner not in allowed:
            found.append(
                (
                    ".winner",
                    f"must be candidate_a, candidate_b, 'tie' or null; got {comparison.winner!r}",
                )
            )
        for field, message in found:
            self._problem(f"{where}{field}", message)
        if not found:
            self._add("comparison", comparison)

    def _label(self, where: str, label: Label) -> None:
        found: list[tuple[str, str]] = []
        if label.candidate not in self._models:
            found.append((".candidate", f"unknown model {label.candidate!r} ({_ORDER_HINT})"))
        if label.item not in self._items:
            found.append((".item", f"unknown item {label.item!r} ({_ORDER_HINT})"))
        for field, message in found:
            self._problem(f"{where}{field}", message)
        if not found:
            self._add("label", label)

    # --- writing ------------------------------------------------------------------------------

    def _add(self, kind: str, record: BaseModel) -> None:
        if self.n_problems:
            return  # the upload will be refused: keep validating, stop writing
        self._pending[kind].append(record)
        self._pending_rows += 1
        if self._pending_rows >= ROWS_PER_CHUNK:
            self._flush()

    def _writer_now(self) -> EvaluationImport:
        if self._writer is None:
            self._writer = self._store.begin_evaluation_import(tenant=self._tenant, name=self._name)
        return self._writer

    def _flush(self) -> None:
        if not self._pending_rows:
            return
        pending, self._pending = self._pending, {kind: [] for kind in _KINDS}
        self._pending_rows = 0
        self._writer_now().add(
            items=pending["item"],
            models=pending["model"],
            outputs=pending["output"],
            verdicts=pending["verdict"],
            comparisons=pending["comparison"],
            labels=pending["label"],
        )
