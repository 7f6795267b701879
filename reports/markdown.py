"""The Markdown report: GitHub-flavoured tables for review tools and pull requests.

Figures are left out (they are in the HTML and PDF reports of the same result hash); every
number and every gap the HTML shows is here.
"""

from __future__ import annotations

import re
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from auditor.schemas.result import AffinityReport
from reports.canonical import renderer_versions, result_sha256
from reports.content import Cell, Table, build_content
from reports.probes import audit_scorecard, probe_sections

__all__ = ["fenced", "markdown_table", "render_markdown"]

_ALIGN = {"left": ":---", "right": "---:", "center": ":---:"}


def _escape(text: str) -> str:
    """Text safe inside a GFM table cell (pipes escaped, no line breaks)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _cell(cell: Cell) -> str:
    return _escape(cell.text) + (f" ({cell.note})" if cell.note else "")


def markdown_table(table: Table) -> str:
    """``table`` as a GFM table followed by its footnotes."""
    lines = [
        "| " + " | ".join(_escape(c.label) for c in table.columns) + " |",
        "| " + " | ".join(_ALIGN[c.align] for c in table.columns) + " |",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines.append("")
        lines += [f"- ({marker}) {_escape(text)}" for marker, text in table.notes]
    return "\n".join(lines)


def fenced(text: str, info: str = "text") -> str:
    """``text`` in a code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _tidy(text: str) -> str:
    """At most one blank line between blocks, outside code fences (their text is verbatim)."""
    parts = re.split(r"(^`{3,}[^\n]*\n.*?^`{3,}$)", text, flags=re.M | re.S)
    return "".join(
        part if index % 2 else re.sub(r"\n{3,}", "\n\n", part) for index, part in enumerate(parts)
    )


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    environment.filters["table"] = markdown_table
    environment.filters["fenced"] = fenced
    return environment


def render_markdown(report: AffinityReport) -> bytes:
    content = build_content(report, result_sha256(report), renderer_versions())
    environment = _environment()
    text = environment.get_template("report.md.j2").render(
        c=content,
        probe_sections=probe_sections(report, environment, "md"),
        scorecard=audit_scorecard(report),
        skipped_probes=report.skipped_probes,
    )
    return _tidy(text).encode("utf-8")
