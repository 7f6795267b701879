"""`auditor import ...` and `auditor merge`: other tools' evaluation logs into a bundle.

A thin shell over `auditor.importers`: each command reads the logs, writes the validated bundle
(``.json``, or ``.jsonl`` records when ``--out`` ends so) and prints what it read, what it
skipped and why, and what it wrote. On bad input it writes one ``error: <where>: <message>``
line per problem to stderr and exits 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from auditor.schemas.problems import BundleError

if TYPE_CHECKING:  # the bundle models load with the command that reads one (start-up)
    from auditor.schemas.bundle import Bundle, Normalization

if TYPE_CHECKING:  # the importers load with their command, not with every `auditor` command
    from auditor.importers import ImportResult

__all__ = ["import_app", "merge", "write_bundle"]

EXIT_INVALID = 2

import_app = typer.Typer(
    help="Import evaluations from other tools into a bundle.", no_args_is_help=True
)

OutOption = Annotated[
    Path, typer.Option("--out", help="Bundle to write: .json, or .jsonl for one record a line.")
]


def _fail(problems: list[str]) -> NoReturn:
    for problem in problems:  # one line each, never wrapped, so tools can read them
        sys.stderr.write(f"error: {problem}\n")
    raise typer.Exit(EXIT_INVALID)


def write_bundle(bundle: Bundle, path: Path) -> None:
    """Write a bundle as one JSON document, or as JSONL records if ``path`` ends in .jsonl."""
    if path.suffix == ".jsonl":
        from auditor.schemas.bundle import SCHEMA_VERSION

        lines = [json.dumps({"kind": "header", "schema_version": SCHEMA_VERSION})]
        for kind, records in (
            ("item", bundle.items),
            ("model", bundle.models),
            ("output", bundle.outputs),
            ("verdict", bundle.verdicts),
            ("comparison", bundle.comparisons),
        ):
            lines.extend(
                json.dumps({"kind": kind, **record.model_dump(mode="json")}) for record in records
            )
        text = "\n".join(lines) + "\n"
    else:
        text = bundle.model_dump_json(indent=2) + "\n"
    path.write_text(text, encoding="utf-8")


def _run(do_import: Callable[[], ImportResult], out: Path) -> None:
    try:
        result = do_import()
    except BundleError as error:
        _fail([str(problem) for problem in error.problems])
    try:
        write_bundle(result.bundle, out)
    except OSError as error:
        _fail([f"--out {out}: {error.strerror or error}"])
    for line in result.report():  # what was read, what was skipped and why, what came out
        sys.stdout.write(f"{line}\n")
    sys.stdout.write(f"wrote {out}\n")


@import_app.command("lm-eval")
def lm_eval(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="lm-eval output directories, samples_<task>_<date>.jsonl or results_<date>.json "
            "files (run lm_eval with --log_samples)."
        ),
    ],
    out: OutOption,
    model_name: Annotated[
        list[str] | None,
        typer.Option(
            help="Name of the model: once for all paths, or once per path in their order "
            "(default: the model in the run's model_args)."
        ),
    ] = None,
    length_normalize: Annotated[
        bool,
        typer.Option(
            help="Divide each option's log-likelihood by its length in characters first "
            "(lm-eval's acc_norm); the result is a score, not the model's probability."
        ),
    ] = False,
) -> None:
    """Import lm-evaluation-harness multiple-choice samples; probs = softmax of log-likelihoods."""
    from auditor.importers import import_lm_eval

    _run(
        lambda: import_lm_eval(paths, model_name=model_name, length_normalize=length_normalize),
        out,
    )


@import_app.command("inspect")
def inspect(
    paths: Annotated[
        list[Path], typer.Argument(help="Inspect logs (.eval or .json) or directories of them.")
    ],
    out: OutOption,
    scorer: Annotated[
        str | None, typer.Option(help="Take verdicts from this model-graded scorer only.")
    ] = None,
) -> None:
    """Import Inspect logs: multiple-choice samples as outputs, model-graded ones as verdicts."""
    from auditor.importers import import_inspect

    _run(lambda: import_inspect(paths, scorer=scorer), out)


@import_app.command("helm")
def helm(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(help="HELM run directories (run_spec.json, scenario_state.json, ...)."),
    ],
    out: OutOption,
    annotation_judge: Annotated[
        list[str] | None,
        typer.Option(
            help="The model of a judge HELM names by a short name in its annotations: "
            "ANNOTATOR.SHORT=MODEL or SHORT=MODEL (repeatable)."
        ),
    ] = None,
) -> None:
    """Import HELM runs: joint multiple choice as choices, separate choices as probabilities."""
    from auditor.importers.helm import import_helm

    judges: dict[str, str] = {}
    for entry in annotation_judge or []:
        key, sep, model = entry.partition("=")
        if not sep or not key.strip() or not model.strip():
            expected = "expected SHORT=MODEL or ANNOTATOR.SHORT=MODEL"
            _fail([f"--annotation-judge: {expected}; got {entry!r}"])
        judges[key.strip()] = model.strip()
    _run(lambda: import_helm(run_dirs, annotation_judges=judges), out)


def _normalization(value: str) -> Normalization:
    if value not in ("none", "sum", "softmax"):
        _fail([f"--normalize: must be none, sum or softmax; got {value!r}"])
    return value  # type: ignore[return-value]


NormalizeOption = Annotated[
    str,
    typer.Option(help="How probabilities are read: none, sum or softmax (logits, log-probs)."),
]


@import_app.command("csv")
def csv_table(
    file: Annotated[Path, typer.Argument(help="CSV file with a header row.")],
    out: OutOption,
    normalize: NormalizeOption = "none",
) -> None:
    """Import a CSV table with a header row, one row per item and model.

    Columns: item_id, question, options (a JSON list) or option_1.., gold (index or letter),
    category, difficulty, model, provider, family, probs (a JSON list) or prob_1.., choice,
    response, judge, verdict (1/0, C/I; empty = unparseable), judge_raw.
    """
    normalization = _normalization(normalize)
    from auditor.importers import import_table

    _run(lambda: import_table(file, table_format="csv", normalize=normalization), out)


@import_app.command("jsonl")
def jsonl_table(
    file: Annotated[Path, typer.Argument(help="One JSON object a line, with the CSV's keys.")],
    out: OutOption,
    normalize: NormalizeOption = "none",
) -> None:
    """Import a JSONL table: one object a line with the keys of the CSV import."""
    normalization = _normalization(normalize)
    from auditor.importers import import_table

    _run(lambda: import_table(file, table_format="jsonl", normalize=normalization), out)


@import_app.command("pairwise")
def pairwise_table(
    file: Annotated[Path, typer.Argument(help="Pairwise table: .csv, or .jsonl one row a line.")],
    out: OutOption,
) -> None:
    """Import pairwise judgments: one row per comparison.

    Columns: judge, item, candidate_a, candidate_b (presentation order), winner (candidate id,
    tie, or empty when unparseable), raw; optional gold, human (JSON object annotator -> choice,
    or one plain choice), question, text_a, text_b. Any other column is an error.
    """
    from auditor.importers.pairwise import import_pairwise

    _run(lambda: import_pairwise(file), out)


def merge(
    bundles: Annotated[
        list[Path], typer.Argument(help="Bundles to merge (.json, .jsonl or Parquet), two or more.")
    ],
    out: OutOption,
) -> None:
    """Merge bundles from several sources into one; conflicting records are errors, by record."""
    from auditor.importers.merge import merge_bundles

    _run(lambda: merge_bundles(bundles), out)


@import_app.command("table")
def table(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="CSV (delimiter sniffed), JSONL or Parquet tables, by suffix; answers and "
            "verdicts may be in separate files."
        ),
    ],
    out: OutOption,
    normalize: NormalizeOption = "none",
) -> None:
    """Import tables as people export them (pandas, Excel, ...); columns as for `import csv`."""
    normalization = _normalization(normalize)
    from auditor.importers import import_table

    _run(lambda: import_table(files, normalize=normalization), out)
