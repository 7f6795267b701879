"""Rendering of finished, versioned analysis results into HTML, Markdown, JSON and PDF.

A report is drawn from an `auditor.schemas.result.AffinityReport` alone: nothing is re-estimated,
so a stored result can be rendered again at any time and shows the same numbers. HTML, Markdown and
JSON are byte-for-byte reproducible for the same result and the same renderer versions.

>>> from reports import FORMATS
>>> FORMATS
('html', 'md', 'json', 'pdf')
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from auditor.schemas.result import AffinityReport
from reports.canonical import canonical_json, result_sha256

__all__ = [
    "FORMATS",
    "Format",
    "canonical_json",
    "render",
    "render_files",
    "result_sha256",
    "write_reports",
]

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

        return render_html(report, spec_file=_appendix(report, "report"))
    if fmt == "md":
        from reports.markdown import render_markdown

        return render_markdown(report)
    if fmt == "pdf":
        from reports.html import render_html, render_pdf

        return render_pdf(report, render_html(report, spec_file=_appendix(report, "report")))
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _appendix(report: AffinityReport, stem: str) -> str | None:
    """The name of the spec appendix file, when the result holds a spec."""
    return f"{stem}.spec.json" if report.provenance.spec is not None else None


def render_files(
    report: AffinityReport, formats: Iterable[Format] = FORMATS, *, stem: str = "report"
) -> dict[str, bytes]:
    """File name -> bytes of ``<stem>.<suffix>`` for each format, and the appendix
    ``<stem>.spec.json`` (the audit spec as stored with the result) when the result holds a
    spec and a format that shows pages (HTML or PDF) is written: the spec is kept out of the
    PDF's body and the HTML names this file.

    The HTML is rendered once; the PDF prints it."""
    wanted: tuple[str, ...] = tuple(formats)
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown report formats {unknown!r}; expected some of {FORMATS}")
    spec = report.provenance.spec
    appendix = _appendix(report, stem) if {"html", "pdf"} & set(wanted) else None
    rendered: dict[str, bytes] = {}
    html: bytes | None = None
    if "html" in wanted or "pdf" in wanted:
        from reports.html import render_html

        html = render_html(report, spec_file=appendix)
    for fmt in FORMATS:  # html before pdf, so the PDF prints the HTML already drawn
        if fmt not in wanted:
            continue
        if fmt == "html":
            rendered[f"{stem}.html"] = html  # type: ignore[assignment]  # set above
        elif fmt == "pdf":
            from reports.html import render_pdf

            rendered[f"{stem}.pdf"] = render_pdf(report, html)
        else:
            rendered[f"{stem}{_SUFFIX[fmt]}"] = render(report, fmt)
    if appendix is not None:
        text = json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        rendered[appendix] = text.encode("utf-8")
    return rendered


def write_reports(
    report: AffinityReport,
    out_dir: str | Path,
    formats: Iterable[Format] = FORMATS,
    *,
    stem: str = "report",
) -> dict[str, Path]:
    """Write ``<out_dir>/<stem>.<suffix>`` for each format (and the spec appendix, see
    `render_files`); return format (or ``spec``) -> path.

    Every format is rendered before any file is written, so a failure leaves no partial set.
    """
    rendered = render_files(report, formats, stem=stem)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, data in rendered.items():
        path = directory / name
        path.write_bytes(data)
        key = "spec" if name.endswith(".spec.json") else name.rsplit(".", 1)[-1]
        paths[key] = path
    return paths
