"""Pairwise judgments made elsewhere (MT-Bench, Arena-style logs, a team's spreadsheet) as a bundle.

A long table, CSV with a header row or JSONL with one object a line, one row per comparison:

- required: ``judge``, ``item``, ``candidate_a``, ``candidate_b`` (in presentation order),
  ``winner`` (the winning candidate's id, ``tie``, or empty/null when the judge's output could
  not be parsed), ``raw`` (the judge's output; may be empty);
- optional: ``gold`` (the better candidate when known), ``human`` (human choices: a JSON object
  ``{"annotator": "choice", ...}``, or a plain choice for one annotator named ``human``),
  ``question``, ``text_a``, ``text_b``.

Any other column is an error (a misspelt ``winer`` must not vanish). In CSV an empty cell is
null. Judges become the bundle's models; candidates stay ids (a variant id such as
``m1::pad:restate`` is read by the probes, `auditor.schemas.candidates`). `pairwise_rows`
writes a bundle's comparisons back in the same shape, so a table round-trips exactly.

Example row: ``judge=gpt-4o, item=q1, candidate_a=m1, candidate_b=m2, winner=m1, raw=[[A]]``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import ValidationError

from auditor.importers.common import ImportResult
from auditor.schemas.bundle import (
    Bundle,
    BundleError,
    Comparison,
    HumanChoice,
    ModelInfo,
    Problem,
    validate_bundle,
)

__all__ = [
    "PAIRWISE_OPTIONAL",
    "PAIRWISE_REQUIRED",
    "import_pairwise",
    "pairwise_rows",
    "write_pairwise",
]

PAIRWISE_REQUIRED: Final = ("judge", "item", "candidate_a", "candidate_b", "winner", "raw")
PAIRWISE_OPTIONAL: Final = ("gold", "human", "question", "text_a", "text_b")
SINGLE_ANNOTATOR: Final = "human"
"""Annotator name given to a ``human`` cell that holds one plain choice."""


def _human(value: Any, where: str, problems: list[Problem]) -> list[HumanChoice]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{"):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError as error:
                problems.append(Problem(f"{where}.human", f"not a JSON object: {error.msg}"))
                return []
        else:
            return [HumanChoice(annotator=SINGLE_ANNOTATOR, choice=value)]
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        problems.append(
            Problem(
                f"{where}.human",
                "must map annotator ids to a candidate id, 'tie' or null; "
                f"got {json.dumps(value)[:80]}",
            )
        )
        return []
    return [HumanChoice(annotator=k, choice=v) for k, v in value.items()]


def _rows(
    path: Path, table_format: Literal["csv", "jsonl"]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, row) for each row; raises BundleError for an unreadable file or header."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        message = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise BundleError([Problem(str(path), message or str(error))]) from None
    if table_format == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        _check_columns(header, f"{path.name} line 1")
        start = reader.line_num + 1  # a row may span lines: name the line it starts on
        for row in reader:
            where, start = f"{path.name} line {start}", reader.line_num + 1
            if None in row:
                raise BundleError([Problem(where, "more cells than columns")])
            yield (
                where,
                {key: (value if value != "" else None) for key, value in row.items()},
            )
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise BundleError([Problem(where, f"not valid JSON: {error.msg}")]) from None
        if not isinstance(row, dict):
            raise BundleError([Problem(where, "a row must be a JSON object")])
        _check_columns(list(row), where)
        yield where, row


def _check_columns(columns: Sequence[str], where: str) -> None:
    problems = [
        Problem(
            f"{where}.{column}",
            f"unknown column (expected {', '.join(PAIRWISE_REQUIRED + PAIRWISE_OPTIONAL)})",
        )
        for column in columns
        if column not in PAIRWISE_REQUIRED + PAIRWISE_OPTIONAL
    ]
    problems += [
        Problem(f"{where}.{column}", "required column is missing")
        for column in PAIRWISE_REQUIRED
        if column not in columns
    ]
    if problems:
        raise BundleError(problems)


def import_pairwise(
    path: str | Path, table_format: Literal["csv", "jsonl"] | None = None
) -> ImportResult:
    """Read a pairwise table into a validated bundle of comparisons (see module doc).

    Raises `BundleError` listing every problem, each located by file, line and column.
    """
    path = Path(path)
    kind = table_format or ("jsonl" if path.suffix in (".jsonl", ".ndjson") else "csv")
    if kind not in ("csv", "jsonl"):
        raise BundleError([Problem("table_format", f"must be csv or jsonl; got {kind!r}")])
    problems: list[Problem] = []
    comparisons: list[Comparison] = []
    lines: list[str] = []
    judges: dict[str, None] = {}
    for where, row in _rows(path, kind):
        human = _human(row.get("human"), where, problems)
        record = {k: row.get(k) for k in PAIRWISE_REQUIRED + PAIRWISE_OPTIONAL if k != "human"}
        for column in ("judge", "item", "candidate_a", "candidate_b"):
            if record[column] is None:
                problems.append(Problem(f"{where}.{column}", "must not be empty"))
        try:
            comparison = Comparison.model_validate({**record, "human": human})
        except ValidationError as error:
            for detail in error.errors():
                column = ".".join(str(part) for part in detail["loc"])
                problems.append(
                    Problem(f"{where}.{column}", f"{detail['msg']} (got {detail.get('input')!r})")
                )
            continue
        comparisons.append(comparison)
        lines.append(where)
        judges.setdefault(comparison.judge)
    if problems:
        raise BundleError(problems)
    if not comparisons:
        raise BundleError([Problem(str(path), "no rows")])
    bundle = Bundle(
        items=[], models=[ModelInfo(name=judge) for judge in judges], comparisons=comparisons
    )
    try:
        bundle = validate_bundle(bundle)
    except BundleError as error:
        raise BundleError([_located(problem, lines) for problem in error.problems]) from None
    return ImportResult(
        bundle=bundle,
        notes=(),
        read=(f"{path.name}: {len(comparisons)} comparisons by {len(judges)} judges",),
    )


def _located(problem: Problem, lines: list[str]) -> Problem:
    if problem.path.startswith("comparisons["):
        index = int(problem.path[len("comparisons[") : problem.path.index("]")])
        return Problem(f"{lines[index]}: {problem.path}", problem.message)
    return problem


def pairwise_rows(bundle: Bundle) -> list[dict[str, str | None]]:
    """A bundle's comparisons as table rows in the import's shape (optional columns only when
    some comparison fills them); ``human`` is written as a JSON object."""
    columns = list(PAIRWISE_REQUIRED) + [
        column
        for column in PAIRWISE_OPTIONAL
        if any(getattr(c, column) for c in bundle.comparisons)
    ]
    rows = []
    for comparison in bundle.comparisons:
        row: dict[str, str | None] = {}
        for column in columns:
            if column == "human":
                row[column] = (
                    json.dumps({h.annotator: h.choice for h in comparison.human})
                    if comparison.human
                    else None
                )
            else:
                row[column] = getattr(comparison, column)
        rows.append(row)
    return rows


def write_pairwise(bundle: Bundle, path: str | Path) -> None:
    """Write a bundle's comparisons as a pairwise CSV (null = empty cell) or JSONL table."""
    path = Path(path)
    rows = pairwise_rows(bundle)
    if path.suffix in (".jsonl", ".ndjson"):
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else PAIRWISE_REQUIRED)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
