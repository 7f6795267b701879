"""What every importer shares: the record builder that locates each problem by file, line or
sample and field, the reading helpers, and `ImportResult` with its account of what was read
and what was skipped, by reason.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.schemas.bundle import (
    Bundle,
    BundleError,
    Item,
    ModelInfo,
    Normalization,
    Output,
    Problem,
    Verdict,
    validate_bundle,
)

__all__ = [
    "Builder",
    "ImportResult",
    "argmax",
    "json_lines",
    "letter_index",
    "os_message",
    "read_json_file",
]


@dataclass(frozen=True)
class ImportResult:
    """A validated bundle, what was read, and what was left out on purpose (by reason)."""

    bundle: Bundle
    notes: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    remarks: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line: the counts of items, models, outputs and verdicts, then the notes."""
        bundle = self.bundle
        text = (
            f"{len(bundle.items)} items, {len(bundle.models)} models, "
            f"{len(bundle.outputs)} outputs, {len(bundle.verdicts)} verdicts"
        )
        if bundle.comparisons:
            text += f", {len(bundle.comparisons)} comparisons"
        return f"{text} ({'; '.join(self.notes)})" if self.notes else text

    def report(self) -> list[str]:
        """Lines for the user: what was read, each reason records were skipped, what came out.

        Example: ``["read: 2 files, 40 samples", "skipped: 3 samples with no answer letter",
        "imported: 10 items, 2 models, 17 outputs, 0 verdicts"]``.
        """
        bundle = self.bundle
        lines = [f"read: {', '.join(self.read)}"] if self.read else []
        lines.extend(f"skipped: {note.removeprefix('skipped ')}" for note in self.notes)
        lines.extend(f"note: {remark}" for remark in self.remarks)
        lines.append(
            f"imported: {len(bundle.items)} items, {len(bundle.models)} models, "
            f"{len(bundle.outputs)} outputs, {len(bundle.verdicts)} verdicts"
            + (f", {len(bundle.comparisons)} comparisons" if bundle.comparisons else "")
        )
        return lines


_SECTION_INDEX = re.compile(r"^(items|models|outputs|verdicts)\[(\d+)\]")


@dataclass
class Builder:
    """Accumulates records with the source (file and line or sample) each one came from."""

    problems: list[Problem] = field(default_factory=list)
    items: dict[str, Item] = field(default_factory=dict)
    item_sources: dict[str, str] = field(default_factory=dict)
    models: dict[str, ModelInfo] = field(default_factory=dict)
    outputs: dict[tuple[str, str], Output] = field(default_factory=dict)
    output_sources: dict[tuple[str, str], str] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    verdict_sources: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    counted: Counter[str] = field(default_factory=Counter)
    hints: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)

    def problem(self, path: str, message: str) -> None:
        if (path, message) not in self.seen:  # e.g. one run's problem met in each of its files
            self.seen.add((path, message))
            self.problems.append(Problem(path, message))

    def count(self, what: str, number: int = 1) -> None:
        """Count what was read (``"files"``, ``"samples"``, ...) for the report."""
        self.counted[what] += number

    def say(self, remark: str) -> None:
        """A remark for the report (e.g. how a model was named, that choices were shuffled)."""
        if remark not in self.remarks:
            self.remarks.append(remark)

    def hint(self, message: str) -> None:
        """A sentence added once after the problems, saying what they have in common."""
        if message not in self.hints:
            self.hints.append(message)

    def add_item(self, item: Item, source: str) -> bool:
        """Add an item; the same id read again must have the same options and gold."""
        first = self.items.get(item.id)
        if first is None:
            self.items[item.id] = item
            self.item_sources[item.id] = source
            return True
        differences = []
        if first.options != item.options:
            differences.append(f"options {item.options!r} here, {first.options!r} there")
        if first.gold != item.gold:
            differences.append(f"gold {item.gold} here, {first.gold} there")
        if differences:
            self.problem(
                source,
                f"item {item.id!r} differs from the one read at {self.item_sources[item.id]}: "
                + "; ".join(differences),
            )
            return False
        return True

    def add_model(self, name: str, provider: str | None = None) -> None:
        if name not in self.models:
            self.models[name] = ModelInfo(name=name, provider=provider)

    def add_output(self, output: Output, source: str) -> None:
        key = (output.model, output.item)
        if key in self.outputs:
            self.problem(
                source,
                f"a second answer of model {output.model!r} to item {output.item!r} "
                f"(the first is at {self.output_sources[key]})",
            )
            return
        self.outputs[key] = output
        self.output_sources[key] = source

    def add_verdict(self, verdict: Verdict, source: str) -> None:
        self.verdicts.append(verdict)
        self.verdict_sources.append(source)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] += count

    def read_summary(self) -> tuple[str, ...]:
        return tuple(f"{count} {what}" for what, count in self.counted.items())

    def fail(self) -> None:
        """Raise `BundleError` with the problems so far (and the hints) if there are any."""
        if self.problems:
            hints = [Problem("hint", hint) for hint in self.hints]
            raise BundleError([*self.problems, *hints])

    def finish(self, normalize: Normalization = "none") -> ImportResult:
        """Validate what was read; raise `BundleError` naming the source of every problem."""
        if not self.outputs and not self.verdicts and not self.problems:
            # Say why nothing came out instead of letting validation say "no items".
            said = self.remarks or [f"{n} {r}" for r, n in self.skipped.items()]
            self.problem(
                "import",
                "nothing to import: "
                + ("; ".join(said) if said else "no readable records in the files given"),
            )
        self.fail()
        bundle = Bundle(
            items=list(self.items.values()),
            models=list(self.models.values()),
            outputs=list(self.outputs.values()),
            verdicts=self.verdicts,
        )
        sources = {
            "items": list(self.item_sources.values()),
            "models": [],
            "outputs": list(self.output_sources.values()),
            "verdicts": self.verdict_sources,
        }
        try:
            validated = validate_bundle(bundle, normalize=normalize)
        except BundleError as error:
            problems = [located(p, sources) for p in error.problems]
            raise BundleError(problems + [Problem("hint", h) for h in self.hints]) from None
        notes = tuple(f"{reason}: {count}" for reason, count in self.skipped.items())
        return ImportResult(validated, notes, self.read_summary(), tuple(self.remarks))


def located(problem: Problem, sources: dict[str, list[str]]) -> Problem:
    """Prefix a `validate_bundle` problem with the file and line its record came from."""
    match = _SECTION_INDEX.match(problem.path)
    if match is None:
        return problem
    records = sources[match.group(1)]
    index = int(match.group(2))
    if index >= len(records):
        return problem
    return Problem(f"{records[index]}: {problem.path}", problem.message)


def json_lines(path: Path, builder: Builder) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank line that is a JSON object; problems otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        builder.problem(str(path), os_message(error))
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            builder.problem(f"{path} line {number}", f"not valid JSON: {error.msg}")
            continue
        if not isinstance(record, dict):
            builder.problem(f"{path} line {number}", "a line must hold a JSON object")
            continue
        yield number, record


def os_message(error: OSError | UnicodeDecodeError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text: {error.reason}"
    return error.strerror or str(error)


def read_json_file(path: Path, builder: Builder) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        builder.problem(str(path), os_message(error))
    except json.JSONDecodeError as error:
        builder.problem(str(path), f"not valid JSON at line {error.lineno}: {error.msg}")
    return None


def letter_index(letter: str) -> int:
    """'A' -> 0, 'B' -> 1, ... (inspect_ai's `answer_index`)."""
    return ord(letter.upper()) - ord("A")


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value, ties to the lowest index (as `numpy.argmax`)."""
    return max(range(len(values)), key=lambda i: (values[i], -i))
