"""`import_table` on tables as people export them: pandas (`DataFrame.to_csv` with its index,
`to_parquet`), European Excel (`;` and decimal commas), letter columns, answers and verdicts in
separate files. Each table is written here by pandas itself or as Excel writes it; expected
values are the frame's own."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from auditor.importers import import_table
from auditor.schemas.bundle import BundleError

ANSWERS = pd.DataFrame(
    {
        "item_id": ["q1", "q1", "q2", "q2"],
        "question": ["Capital of France?"] * 2 + ["2 + 2?"] * 2,
        "option_A": ["Berlin", "Berlin", "4", "4"],
        "option_B": ["Paris", "Paris", "3", "3"],
        "option_C": ["Rome", "Rome", "5", "5"],
        "gold": ["B", "B", "A", "A"],
        "model": ["m1", "m2", "m1", "m2"],
        "prob_A": [0.1, 0.6, 0.7, 0.2],
        "prob_B": [0.8, 0.3, 0.2, 0.5],
        "prob_C": [0.1, 0.1, 0.1, 0.3],
    }
)
VERDICTS = pd.DataFrame(
    {
        "item_id": ["q1", "q2", "q1"],
        "model": ["m1", "m1", "m2"],
        "judge": ["judge-x"] * 3,
        "verdict": [1.0, 0.0, 1.0],
    }
)


def problems_of(error: pytest.ExceptionInfo[BundleError]) -> list[str]:
    return [str(problem) for problem in error.value.problems]


def expected_probs() -> dict[tuple[str, str], list[float]]:
    return {
        (row.model, row.item_id): [row.prob_A, row.prob_B, row.prob_C]
        for row in ANSWERS.itertuples()
    }


def test_pandas_csv_with_its_index_and_letter_columns(tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    ANSWERS.to_csv(path)  # index=True: an unnamed first column 0, 1, 2, 3
    assert path.read_text().startswith(",item_id,")
    result = import_table(path)
    bundle = result.bundle
    assert {i.id: (i.options, i.gold) for i in bundle.items} == {
        "q1": (["Berlin", "Paris", "Rome"], 1),
        "q2": (["4", "3", "5"], 0),
    }
    assert {(o.model, o.item): o.probs for o in bundle.outputs} == pytest.approx(expected_probs())
    assert f"note: {path}: its first column '' is pandas' index: ignored" in result.report()


def test_european_excel_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    ANSWERS.to_csv(path, sep=";", decimal=",", index=False)
    assert ";0,1;" in path.read_text()
    result = import_table(path)
    assert {(o.model, o.item): o.probs for o in result.bundle.outputs} == pytest.approx(
        expected_probs()
    )
    assert f"note: {path}: cells separated by ';'" in result.report()


def test_answers_and_verdicts_in_separate_files_and_parquet(tmp_path: Path) -> None:
    answers = tmp_path / "answers.parquet"
    ANSWERS.to_parquet(answers)
    verdicts = tmp_path / "verdicts.csv"
    VERDICTS.to_csv(verdicts, index=False)
    assert "1.0" in verdicts.read_text()  # pandas writes the float column as 1.0 / 0.0
    result = import_table([answers, verdicts])
    bundle = result.bundle
    assert {(o.model, o.item): o.probs for o in bundle.outputs} == pytest.approx(expected_probs())
    assert sorted((v.candidate, v.item, v.verdict) for v in bundle.verdicts) == [
        ("m1", "q1", 1),
        ("m1", "q2", 0),
        ("m2", "q1", 1),
    ]
    assert result.report()[0] == "read: 2 files"


def test_a_verdict_on_an_answer_the_tables_do_not_hold_is_caught(tmp_path: Path) -> None:
    """Plant a mis-attribution: a verdict file names model m2's answer to q3, which no answer
    file holds (the verdict belongs to another model or item)."""
    answers = tmp_path / "answers.csv"
    ANSWERS.to_csv(answers, index=False)
    verdicts = tmp_path / "verdicts.csv"
    planted = VERDICTS.copy()
    planted.loc[2, "item_id"] = "q3"
    planted.to_csv(verdicts, index=False)
    with pytest.raises(BundleError) as error:
        import_table([answers, verdicts])
    assert (
        f"{verdicts} line 4.model: a verdict on m2's answer to item 'q3', but the tables hold "
        "no answer of m2 to that item (a wrong model or item?)"
    ) in problems_of(error)


def test_rejections_name_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "verdicts.csv"
    frame = VERDICTS.copy()
    frame["verdict"] = [1.0, 0.5, 1.0]
    frame.to_csv(path, sep=";", decimal=",", index=False)
    with pytest.raises(BundleError) as error:
        import_table(path)
    assert problems_of(error)[0].startswith(f"{path} line 3.verdict: must be 1/0, true/false")

    parquet = tmp_path / "answers.parquet"
    broken = ANSWERS.copy()
    broken["prob_B"] = [str(v) for v in broken["prob_B"]]  # a text column, as a sloppy export
    broken.loc[1, "prob_B"] = "lots"
    broken.to_parquet(parquet)
    with pytest.raises(BundleError) as error:
        import_table(parquet)
    assert problems_of(error) == [f"{parquet} row 2.prob_B: not a number: 'lots'"]
