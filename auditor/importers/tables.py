"""Tables (CSV, JSONL) of items, answers and verdicts turned into a bundle."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from auditor.importers.common import Builder, ImportResult, json_lines, letter_index, os_message
from auditor.schemas.bundle import Item, ModelInfo, Normalization, Output, Verdict

__all__ = ["TABLE_COLUMNS", "TableFormat", "import_table"]

TableFormat = Literal["csv", "jsonl", "parquet"]

# --- simple tables (CSV, JSONL) ------------------------------------------------------------------

TABLE_COLUMNS: Final = {
    "item_id": "Item id (required on every row).",
    "question": "Question text.",
    "options": "The options as a JSON list of strings; or option_1, option_2, ... columns.",
    "option_<n>": "The n-th option (option_1 is index 0, letter A), or option_A, option_B, ...; "
    "empty cells after the last.",
    "gold": "The correct option: a 0-based index or a letter (A = option_1).",
    "category": "Optional subject or category of the item.",
    "difficulty": "Optional difficulty (a number).",
    "model": "The answering model; a row without one only defines its item.",
    "provider": "Optional provider of `model`.",
    "family": "Optional family of `model`.",
    "probs": "The model's probabilities as a JSON list; or prob_1, prob_2, ... columns.",
    "prob_<n>": "The model's probability of option_<n> (or prob_A, prob_B, ...).",
    "choice": "The model's chosen option: a 0-based index or a letter.",
    "response": "The model's free-form answer.",
    "judge": "A judge of `model`'s free-form answer; with `verdict`, the row adds a verdict.",
    "verdict": "1/0, true/false, C/I or correct/incorrect; empty = unparseable judge reply.",
    "judge_raw": "The judge's raw reply.",
}
"""The columns (CSV) or keys (JSONL) `import_table` reads; one row per item and model."""


def import_table(
    path: Path | Sequence[Path],
    *,
    table_format: TableFormat | None = None,
    normalize: Normalization = "none",
) -> ImportResult:
    """Import tables of items, answers and verdicts: CSV, JSONL or Parquet, one file or several.

    One row per item and model (see `TABLE_COLUMNS`): item columns may repeat on each row of the
    item and must then agree; a row with ``model`` adds that model's output (``probs`` and/or
    ``choice``, optional ``response``); a row with ``judge`` adds the judge's verdict on
    ``model``'s answer. Empty cells are missing values. Problems name the file, line (or
    Parquet row) and column. ``normalize`` is applied to the probabilities as `validate_bundle`
    does.

    Tables as people export them are read: options and probabilities as ``option_A``/``prob_A``
    letter columns as well as ``option_1``/``prob_1``; pandas' index column (an unnamed first
    column, or ``Unnamed: 0``) ignored; the CSV delimiter sniffed among ``,`` ``;`` tab and
    ``|``, with decimal commas (``0,25``) in number columns when it is ``;`` (European Excel);
    a verdict written ``1.0``/``0.0`` accepted (``0.5`` is refused). Answers and verdicts may
    come in separate files (all files' rows are read as one table); a verdict on a model's
    answer to an item that the answer files do not hold is refused as mis-attributed.
    ``table_format`` is taken from each file's suffix when not given (``.jsonl``,
    ``.parquet``, else CSV).
    """
    builder = Builder()
    paths = [path] if isinstance(path, Path) else list(path)
    rows = _all_rows(paths, table_format, builder)
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
    _check_verdict_targets(answer_rows, builder)
    return builder.finish(normalize=normalize)


def _all_rows(
    paths: list[Path], table_format: TableFormat | None, builder: Builder
) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in paths:
        kind = table_format or _format_of(path)
        builder.count("files")
        if kind == "jsonl":
            yield from _jsonl_rows(path, builder)
        elif kind == "parquet":
            yield from _parquet_rows(path, builder)
        else:
            yield from _csv_rows(path, builder)


def _format_of(path: Path) -> TableFormat:
    if path.suffix == ".jsonl":
        return "jsonl"
    if path.suffix in (".parquet", ".pq"):
        return "parquet"
    return "csv"


def _check_verdict_targets(answer_rows: list[tuple[str, dict[str, Any]]], builder: Builder) -> None:
    """A verdict on an answer the answer files do not hold is mis-attributed: refuse it.

    Checked only for models whose answers the tables give at all (a table of verdicts alone,
    on answers kept elsewhere, is fine).
    """
    answered = {model for model, _ in builder.outputs}
    for where, parsed in answer_rows:
        if "judge" not in parsed or parsed["model"] not in answered:
            continue
        if (parsed["model"], parsed["item_id"]) not in builder.outputs:
            builder.problem(
                f"{where}.model",
                f"a verdict on {parsed['model']}'s answer to item {parsed['item_id']!r}, but the "
                f"tables hold no answer of {parsed['model']} to that item (a wrong model or item?)",
            )


def _parquet_rows(path: Path, builder: Builder) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of a Parquet file (read with pandas and pyarrow), located as ``row <n>`` (1-based)."""
    import pandas as pd  # only for Parquet tables

    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises its own kinds for a damaged or foreign file
        builder.problem(str(path), f"cannot read this Parquet file: {error}")
        return
    header = [str(name) for name in frame.columns]
    header, dropped = _without_index_column(header)
    if dropped:
        frame = frame.drop(columns=[frame.columns[0]])
        builder.say(f"{path}: its first column {dropped!r} is pandas' index: ignored")
    if not _table_header_ok(header, f"{path} header", builder):
        return
    for number, record in enumerate(frame.to_dict(orient="records"), start=1):
        cells = {}
        for name, value in zip(header, record.values(), strict=True):
            value = value.tolist() if hasattr(value, "tolist") else value
            if value is None or (isinstance(value, float) and value != value) or value == "":
                continue
            cells[name] = value
        yield f"{path} row {number}", cells


def _without_index_column(header: list[str]) -> tuple[list[str], str | None]:
    """pandas writes its index as an unnamed first column ('' in CSV, 'Unnamed: 0' read back)."""
    if header and header[0].strip() in ("", "Unnamed: 0", "__index_level_0__"):
        return header[1:], header[0]
    return header, None


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
_NUMBERED = re.compile(r"^(option|prob)_(\d+|[A-Z])$")
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
    builder: Builder,
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
    index = letter_index(value)
    if index >= n_options:
        return f"letter {value!r} is past the last option ({chr(ord('A') + n_options - 1)})"
    return index


def _table_model_fields(
    parsed: dict[str, Any],
    where: str,
    model_fields: dict[str, dict[str, Any]],
    builder: Builder,
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


def _table_answer(where: str, parsed: dict[str, Any], builder: Builder) -> None:
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


_DELIMITERS: Final = ",;\t|"
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
_NUMBER_COLUMNS = re.compile(r"^(prob_(\d+|[A-Z])|difficulty|verdict)$")


def _csv_rows(path: Path, builder: Builder) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel writes a byte-order mark
    except (OSError, UnicodeDecodeError) as error:
        builder.problem(str(path), os_message(error))
        return
    delimiter = _sniff_delimiter(text)
    if delimiter != ",":
        builder.say(f"{path}: cells separated by {delimiter!r}")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            builder.problem(str(path), "empty file: expected a header row")
            return
        header = [name.strip() for name in header]
        header, dropped = _without_index_column(header)
        if dropped is not None:
            builder.say(f"{path}: its first column {dropped!r} is pandas' index: ignored")
        if not _table_header_ok(header, f"{path} line 1", builder):
            return
        start = reader.line_num + 1
        for cells in reader:
            where = f"{path} line {start}"
            start = reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if dropped is not None:
                cells = cells[1:]
            if len(cells) != len(header):
                builder.problem(where, f"has {len(cells)} cells; the header has {len(header)}")
                continue
            row = {}
            for name, cell in zip(header, cells, strict=True):
                cell = cell.strip()
                if not cell:
                    continue
                if delimiter == ";" and _NUMBER_COLUMNS.match(name) and _DECIMAL_COMMA.match(cell):
                    cell = cell.replace(",", ".")  # a decimal comma (European Excel export)
                row[name] = cell
            yield where, row
    except csv.Error as error:
        builder.problem(f"{path} line {reader.line_num}", f"not valid CSV: {error}")


def _sniff_delimiter(text: str) -> str:
    """The delimiter of the header row: the one of ``, ; tab |`` it holds most of (comma on a
    tie or none: a one-column table)."""
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 0 else ","


def _table_header_ok(header: list[str], where: str, builder: Builder) -> bool:
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


def _jsonl_rows(path: Path, builder: Builder) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, record in json_lines(path, builder):
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


def _table_row(row: dict[str, Any], where: str, builder: Builder) -> dict[str, Any] | None:
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
        number = _as_number(value)
        if number is not None and number in (0.0, 1.0):
            word = str(int(number))  # 1.0 / 0.0 as spreadsheets and pandas write them
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
    builder: Builder,
) -> list[Any] | None:
    """A list given as one JSON list (``options``) or as numbered columns (``option_1``, ...)."""
    numbered: dict[int, str] = {}
    for key in row:
        match = _NUMBERED.match(key)
        if match is not None and match.group(1) == prefix:
            suffix = match.group(2)
            number = int(suffix) if suffix.isdigit() else ord(suffix) - ord("A") + 1
            if number in numbered:
                builder.problem(f"{where}.{key}", f"the same option as column {numbered[number]}")
                return None
            numbered[number] = key
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
            amount = _as_number(cell)
            if amount is None:
                builder.problem(f"{where}.{name}", f"not a number: {cell!r}")
                return None
            values.append(amount)
    return values
