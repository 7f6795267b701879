"""The reliability probes' sections in the audit report (per-probe templates
``probes/{reliability,supervision,prompt_stability}.*.j2`` and figure modules): every part of the
results is rendered, the quantile bins setting is stated, the figures load in a real browser
and print to PDF, and the bytes are deterministic."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

import reports
from auditor.schemas.result import AuditResult
from reports.reliability import reliability_figures
from tests.support.reliability import planted_world, reliability_audit, world
from tests.support.reports import HeadlessChromium

SECTIONS = ("reliability", "supervision", "prompt_stability")


@cache
def planted_report() -> AuditResult:
    bundle = planted_world().bundle(
        with_labels=True, mcq_variants=("terse",), judge_variants=("strict",)
    )
    return reliability_audit(bundle)


def _html_section(html: str, name: str) -> str:
    """The body of one probe's section in the HTML report (up to the next section)."""
    start = html.index(f'<h3 id="probe-{name}">')
    ends = [i for i in (html.find('<h3 id="probe-', start + 1), html.find("</section>", start))]
    return html[start : min(i for i in ends if i > 0)]


def _md_section(markdown: str, title: str) -> str:
    start = markdown.index(f"\n### {title}\n")
    end = re.search(r"\n#{2,3} ", markdown[start + 1 :])
    return markdown[start : start + 1 + end.start()] if end else markdown[start:]


@pytest.mark.slow
def test_sections_and_figures_in_the_audit_report() -> None:
    report = planted_report()
    assert {name for name in SECTIONS} <= set(report.probe_results)
    rel, sup, stab = (report.probe_results[name] for name in SECTIONS)
    figures = reliability_figures(rel, sup, stab)  # type: ignore[arg-type]
    assert [f.id for f in figures] == [
        "figure-outcomes",
        "figure-false-approval",
        "figure-stability",
        "figure-affinity-by-template",
    ]
    html = reports.render(report, "html").decode()
    parts = {name: _html_section(html, name) for name in SECTIONS}
    for name, anchor in (
        ("reliability", "reliability-models"),
        ("supervision", "supervision-judges"),
        ("prompt_stability", "stability-rows"),
        ("prompt_stability", "stability-affinity-table"),
    ):
        assert f'id="{anchor}"' in parts[name], anchor
    # each figure inline, in its own probe's section
    for name, titles in (
        ("reliability", ["Outcomes by difficulty"]),
        ("supervision", ["Judges' false approval by difficulty"]),
        ("prompt_stability", ["Prompt stability", "Affinity partial r by judge template"]),
    ):
        images = re.findall(
            r'<img src="data:image/svg\+xml;base64,[^"]+" alt="([^"]+)"', parts[name]
        )
        assert [alt.split(".")[0] for alt in images] == [t.replace("'", "&#39;") for t in titles], (
            images
        )
    assert (
        "planted truth" in parts["reliability"] and "own difficulty field" in parts["reliability"]
    )
    for name in ("reliability", "supervision"):  # the quantile bins setting is stated
        assert "<code>difficulty_bins</code> = 5" in parts[name]
    # the scale finding planted by avoidance falling with size
    assert "larger models avoid less" in parts["reliability"]
    for part in parts.values():
        assert "None" not in part and "nan" not in part.lower()
    assert reports.render(report, "html").decode() == html  # deterministic bytes


def test_markdown_sections() -> None:
    report = planted_report()
    markdown = reports.render(report, "md").decode()
    parts = [_md_section(markdown, title) for title in ("Reliability", "Supervision")]
    parts.append(_md_section(markdown, "Prompt stability"))
    text = "\n".join(parts)
    assert "| a-2 | model | 2 |" in text
    # b-1: a reliability row, a supervision row, model and judge rows of prompt stability, and
    # its row of affinity r per template
    assert text.count("| b-1 |") == 5 and "| b-1 | judge | 2 |" in text
    assert "`difficulty_bins` = 5" in parts[0]
    assert "| Judge | Items | primary: partial r (95% CI) | strict: partial r (95% CI) |" in text


def test_quantile_bins_follow_the_setting_and_the_report_says_so() -> None:
    bundle = world(4, n_items=60, avoidance=0.5, judges=["a-1"]).bundle(with_labels=True)
    report = reliability_audit(bundle, difficulty_bins=3)
    rel, sup = report.probe_results["reliability"], report.probe_results["supervision"]
    assert len(rel.bins) == 3 and rel.difficulty_bins == 3  # type: ignore[attr-defined]
    assert len(sup.bins) == 3  # type: ignore[attr-defined]
    html = reports.render(report, "html").decode()
    assert "<code>difficulty_bins</code> = 3" in _html_section(html, "reliability")
    assert "bin 3 from" in _html_section(html, "reliability") and "bin 4 from" not in html


def test_missing_results_leave_their_sections_out() -> None:
    ecosystem = world(1, n_items=30, avoidance=0.5)
    report = reliability_audit(ecosystem.bundle(with_verdicts=False, with_labels=True))
    assert "reliability" in report.probe_results
    assert {"supervision", "prompt_stability"} <= {s.probe for s in report.skipped_probes}
    html = reports.render(report, "html").decode()
    assert 'id="reliability-models"' in html
    assert 'id="probe-supervision"' not in html and 'id="supervision-judges"' not in html


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # the report tests need it installed (CI installs poppler and chromium)
        pytest.fail(f"{name} is not installed")
    return path


@pytest.mark.slow
def test_sections_render_in_chromium_and_print_to_pdf(tmp_path: Path) -> None:
    report = planted_report()
    paths = reports.write_reports(report, tmp_path, ("html", "pdf"))
    with HeadlessChromium(_tool("chromium"), str(tmp_path / "profile")) as browser:
        visit = browser.visit(
            paths["html"].as_uri(),
            width=1366,
            height=768,
            evaluate={
                "loaded": "[...document.querySelectorAll('#probes img')]"
                ".every(i => i.complete && i.naturalWidth > 0)",
                "n_figures": "document.querySelectorAll('#probes img').length",
                "width": "document.documentElement.scrollWidth",
            },
        )
    assert visit.console_errors == []
    assert visit.evaluations["loaded"] is True
    assert visit.evaluations["n_figures"] >= 4  # the reliability probes' four, maybe others'
    assert visit.evaluations["width"] <= 1366, "no horizontal scrolling at laptop width"

    pdftoppm, pdftotext = _tool("pdftoppm"), _tool("pdftotext")
    text = subprocess.run(
        [pdftotext, "-layout", str(paths["pdf"]), "-"], capture_output=True, text=True, check=True
    ).stdout
    for needle in (
        "Outcomes by difficulty",
        "Judges' false approval by difficulty",
        "Affinity bias under each judge template",
        "difficulty_bins = 5",
    ):
        assert needle in text, needle
    pages = [t for t in text.split("\f") if "Outcomes by difficulty" in t]
    page = text.split("\f").index(pages[0]) + 1
    subprocess.run(
        [
            pdftoppm,
            "-r",
            "40",
            "-png",
            "-f",
            str(page),
            "-l",
            str(page),
            str(paths["pdf"]),
            str(tmp_path / "reliability"),
        ],
        check=True,
    )
    (image,) = tmp_path.glob("reliability*.png")
    colours = Image.open(image).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the outcomes figure page is blank"
