"""The HTML report (one self-contained file) and the PDF printed from it with WeasyPrint."""

from __future__ import annotations

import base64
from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from auditor.schemas.result import AffinityReport
from reports.canonical import renderer_versions, result_sha256
from reports.content import build_content
from reports.drift import drift_section_html
from reports.figures import build_figures
from reports.formatting import format_p
from reports.probes import audit_scorecard, probe_sections

__all__ = ["COLLAPSE_ROWS", "OPEN_PAIR_TABLES_UP_TO", "render_html", "render_pdf"]

OPEN_PAIR_TABLES_UP_TO = 40
"""Pair tables start open when the result has at most this many pairs, else collapsed."""
COLLAPSE_ROWS = 20
"""Other long listings (models, the spec) are collapsed on screen beyond this many rows."""


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    environment.filters["b64"] = lambda text: base64.b64encode(text.encode()).decode("ascii")
    environment.filters["p_value"] = format_p
    return environment


@cache
def _css() -> str:
    return (resources.files("reports") / "templates" / "report.css").read_text(encoding="utf-8")


def render_html(report: AffinityReport, *, spec_file: str | None = None) -> bytes:
    """The report as one HTML document: figures inline as data URIs, no external requests.
    ``spec_file`` names the appendix file that holds the audit spec, when one is written."""
    content = build_content(report, result_sha256(report), renderer_versions())
    open_pairs = (
        {section.judge for section in content.pair_sections}
        if len(report.pairs) <= OPEN_PAIR_TABLES_UP_TO
        else set()
    )
    drift = (report.provenance.model_extra or {}).get("drift")
    drift_section = Markup(drift_section_html(drift, heading=3)) if drift else None
    html = (
        _environment()
        .get_template("report.html.j2")
        .render(
            drift_section=drift_section,
            probe_sections=probe_sections(report, _environment(), "html"),
            scorecard=audit_scorecard(report),
            skipped_probes=report.skipped_probes,
            c=content,
            figures=build_figures(report),
            css=_css(),
            open_pairs=open_pairs,
            spec_file=spec_file,
            COLLAPSE_ROWS=COLLAPSE_ROWS,
        )
    )
    return html.encode("utf-8")


def render_pdf(report: AffinityReport, html: bytes | None = None) -> bytes:
    """The HTML report (``html`` if already rendered) printed to PDF (A4) by WeasyPrint, which
    is imported only here."""
    try:
        import weasyprint
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "PDF reports need WeasyPrint: pip install 'judge-auditor[pdf]'"
        ) from error

    source = (html if html is not None else render_html(report)).decode("utf-8")
    return weasyprint.HTML(string=source, url_fetcher=_offline_fetcher()).write_pdf()


def _offline_fetcher() -> object:
    """A WeasyPrint URL fetcher for ``data:`` URIs only: everything the report shows is inline,
    so any other request is a bug, and fails the rendering instead of reaching the network."""
    from weasyprint import urls

    if hasattr(urls, "URLFetcher"):  # WeasyPrint >= 68
        return urls.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)

    def fetch(url: str, *args: object, **kwargs: object) -> dict:  # pragma: no cover - old API
        if not url.startswith("data:"):
            raise ValueError(f"the report must not load external resources; asked for {url!r}")
        return urls.default_url_fetcher(url, *args, **kwargs)

    return fetch
