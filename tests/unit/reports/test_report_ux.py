"""What a reader sees in the report: a simulated audit says so and is named, times are human,
the spec is an appendix file (not in the PDF body), the pooled estimate is off the summary, the
software behind the result is listed, and Figure 2 plots what the partial r measures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import reports
from auditor.schemas.result import AffinityReport
from reports.content import human_time, ordered_judges, verdict_line
from reports.figures import _beyond_accuracy, added_variable_panels
from tests.support.reports import large_report, small_report


@pytest.fixture(scope="module")
def small() -> AffinityReport:
    return small_report()


@pytest.fixture(scope="module")
def small_html(small: AffinityReport) -> bytes:
    """The small report's HTML, rendered once for the tests that only read it."""
    return reports.render(small, "html")


def _text(html: bytes) -> str:
    text = re.sub(rb"<(style|script)[^>]*>.*?</\1>", b" ", html, flags=re.S)
    return " ".join(re.sub(rb"<[^>]+>", b" ", text).decode().split())


def test_human_time_reads_like_a_date() -> None:
    assert human_time("2026-12-07T05:27:12.238544+00:00") == "7 December 2026, 05:27 UTC"
    assert human_time("2026-01-02T23:05:00+01:00") == "2 January 2026, 23:05 UTC+01:00"
    assert human_time(None) == "not recorded"


def test_header_names_the_audit_and_says_it_is_simulated(
    small: AffinityReport, small_html: bytes
) -> None:
    header = _text(small_html.split(b"</header>")[0])
    assert small.provenance.spec is not None
    assert small.provenance.spec["name"] in header
    assert "Simulated demo." in header
    assert "T" not in re.findall(r"analysed (\S+)", header)[0]  # no raw ISO timestamp
    real = small.model_copy(
        update={
            "provenance": small.provenance.model_copy(
                update={"spec": {**small.provenance.spec, "simulation": None}, "models": []}
            )
        }
    )
    assert "Simulated demo." not in _text(reports.render(real, "html"))


def test_pooled_estimate_is_labelled_and_not_in_the_summary(small_html: bytes) -> None:
    html = small_html.decode()
    summary = html[html.index('<section id="summary">') : html.index('<section id="figures"')]
    judges = html[html.index('<section id="judges"') : html.index('<section id="pairs"')]
    assert "Pooled" not in summary
    assert "Pooled estimate (a summary across judges, not a finding about any one judge)" in judges


def test_verdict_line_names_judges_in_the_report_order() -> None:
    report = large_report()
    line = verdict_line(report)
    ordered = [j.judge for j in ordered_judges(report)]
    flagged = [j for j in ordered if next(x for x in report.judges if x.judge == j).flagged]
    assert line.startswith(f"{len(flagged)} of {len(report.judges)} judges flagged")
    found = [re.search(rf"[ (]{re.escape(name)}[,)]", line) for name in ordered]
    assert all(found), line
    positions = [m.start() for m in found if m]
    assert positions == sorted(positions)


@pytest.mark.slow
def test_spec_is_an_appendix_file_and_not_in_the_pdf(small: AffinityReport, tmp_path: Path) -> None:
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "poppler-utils (pdftotext) is needed: scripts/test installs it"
    paths = reports.write_reports(small, tmp_path, ("html", "pdf"))
    assert paths["spec"].name == "report.spec.json"
    assert json.loads(paths["spec"].read_text()) == small.provenance.spec
    html = paths["html"].read_text()
    assert "report.spec.json" in html
    text = subprocess.run(
        [pdftotext, "-layout", str(paths["pdf"]), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert '"judge_prompt"' not in text and '"sampling"' not in text  # no raw spec JSON
    assert "report.spec.json" in text
    assert "hover a dash" not in text and "footnote under each table" in text
    assert "judge-auditor code (git commit)" in text


def test_added_variable_plot_shows_the_partial_r_and_the_ols_slope() -> None:
    """Frisch–Waugh–Lovell: the correlation of the two residual series equals the partial r
    (pingouin's, stored in the result) and the slope through them equals the OLS CAPA slope
    (statsmodels' fit, stored in the result)."""
    report = large_report()
    checked = 0
    for judge in report.judges:
        if judge.status != "ok" or judge.ols is None:
            continue
        mine = [
            p
            for p in report.pairs
            if p.judge == judge.judge
            and not p.excluded
            and None not in (p.capa, p.judgment_score, p.accuracy)
        ]
        accuracy = np.array([p.accuracy for p in mine])
        x = _beyond_accuracy(np.array([p.capa for p in mine]), accuracy)
        y = _beyond_accuracy(np.array([p.judgment_score for p in mine]), accuracy)
        assert len(mine) == judge.n_candidates
        assert np.corrcoef(x, y)[0, 1] == pytest.approx(judge.partial_r, abs=1e-9)
        slope = float(x @ y / (x @ x))
        assert slope == pytest.approx(judge.ols.coefficients["capa"], rel=1e-9)
        checked += 1
    assert checked >= 3
    figure = added_variable_panels(report)
    assert "beyond accuracy" in figure.caption or "beyond accuracy" in figure.title
    assert figure.svg.startswith("<svg")
