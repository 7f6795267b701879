"""Tests of `reports`: every format rendered for real, opened by real tools.

The HTML report is opened in headless Chromium over the DevTools protocol (console errors,
network requests, a laptop-size screenshot); the PDF is rasterized with poppler's pdftoppm and
read back with pdftotext; the summary table's numbers are parsed from the HTML and compared
with the JSON report (the versioned result object). The results come from
`auditor.probes.affinity.analyze` on planted-truth ecosystems (`tests/support/reports.py`): 9
judges x 40 models, and 3 judges x 6 models with a judge that has too few candidates.

Chromium and poppler-utils are installed by `scripts/test`; when they are missing these tests
fail and say so (they do not skip).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

import reports
from auditor.schemas.result import AffinityReport
from reports.formatting import MISSING
from tests.support.reports import HeadlessChromium, large_report, small_report

ROOT = Path(__file__).resolve().parents[3]
SECTIONS = (
    "Summary",
    "Figures",
    "Judge statistics",
    "Judge–candidate pairs",
    "Data coverage",
    "Methodology",
    "Provenance",
)
SUPERSCRIPT_DIGITS = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def tool(name: str) -> str:
    """The path of an external program the tests need, or a test failure that says how to get
    it (scripts/test installs it; these tests never skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run scripts/test (it installs chromium and poppler-utils) "
            f"or apt-get install -y chromium poppler-utils",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def large() -> AffinityReport:
    return large_report()


@pytest.fixture(scope="module")
def small() -> AffinityReport:
    return small_report()


@pytest.fixture(scope="module")
def large_html(large: AffinityReport) -> bytes:
    return reports.render(large, "html")


@pytest.fixture(scope="module")
def small_html(small: AffinityReport) -> bytes:
    return reports.render(small, "html")


# --- parsing what the reports show ---------------------------------------------------------------


class _TableParser(HTMLParser):
    """Rows of one ``<table id=...>``: each cell as (text, attributes)."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.inside = False
        self.in_body = False
        self.rows: list[list[tuple[str, dict[str, str]]]] = []
        self.headers: list[str] = []
        self._cell: list[str] | None = None
        self._attrs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "table" and values.get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tbody":
            self.in_body = True
        elif self.inside and tag == "tr" and self.in_body:
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self._cell, self._attrs = [], values

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.inside:
            self.inside = False
        elif self.inside and tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            if tag == "th":
                self.headers.append(text)
            else:
                self.rows[-1].append((text, self._attrs))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_table(html: bytes, table_id: str) -> tuple[list[str], list[list[tuple[str, dict]]]]:
    parser = _TableParser(table_id)
    parser.feed(html.decode("utf-8"))
    assert parser.rows, f"no table #{table_id} in the HTML"
    return parser.headers, parser.rows


def shown_number(text: str) -> float:
    """A number as the report shows it: ``0.816``, ``-0.025`` or ``3.9 × 10⁻⁹``."""
    if "×" in text:
        mantissa, power = text.split("×")
        exponent = power.strip().removeprefix("10").translate(SUPERSCRIPT_DIGITS)
        return float(mantissa) * 10 ** int(exponent)
    return float(text)


def assert_shown_value(text: str, value: float) -> None:
    """``text`` shows ``value`` at three decimals."""
    assert text == f"{value:.3f}", (text, value)


def assert_shown_p(text: str, value: float) -> None:
    """``text`` shows the p-value ``value``: three decimals from 0.001 up, else two significant
    digits in scientific notation (independent of the renderer's own code)."""
    shown = shown_number(text)
    if value >= 0.001:
        assert text == f"{value:.3f}", (text, value)
    else:
        assert "×" in text, text
        assert math.isclose(shown, float(f"{value:.1e}"), rel_tol=1e-9), (text, value)
        assert abs(shown - value) <= 0.05 * 10 ** math.floor(math.log10(value)), (text, value)


def visible_text(html: bytes) -> str:
    """The text a reader sees (tags, styles and scripts removed)."""
    text = re.sub(rb"<(style|script)[^>]*>.*?</\1>", b" ", html, flags=re.S)
    text = re.sub(rb"<[^>]+>", b" ", text)
    return text.decode("utf-8")


# --- the public API ------------------------------------------------------------------------------


def test_public_api_is_pinned() -> None:
    assert reports.__all__ == [
        "FORMATS",
        "Format",
        "canonical_json",
        "render",
        "render_files",
        "result_sha256",
        "write_reports",
    ]
    assert reports.FORMATS == ("html", "md", "json", "pdf")


def test_unknown_format_is_refused(small: AffinityReport, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown report format 'docx'"):
        reports.render(small, "docx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown report formats"):
        reports.write_reports(small, tmp_path, formats=("html", "xlsx"))  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir()), "nothing is written when a format is unknown"


def test_importing_reports_loads_no_renderer() -> None:
    # WeasyPrint and matplotlib are imported only when a PDF or an HTML report is drawn.
    code = (
        "import sys, reports; "
        "print(sorted(m for m in ('weasyprint', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --- JSON and determinism ------------------------------------------------------------------------


def test_json_is_the_versioned_result_object(large: AffinityReport) -> None:
    data = reports.render(large, "json")
    assert data == large.model_dump_json(indent=2).encode()
    assert AffinityReport.model_validate_json(data) == large
    assert json.loads(data)["schema_version"] == "1.1"
    assert reports.render(large, "json") == data


def test_rerendering_gives_identical_bytes(
    large: AffinityReport, large_html: bytes, small: AffinityReport, small_html: bytes
) -> None:
    assert reports.render(large, "html") == large_html
    assert reports.render(small, "html") == small_html
    for report in (large, small):
        assert reports.render(report, "md") == reports.render(report, "md")
    # No clock, no random ids: nothing in the HTML may depend on when it was drawn.
    assert b"<dc:date>" not in large_html


@pytest.mark.slow
def test_stored_result_renders_to_the_same_bytes_in_a_new_process(
    small: AffinityReport, small_html: bytes, tmp_path: Path
) -> None:
    """A stored result rendered again later (another process) gives the same report."""
    stored = tmp_path / "result.json"
    stored.write_bytes(reports.render(small, "json"))
    code = (
        "import sys, reports; from auditor.schemas.result import AffinityReport; "
        "r = AffinityReport.model_validate_json(open(sys.argv[1], 'rb').read()); "
        "open(sys.argv[2], 'wb').write(reports.render(r, 'html')); "
        "open(sys.argv[3], 'wb').write(reports.render(r, 'md'))"
    )
    html_out, md_out = tmp_path / "again.html", tmp_path / "again.md"
    subprocess.run(
        [sys.executable, "-c", code, str(stored), str(html_out), str(md_out)],
        cwd=ROOT,
        check=True,
    )
    assert html_out.read_bytes() == small_html
    assert md_out.read_bytes() == reports.render(small, "md")


def test_result_hash_matches_the_recipe_printed_in_the_report(
    small: AffinityReport, small_html: bytes, tmp_path: Path
) -> None:
    json_path = tmp_path / "report.json"
    json_path.write_bytes(reports.render(small, "json"))
    document = json.loads(json_path.read_bytes())
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert reports.result_sha256(small) == expected
    assert expected.encode() in small_html
    markdown = reports.render(small, "md").decode()
    assert expected in markdown
    # Run the exact command the report prints.
    command = re.search(r'^python -c "(.+)" report\.json$', markdown, flags=re.M)
    assert command is not None
    out = subprocess.run(
        [sys.executable, "-c", command.group(1), str(json_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == expected


# --- what the reports say ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["large", "small"])
def test_every_number_in_the_summary_table_equals_the_json_result(
    which: str, request: pytest.FixtureRequest
) -> None:
    report: AffinityReport = request.getfixturevalue(which)
    html: bytes = request.getfixturevalue(f"{which}_html")
    result = json.loads(reports.render(report, "json"))
    judges = {j["judge"]: j for j in result["judges"]}
    method = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}[result["settings"]["correction"]]
    headers, rows = html_table(html, "summary-table")
    assert headers == [
        "Judge",
        "Family",
        "Result",
        "Candidates",
        "Partial r",
        "95% CI",
        f"Adjusted p ({method})",
    ]
    assert sorted(row[0][0] for row in rows) == sorted(judges)
    families = {m["name"]: m["family"] for m in result["models"]}
    for row in rows:
        (name, _), (family, _), (status, _), (n, _), (r, _), (ci, _), (p, _) = row
        judge = judges[name]
        assert family == families[name]
        assert int(n) == judge["n_candidates"]
        if judge["status"] != "ok":
            assert status == "Insufficient data"
            for text in (r, ci, p):
                assert text.startswith(MISSING) and len(text) == 2, text  # "—" + note marker
            continue
        assert status == ("Flagged" if judge["flagged"] else "Not flagged")
        assert_shown_value(r, judge["partial_r"])
        low, high = ci.strip("[]").split(", ")
        assert_shown_value(low, judge["ci95"][0])
        assert_shown_value(high, judge["ci95"][1])
        assert_shown_p(p, judge["p_adjusted"])
    flagged = sum(j["flagged"] for j in judges.values())
    assert f"{flagged} of {len(judges)} judges flagged for affinity bias".encode() in html


def test_summary_says_who_is_flagged_in_plain_words(
    large: AffinityReport, large_html: bytes, small_html: bytes
) -> None:
    text = " ".join(visible_text(large_html).split())
    for judge in large.judges:
        family = next(m.family for m in large.models if m.name == judge.judge)
        if judge.flagged:
            assert (
                f"{judge.judge} ({family}) scores candidates that make its own mistakes higher, "
                "beyond what their accuracy explains." in text
            )
        else:
            assert f"{judge.judge} ({family}) shows no statistically significant" in text
    small_text = " ".join(visible_text(small_html).split())
    assert "boreal-2 (boreal) could not be tested: 4 usable candidate(s)" in small_text
    assert "Not flagged (2)" in small_text and "Insufficient data (1)" in small_text


def test_markdown_has_the_same_summary_in_gfm_tables(small: AffinityReport) -> None:
    markdown = reports.render(small, "md").decode()
    result = json.loads(reports.render(small, "json"))
    lines = markdown.splitlines()
    header = lines.index(
        "| Judge | Family | Result | Candidates | Partial r | 95% CI | Adjusted p (Holm) |"
    )
    assert lines[header + 1] == "| :--- | :--- | :--- | ---: | ---: | ---: | ---: |"
    rows = {}
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0]] = cells
    for judge in result["judges"]:
        cells = rows[judge["judge"]]
        if judge["status"] == "ok":
            assert_shown_value(cells[4], judge["partial_r"])
            assert_shown_p(cells[6], judge["p_adjusted"])
        else:
            assert cells[4] == "— (a)"
    assert "<details><summary>" in markdown and "<img" not in markdown
    assert "(a) boreal-2: 4 usable candidate(s); at least 5 needed" in markdown


def test_undefined_values_show_a_dash_and_a_reason_never_none_or_nan(
    small: AffinityReport,
) -> None:
    judges = list(small.judges)
    ok = next(i for i, j in enumerate(judges) if j.status == "ok")
    judges[ok] = judges[ok].model_copy(
        update={"bootstrap_ci95": None, "permutation_p": None, "pearson_r": float("nan")}
    )
    pairs = list(small.pairs)
    pairs[0] = pairs[0].model_copy(
        update={"capa": None, "capa_undefined_reason": "chance agreement is 1", "accuracy": None}
    )
    models = [small.models[0].model_copy(update={"provider": None, "accuracy": None})]
    broken = small.model_copy(
        update={
            "settings": small.settings.model_copy(update={"n_bootstrap": 0, "n_permutations": 0}),
            "judges": judges,
            "pairs": pairs,
            "models": models + list(small.models[1:]),
            "pooled": small.pooled.model_copy(update={"r": None, "ci95": None, "p_value": None}),
        }
    )
    html = visible_text(reports.render(broken, "html"))
    markdown = reports.render(broken, "md").decode()
    for text in (html, markdown):
        assert not re.search(r"\b(None|nan|NaN|inf)\b", text), re.findall(
            r".{40}\b(?:None|nan|NaN|inf)\b.{40}", text
        )
        assert "not computed: the bootstrap was switched off (n_bootstrap = 0)" in text
        assert "not computed: the permutation test was switched off" in text
        assert "CAPA undefined: chance agreement is 1" in text
        assert "Pooled across judges: — (undefined" in text


# --- the HTML in a real browser ------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    binary = tool("chromium")
    with HeadlessChromium(binary, str(tmp_path_factory.mktemp("chromium-profile"))) as chromium:
        yield chromium


@pytest.mark.slow
@pytest.mark.parametrize("which", ["large", "small"])
def test_html_report_in_headless_chromium(
    which: str, request: pytest.FixtureRequest, browser: HeadlessChromium, tmp_path: Path
) -> None:
    html: bytes = request.getfixturevalue(f"{which}_html")
    page = tmp_path / f"{which}.html"
    page.write_bytes(html)
    visit = browser.visit(
        page.as_uri(),
        width=1366,
        height=768,
        evaluate={
            "images_loaded": "[...document.images].every(i => i.complete && i.naturalWidth > 0)",
            "n_images": "document.images.length",
            "summary_top": "document.getElementById('summary-table').getBoundingClientRect().top",
            "page_width": "document.documentElement.scrollWidth",
        },
    )
    # REPORTS_ARTIFACTS_DIR keeps the screenshots for a human look (CI artifacts).
    keep = os.environ.get("REPORTS_ARTIFACTS_DIR")
    screenshot = (Path(keep) if keep else tmp_path) / f"{which}-1366x768.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(visit.screenshot)

    assert visit.console_errors == []
    assert visit.requests, "the page load itself is a request"
    assert all(url.startswith(("file:", "data:")) for url in visit.requests), visit.requests
    assert visit.evaluations["images_loaded"] is True
    assert visit.evaluations["n_images"] == 4
    summary_top, page_width = visit.evaluations["summary_top"], visit.evaluations["page_width"]
    assert isinstance(summary_top, int | float) and isinstance(page_width, int)
    assert summary_top < 768, "the summary table starts on the first screen"
    assert page_width <= 1366, "no horizontal scrolling at laptop width"

    image = Image.open(io.BytesIO(visit.screenshot)).convert("RGB")
    assert image.size == (1366, 768)
    colors = image.getcolors(maxcolors=1366 * 768)
    assert colors is not None
    most_common = max(count for count, _ in colors)
    assert len(colors) > 100, f"screenshot has only {len(colors)} colours: {screenshot}"
    assert most_common < 0.95 * 1366 * 768, f"screenshot is nearly blank: {screenshot}"


def test_html_is_self_contained(large_html: bytes) -> None:
    text = large_html.decode()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", text)
    assert "@import" not in text and "url(http" not in text
    assert text.count('src="data:image/svg+xml;base64,') == 4


# --- PDF -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pdf_rasterizes_with_expected_pages_and_text(
    small: AffinityReport, small_html: bytes, tmp_path: Path
) -> None:
    pdftoppm, pdftotext = tool("pdftoppm"), tool("pdftotext")
    paths = reports.write_reports(small, tmp_path)
    assert sorted(paths) == sorted([*reports.FORMATS, "spec"])  # the spec is an appendix file
    assert json.loads(paths["spec"].read_text()) == small.provenance.spec
    assert paths["html"].read_bytes() == small_html
    assert paths["json"].read_bytes() == reports.render(small, "json")
    pdf = paths["pdf"]
    assert pdf.read_bytes().startswith(b"%PDF-")

    subprocess.run([pdftoppm, "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    # Each of the 7 sections starts on a new page; the small report's content (3 pair tables
    # of 6 rows, 4 figures of at most a page each, about 3 pages of methodology) fits in 16.
    assert len(SECTIONS) <= len(pages) <= 16, len(pages)
    for path in pages:
        colors = Image.open(path).convert("RGB").getcolors(maxcolors=1 << 20)
        assert colors is not None and len(colors) > 10, f"blank page {path}"

    texts = []
    for number in range(1, len(pages) + 1):
        out = subprocess.run(
            [pdftotext, "-f", str(number), "-l", str(number), "-layout", str(pdf), "-"],
            capture_output=True,
            text=True,
            check=True,
        )
        texts.append(out.stdout)
    # Sections start on their own pages, in order; the first page is the summary.
    starts = [0]  # the summary follows the masthead on page 1
    for section in SECTIONS[1:]:
        found = [i for i, text in enumerate(texts) if text.lstrip().startswith(section)]
        assert found, f"no page starts with {section!r}"
        starts.append(found[0])
    assert starts == sorted(set(starts)), starts
    first = texts[0]
    assert "Summary" in first
    assert "Affinity-bias audit of LLM judges" in first
    assert "0 of 3 judges flagged for affinity bias" in first
    for judge in small.judges:
        assert judge.judge in first
    everything = "\n".join(texts)
    assert f"result {reports.result_sha256(small)[:16]}" in everything  # the page footer
    for needle in ("Freedman", "Benjamini", "Holm", "arXiv:2502.04313", "page 1 of"):
        assert needle in everything, needle
