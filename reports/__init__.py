"""Rendering of finished, versioned analysis results into HTML, Markdown, JSON and PDF.

A report is drawn from an `auditor.schemas.result.AffinityReport` alone: nothing is re-estimated,
so a stored result can be rendered again at any time and shows the same numbers. HTML, Markdown and
JSON are byte-for-byte reproducible for the same result and the same renderer versions.

>>> from reports import FORMATS
>>> FORMATS
('html', 'md', 'json', 'pdf')
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from auditor.schemas.result import AffinityReport
from reports.canonical import canonical_json, result_sha256

__all__ = ["FORMATS", "Format", "canonical_json", "render", "result_sha256", "write_reports"]

Format = Literal["html", "md", "json", "pdf"]
FORMATS: tuple[Format, ...] = ("html", "md", "json", "pdf")
_SUFFIX: dict[str, str] = {"html": ".html", "md": ".md", "json": ".json", "pdf": ".pdf"}


def render(report: AffinityReport, fmt: Format) -> bytes:
    """The report in one format.

    ``json`` is the result object itself (``report.model_dump_json(indent=2)``); ``html`` is one
    self-contained file; ``md`` is GitHub-flavoured Markdown without figures; ``pdf`` is the HTML
    printed by WeasyPrint.
    """
    if fmt == "json":
        return report.model_dump_json(indent=2).encode("utf-8")
    if fmt == "html":
        from reports.html import render_html

        return render_html(report)
    if fmt == "md":
        from reports.markdown import render_markdown

        return render_markdown(report)
    if fmt == "pdf":
        from reports.html import render_pdf

        return render_pdf(report)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_reports(
    report: AffinityReport,
    out_dir: str | Path,
    formats: Iterable[Format] = FORMATS,
    *,
    stem: str = "report",
) -> dict[str, Path]:
    """Write ``<out_dir>/<stem>.<suffix>`` for each format; return format -> path.

    Every format is rendered before any file is written, so a failure leaves no partial set.
    """
    wanted: tuple[str, ...] = tuple(formats)
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report formats {unknown!r}; expected some of {FORMATS}")
    rendered: dict[str, bytes] = {}
    for fmt in FORMATS:  # html before pdf, so the PDF prints the HTML already drawn
        if fmt not in wanted:
            continue
        if fmt == "pdf" and "html" in rendered:
            from reports.html import render_pdf

            rendered[fmt] = render_pdf(report, rendered["html"])
        else:
            rendered[fmt] = render(report, fmt)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, data in rendered.items():
        path = directory / f"{stem}{_SUFFIX[name]}"
        path.write_bytes(data)
        paths[name] = path
    return paths
