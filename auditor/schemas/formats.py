"""Reading and writing bundles as JSON, JSONL or Parquet, into and from `BundleColumns`.

- JSON: one document (``.json``), parsed from bytes by orjson.
- JSONL: one record per line with a ``kind`` (``.jsonl``), each line parsed by orjson.
- Parquet: a directory (conventionally ``NAME.parquet/``) holding ``items.parquet``,
  ``models.parquet``, ``outputs.parquet`` and, when there are verdicts, ``verdicts.parquet``;
  one column per field of the record (``probs`` a list of float64, ``choice`` int64, ``verdict``
  int8, names and ids strings, nulls where a field is null). The schema version is in the
  key-value metadata of ``items.parquet`` (``judge_auditor.schema_version``). pyarrow reads the
  columns straight into numpy: a 1,000-model x 12,000-item x 10-option bundle never becomes
  Python objects.

Every format is validated by the same rules (`auditor.schemas.columns`) and every problem is
reported at once, named by record and field.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from auditor.schemas.bundle import (
    SCHEMA_VERSION,
    BundleError,
    Normalization,
    Problem,
    RawOutputs,
    RawVerdicts,
)
from auditor.schemas.columns import (
    BundleColumns,
    assemble,
    columns_from_document,
    columns_from_records,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "FORMATS",
    "PARQUET_TABLES",
    "BundleFormat",
    "bundle_format",
    "load_columns",
    "write_columns",
]

BundleFormat = Literal["json", "jsonl", "parquet"]
FORMATS: Final[tuple[BundleFormat, ...]] = ("json", "jsonl", "parquet")
PARQUET_TABLES: Final = ("items", "models", "outputs", "verdicts", "comparisons", "labels")
_VERSION_KEY: Final = b"judge_auditor.schema_version"


def bundle_format(path: str | Path) -> BundleFormat:
    """The format of a bundle path: a directory or a ``.parquet`` name is Parquet, ``.jsonl``
    is JSONL, anything else JSON."""
    path = Path(path)
    if path.suffix == ".parquet" or path.is_dir():
        return "parquet"
    return "jsonl" if path.suffix == ".jsonl" else "json"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a bundle is decoded and read into columns.

    Decoding allocates one dict per record (and a float per probability); every few hundred
    allocations the collector walks the young objects and, as the heap grows, all of them
    again: about 40% of `load_columns` on a 100,000-output JSON bundle. The decoded records
    hold no reference cycles (reference counting frees them), so nothing is left for the
    collector; it is switched back on (if it was on) when the load ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_columns(path: str | Path, *, normalize: Normalization = "none") -> BundleColumns:
    """Load and validate a bundle in any format; raise `BundleError` listing every problem."""
    with _collector_paused():
        return _load_columns(Path(path), normalize)


def _load_columns(path: Path, normalize: Normalization) -> BundleColumns:
    import orjson  # start-up: only the commands that load a bundle pay for it

    kind = bundle_format(path)
    try:
        if kind == "parquet":
            return _load_parquet(path, normalize)
        data = path.read_bytes()
    except OSError as error:
        raise BundleError([Problem(str(path), error.strerror or str(error))]) from None
    if kind == "jsonl":
        return columns_from_records(_jsonl_records(data, path.name), normalize=normalize)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise BundleError(
            [Problem(str(path), f"not valid JSON at line {error.lineno}: {error.msg}")]
        ) from None
    return columns_from_document(document, normalize=normalize)


def _jsonl_records(data: bytes, name: str) -> list[tuple[str, Any]]:
    import orjson

    records: list[tuple[str, Any]] = []
    problems: list[Problem] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            records.append((where, orjson.loads(line)))
        except orjson.JSONDecodeError as error:
            problems.append(Problem(where, f"not valid JSON: {error.msg}"))
    if problems:
        raise BundleError(problems)
    return records


# --- Parquet -------------------------------------------------------------------------------------


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.parquet
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise BundleError(
            [Problem("<parquet>", "reading Parquet needs pyarrow: pip install pyarrow")]
        ) from None
    return pyarrow


def _read_table(directory: Path, name: str, problems: list[Problem]) -> pa.Table | None:
    """The table, without the ``probs`` column of outputs (read row group by row group
    straight into one array by `_read_probs`, so its values are never held twice)."""
    pa = _pyarrow()
    path = directory / f"{name}.parquet"
    if not path.exists():
        if name in ("items", "models", "outputs"):
            problems.append(Problem(str(path), "missing: a Parquet bundle needs this table"))
        return None
    try:
        # ParquetFile, not read_table: read_table imports pyarrow.dataset (~1 s of start-up).
        parquet = pa.parquet.ParquetFile(path)
        columns = [
            c for c in parquet.schema_arrow.names if not (name == "outputs" and c == "probs")
        ]
        table = parquet.read(columns=columns)
        if name == "outputs" and "probs" in parquet.schema_arrow.names:
            table = table.replace_schema_metadata({b"judge_auditor.probs_file": str(path).encode()})
        return table
    except (OSError, pa.ArrowException) as error:
        problems.append(Problem(str(path), f"not a readable Parquet file: {error}"))
        return None


def _read_probs(
    path: Path, n: int, bad_rows: set[int], general: list[Problem]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(has_probs, lengths, values)`` of the outputs' ``probs`` list column.

    Row group by row group into one preallocated float64 array (sized by the row groups' leaf
    value counts, an upper bound), so peak memory is the values plus one row group. Rows with
    a null inside their list go to ``bad_rows`` (pydantic words their problem).
    """
    pa = _pyarrow()
    parquet = pa.parquet.ParquetFile(path)
    field = parquet.schema_arrow.field("probs")
    if not (pa.types.is_list(field.type) or pa.types.is_large_list(field.type)):
        general.append(Problem("outputs.parquet", f"column 'probs' has type {field.type}"))
        return None
    leaf_index = next(
        k
        for k in range(parquet.metadata.num_columns)
        if parquet.metadata.schema.column(k).path.split(".")[0] == "probs"
    )
    capacity = sum(
        parquet.metadata.row_group(g).column(leaf_index).num_values
        for g in range(parquet.num_row_groups)
    )
    values = np.empty(capacity, dtype=np.float64)
    has_probs = np.zeros(n, dtype=bool)
    lengths = np.zeros(n, dtype=np.int64)
    row = filled = 0
    for group in range(parquet.num_row_groups):
        for chunk in parquet.read_row_group(group, columns=["probs"]).column(0).chunks:
            size = len(chunk)
            offsets = _view(chunk.offsets) if chunk.offset == 0 and not chunk.null_count else None
            if offsets is not None:  # no null list: the lengths are the offsets' steps
                has_probs[row : row + size] = True
                lengths[row : row + size] = np.diff(offsets)
            else:
                has_probs[row : row + size] = ~chunk.is_null().to_numpy(zero_copy_only=False)
                lengths[row : row + size] = (
                    pa.compute.list_value_length(chunk).fill_null(0).to_numpy(zero_copy_only=False)
                )
            flat = pa.compute.list_flatten(chunk)
            if flat.null_count:
                owner = np.repeat(np.arange(row, row + size), lengths[row : row + size])
                bad_rows.update(np.unique(owner[flat.is_null().to_numpy(False)]).tolist())
                flat = flat.fill_null(0.0)
            array = _view(flat) if flat.type == pa.float64() else None
            if array is None:
                array = flat.cast(pa.float64()).to_numpy(zero_copy_only=False)
            if filled + array.size > values.size:  # the metadata undercounted: grow
                values = np.concatenate([values[:filled], np.empty(array.size + filled)])
            values[filled : filled + array.size] = array
            filled += array.size
            row += size
    return has_probs, lengths, values[:filled]


_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "items": ("id", "question", "options", "gold", "difficulty", "category"),
    "models": ("name", "provider", "family", "params"),
    "outputs": ("model", "item", "probs", "choice", "response", "variant"),
    "verdicts": ("judge", "candidate", "item", "verdict", "raw", "variant"),
    "comparisons": (
        "judge",
        "item",
        "candidate_a",
        "candidate_b",
        "winner",
        "raw",
        "gold",
        "human",
        "question",
        "text_a",
        "text_b",
    ),
    "labels": ("item", "candidate", "outcome", "annotator", "source"),
}


def _column_problems(table: pa.Table, name: str) -> list[Problem]:
    unknown = [c for c in table.column_names if c not in _COLUMNS[name]]
    return [
        Problem(f"{name}.parquet", f"unknown column {c!r}; known: {', '.join(_COLUMNS[name])}")
        for c in unknown
    ]


def _records(table: pa.Table | None, name: str, problems: list[Problem]) -> list[dict[str, Any]]:
    if table is None:
        return []
    problems.extend(_column_problems(table, name))
    return table.to_pylist()


_FIXED_WIDTH: Final[dict[str, type[np.generic]]] = {
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "float": np.float32,
    "double": np.float64,
}


def _view(array: pa.Array) -> np.ndarray | None:
    """A numpy view of a fixed-width numeric Arrow array without nulls, read from its data
    buffer; None for any other array (the caller converts it with ``to_numpy``).

    pyarrow's ``to_numpy`` imports pandas on first use: ~0.2 s of a command that reads a
    Parquet bundle, whose usual columns (dictionary codes, list offsets, probabilities, codes
    without nulls) need no conversion at all.
    """
    dtype = _FIXED_WIDTH.get(str(array.type))
    if dtype is None or array.null_count:
        return None
    if len(array) == 0:
        return np.zeros(0, dtype=dtype)
    data = np.frombuffer(array.buffers()[1], dtype=dtype, count=array.offset + len(array))
    return data[array.offset :]


def _strings(column: pa.ChunkedArray) -> tuple[np.ndarray, list[Any]]:
    """Codes (int64, -1 where null) and the distinct values of a string column."""
    pa = _pyarrow()
    array = column.combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = array.dictionary_encode()
    codes = _view(array.indices)
    if codes is None:
        codes = array.indices.to_numpy(zero_copy_only=False)
        codes = np.where(np.isnan(codes), -1, codes) if codes.dtype.kind == "f" else codes
    return codes.astype(np.int64), array.dictionary.to_pylist()


def _optional_strings(table: pa.Table, name: str) -> list[Any] | None:
    """A nullable column as a list, or None when it is absent or entirely null."""
    if name not in table.column_names or table.column(name).null_count == table.num_rows:
        return None
    return table.column(name).to_pylist()


def _row(table: pa.Table, k: int) -> dict[str, Any]:
    return table.slice(k, 1).to_pylist()[0]


def _raw_outputs(
    table: pa.Table, problems: list[tuple[int, Problem]], general: list[Problem]
) -> RawOutputs:
    """Outputs table -> columns; rows whose values pydantic would reject are validated by
    `Output` to word their problems (a null name, a null inside ``probs``)."""
    from pydantic import ValidationError

    from auditor.schemas.bundle import Output, _pydantic_problems

    pa = _pyarrow()
    n = table.num_rows
    general.extend(_column_problems(table, "outputs"))
    names = set(table.column_names)
    keep = np.ones(n, dtype=bool)
    bad_rows: set[int] = set()
    for required in ("model", "item"):
        if required not in names:
            general.append(Problem("outputs.parquet", f"missing column {required!r}"))
            keep[:] = False
    model, model_names = (
        _strings(table.column("model")) if "model" in names else (np.zeros(n, np.int64), [])
    )
    item, item_names = (
        _strings(table.column("item")) if "item" in names else (np.zeros(n, np.int64), [])
    )
    bad_rows.update(np.flatnonzero(model < 0).tolist())
    bad_rows.update(np.flatnonzero(item < 0).tolist())
    probs_file = (table.schema.metadata or {}).get(b"judge_auditor.probs_file")
    read = _read_probs(Path(probs_file.decode()), n, bad_rows, general) if probs_file else None
    if read is None:
        if probs_file:
            keep[:] = False
        has_probs, lengths, values = np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(0)
    else:
        has_probs, lengths, values = read
    if "choice" in names:
        column = table.column("choice").combine_chunks()
        stated = _view(column)
        if column.null_count == len(column):  # no choices (outputs with probabilities)
            has_choice, choice = np.zeros(n, bool), np.full(n, -1, np.int64)
        elif stated is not None and stated.dtype.kind == "i":
            has_choice, choice = np.ones(n, bool), stated.astype(np.int64)
        else:
            has_choice = ~column.is_null().to_numpy(zero_copy_only=False)
            choice = column.fill_null(-1).cast(pa.int64()).to_numpy().astype(np.int64)
    else:
        has_choice, choice = np.zeros(n, bool), np.full(n, -1, np.int64)
    response = _optional_strings(table, "response")
    variant = _optional_strings(table, "variant")
    if variant is not None:
        bad_rows.update(k for k, v in enumerate(variant) if v == "")
    for k in sorted(bad_rows):
        try:
            Output.model_validate(_row(table, k))
        except ValidationError as error:
            problems.extend((k, p) for p in _pydantic_problems(error, f"outputs[{k}]"))
        keep[k] = False
    return RawOutputs(
        model=np.maximum(model, 0),
        model_names=model_names or [""],
        item=np.maximum(item, 0),
        item_names=item_names or [""],
        has_probs=has_probs,
        lengths=lengths,
        values=values,
        has_choice=has_choice,
        choice=choice,
        response=response,
        keep=keep,
        variant=variant,
    )


def _raw_verdicts(
    table: pa.Table | None, problems: list[tuple[int, Problem]], general: list[Problem]
) -> RawVerdicts:
    from pydantic import ValidationError

    from auditor.schemas.bundle import Verdict, _pydantic_problems

    pa = _pyarrow()
    if table is None:
        empty = np.zeros(0, dtype=np.int64)
        return RawVerdicts(empty, empty, empty, [], [], np.zeros(0, np.int8), None, empty > 0)
    n = table.num_rows
    general.extend(_column_problems(table, "verdicts"))
    names = set(table.column_names)
    keep = np.ones(n, dtype=bool)
    bad_rows: set[int] = set()
    for required in ("judge", "candidate", "item", "verdict"):
        if required not in names:
            general.append(Problem("verdicts.parquet", f"missing column {required!r}"))
            keep[:] = False
    if not keep.all():
        empty = np.zeros(n, dtype=np.int64)
        return RawVerdicts(empty, empty, empty, [""], [""], np.zeros(n, np.int8), None, keep)
    # Judges and candidates share one table of names.
    both = pa.chunked_array(
        table.column("judge").cast(pa.string()).chunks
        + table.column("candidate").cast(pa.string()).chunks,
        type=pa.string(),
    )
    codes, model_names = _strings(both)
    judge, candidate = codes[:n], codes[n:]
    item, item_names = _strings(table.column("item"))
    for column in (judge, candidate, item):
        bad_rows.update(np.flatnonzero(column < 0).tolist())
    verdict = table.column("verdict").combine_chunks()
    stated = _view(verdict)
    if stated is not None and stated.dtype.kind == "i":  # no null verdict
        raw_values, null_verdict = stated.astype(np.int64), np.zeros(len(verdict), bool)
    else:
        raw_values = verdict.fill_null(-1).cast(pa.int64()).to_numpy().astype(np.int64)
        null_verdict = verdict.is_null().to_numpy(zero_copy_only=False)
    bad_rows.update(np.flatnonzero((raw_values < -1) | (raw_values > 1)).tolist())
    bad_rows.update(np.flatnonzero(~null_verdict & (raw_values == -1)).tolist())
    raw = _optional_strings(table, "raw")
    variant = _optional_strings(table, "variant")
    if variant is not None:
        bad_rows.update(k for k, v in enumerate(variant) if v == "")
    for k in sorted(bad_rows):
        try:
            Verdict.model_validate(_row(table, k))
        except ValidationError as error:
            problems.extend((k, p) for p in _pydantic_problems(error, f"verdicts[{k}]"))
        keep[k] = False
    return RawVerdicts(
        judge=np.maximum(judge, 0),
        candidate=np.maximum(candidate, 0),
        item=np.maximum(item, 0),
        names=model_names or [""],
        item_names=item_names or [""],
        value=np.clip(raw_values, -1, 1).astype(np.int8),
        raw=raw,
        keep=keep,
        variant=variant,
    )


def _load_parquet(directory: Path, normalize: Normalization) -> BundleColumns:
    from pydantic import ValidationError

    from auditor.schemas.bundle import Comparison, Item, Label, ModelInfo, _pydantic_problems

    if not directory.is_dir():
        raise BundleError(
            [Problem(str(directory), "a Parquet bundle is a directory of items.parquet, ...")]
        )
    problems: list[Problem] = []
    tables = {name: _read_table(directory, name, problems) for name in PARQUET_TABLES}
    if problems:
        raise BundleError(problems)
    items_table = tables["items"]
    if items_table is None:  # reported as missing above; this narrows the type
        raise BundleError([Problem(str(directory), "items.parquet is missing")])
    version = (items_table.schema.metadata or {}).get(_VERSION_KEY, SCHEMA_VERSION.encode())
    if version.decode() != SCHEMA_VERSION:
        problems.append(
            Problem("items.parquet", f"unsupported schema_version {version.decode()!r}")
        )
    items: list[Any] = []
    models: list[Any] = []
    comparisons: list[Any] = []
    labels: list[Any] = []
    header_valid = True
    for name, model_type, target in (
        ("items", Item, items),
        ("models", ModelInfo, models),
        ("comparisons", Comparison, comparisons),
        ("labels", Label, labels),
    ):
        for k, record in enumerate(_records(tables[name], name, problems)):
            try:
                target.append(model_type.model_validate(record))
            except ValidationError as error:
                problems.extend(_pydantic_problems(error, f"{name}[{k}]"))
                header_valid = False
    output_problems: list[tuple[int, Problem]] = []
    verdict_problems: list[tuple[int, Problem]] = []
    outputs = _raw_outputs(tables["outputs"], output_problems, problems)
    verdicts = _raw_verdicts(tables["verdicts"], verdict_problems, problems)
    return assemble(
        items,
        models,
        outputs,
        verdicts,
        normalize,
        problems,
        record_problems=(("outputs", output_problems), ("verdicts", verdict_problems)),
        header_valid=header_valid and not problems,
        comparisons=comparisons,
        labels=labels,
    )


# --- writing -------------------------------------------------------------------------------------


def _output_table(columns: BundleColumns) -> pa.Table:
    pa = _pyarrow()
    names = pa.array([m.name for m in columns.models], type=pa.string())
    ids = pa.array([i.id for i in columns.items], type=pa.string())
    offsets = columns.probs_offsets()
    probs = pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32) if offsets[-1] < 2**31 else offsets),
        pa.array(columns.output_probs, type=pa.float64()),
        mask=pa.array(~columns.output_has_probs),
    )
    choice = pa.array(columns.output_choice, mask=columns.output_choice < 0, type=pa.int64())
    response = pa.array(
        columns.output_response
        if columns.output_response is not None
        else [None] * columns.n_outputs,
        type=pa.string(),
    )
    variant = pa.array(
        columns.output_variant
        if columns.output_variant is not None
        else [None] * columns.n_outputs,
        type=pa.string(),
    )
    return pa.table(
        {
            "model": pa.DictionaryArray.from_arrays(
                pa.array(columns.output_model, type=pa.int32()), names
            ),
            "item": pa.DictionaryArray.from_arrays(
                pa.array(columns.output_item, type=pa.int32()), ids
            ),
            "probs": probs,
            "choice": choice,
            "response": response,
            "variant": variant,
        }
    )


def _verdict_table(columns: BundleColumns) -> pa.Table:
    pa = _pyarrow()
    names = pa.array([m.name for m in columns.models], type=pa.string())
    ids = pa.array([i.id for i in columns.items], type=pa.string())
    return pa.table(
        {
            "judge": pa.DictionaryArray.from_arrays(
                pa.array(columns.verdict_judge, type=pa.int32()), names
            ),
            "candidate": pa.DictionaryArray.from_arrays(
                pa.array(columns.verdict_candidate, type=pa.int32()), names
            ),
            "item": pa.DictionaryArray.from_arrays(
                pa.array(columns.verdict_item, type=pa.int32()), ids
            ),
            "verdict": pa.array(
                columns.verdict_value, mask=columns.verdict_value < 0, type=pa.int8()
            ),
            "raw": pa.array(
                columns.verdict_raw
                if columns.verdict_raw is not None
                else [None] * columns.n_verdicts,
                type=pa.string(),
            ),
            "variant": pa.array(
                columns.verdict_variant
                if columns.verdict_variant is not None
                else [None] * columns.n_verdicts,
                type=pa.string(),
            ),
        }
    )


def _write_parquet(columns: BundleColumns, directory: Path) -> None:
    pa = _pyarrow()
    directory.mkdir(parents=True, exist_ok=True)
    items = pa.Table.from_pylist(
        [i.model_dump() for i in columns.items],
        schema=pa.schema(
            [
                ("id", pa.string()),
                ("question", pa.string()),
                ("options", pa.list_(pa.string())),
                ("gold", pa.int64()),
                ("difficulty", pa.float64()),
                ("category", pa.string()),
            ],
            metadata={_VERSION_KEY: columns.schema_version.encode()},
        ),
    )
    models = pa.Table.from_pylist(
        [m.model_dump() for m in columns.models],
        schema=pa.schema(
            [
                ("name", pa.string()),
                ("provider", pa.string()),
                ("family", pa.string()),
                ("params", pa.float64()),
            ]
        ),
    )
    pa.parquet.write_table(items, directory / "items.parquet")
    pa.parquet.write_table(models, directory / "models.parquet")
    pa.parquet.write_table(_output_table(columns), directory / "outputs.parquet")
    optional = {
        "verdicts": _verdict_table(columns) if columns.n_verdicts else None,
        "comparisons": pa.Table.from_pylist([c.model_dump() for c in columns.comparisons])
        if columns.comparisons
        else None,
        "labels": pa.Table.from_pylist([label.model_dump() for label in columns.labels])
        if columns.labels
        else None,
    }
    for name, table in optional.items():
        path = directory / f"{name}.parquet"
        if table is not None:
            pa.parquet.write_table(table, path)
        elif path.exists():
            path.unlink()


def write_columns(
    columns: BundleColumns, path: str | Path, format: BundleFormat | None = None
) -> Path:
    """Write a bundle as JSON, JSONL or Parquet (default: by the path, see `bundle_format`)."""
    import orjson

    path = Path(path)
    kind = format or bundle_format(path)
    if kind not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)}; got {kind!r}")
    if kind == "parquet":
        _write_parquet(columns, path)
        return path
    document = columns.to_bundle().model_dump(mode="json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "json":
        path.write_bytes(orjson.dumps(document))
        return path
    with path.open("wb") as handle:
        handle.write(orjson.dumps({"kind": "header", "schema_version": columns.schema_version}))
        handle.write(b"\n")
        for section, kind_name in (
            ("items", "item"),
            ("models", "model"),
            ("outputs", "output"),
            ("verdicts", "verdict"),
            ("comparisons", "comparison"),
            ("labels", "label"),
        ):
            for record in document[section]:
                handle.write(orjson.dumps({"kind": kind_name, **record}))
                handle.write(b"\n")
    return path
