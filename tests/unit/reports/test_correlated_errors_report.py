"""The correlated-errors section renders every part of a result, deterministically."""

from __future__ import annotations

import pytest

from auditor.ecosystem import Ecosystem, EcosystemConfig, FamilyConfig
from auditor.probes.correlated_errors import analyze_correlated_errors
from auditor.schemas.correlated_errors import CorrelatedErrorsResult, CorrelatedErrorsSettings
from reports.correlated_errors import (
    correlated_errors_figures,
    render_correlated_errors_html,
    render_correlated_errors_markdown,
)

FAMILIES = [
    FamilyConfig(name=name, size=2, provider=provider)
    for name, provider in (("a", "P1"), ("b", "P1"), ("c", "P2"), ("d", "P2"))
]
SETTINGS = CorrelatedErrorsSettings(n_bootstrap=50, n_permutations=100)


@pytest.fixture(scope="module")
def result() -> CorrelatedErrorsResult:
    """A full result (every part estimated), analysed once for the tests that render it."""
    world = Ecosystem(
        EcosystemConfig(seed=4, n_items=40, families=FAMILIES, same_provider_inflation=0.4)
    )
    return analyze_correlated_errors(world.bundle(), SETTINGS)


def test_sections_and_figures_from_the_result(result: CorrelatedErrorsResult) -> None:
    figures = correlated_errors_figures(result)
    assert [f.id for f in figures] == ["figure-agreement", "figure-inflation", "figure-monoculture"]
    rendered = render_correlated_errors_html(result)
    html = rendered.decode()
    for anchor in (
        "ce-agreement",
        "ce-regression",
        "ce-inflation",
        "ce-monoculture",
        "ce-effective",
        "ce-capability",
    ):
        assert f'id="{anchor}"' in html
    assert "same_provider" in html and "nan" not in html.lower().replace("nanoseconds", "")
    assert render_correlated_errors_html(result) == rendered  # a second render, same bytes
    markdown = render_correlated_errors_markdown(result).decode()
    assert "| `same_provider` |" in markdown and "| a-1 | P1 |" in markdown


def test_insufficient_result_renders_its_reason() -> None:
    world = Ecosystem(EcosystemConfig(seed=4, n_items=20, families=FAMILIES))
    bundle = world.bundle(with_verdicts=False)
    bundle = bundle.model_copy(
        update={"models": [m.model_copy(update={"provider": None}) for m in bundle.models]}
    )
    result = analyze_correlated_errors(bundle, SETTINGS)
    html = render_correlated_errors_html(result).decode()
    assert "Insufficient data" in html and "no model has a provider" in html
    assert "Not estimated" in render_correlated_errors_markdown(result).decode()


def test_probe_templates_render_in_a_bare_report_environment(
    result: CorrelatedErrorsResult,
) -> None:
    """`reports.probes` renders templates/probes/<name>.{html,md}.j2 with its own environment
    (html: only `b64` and `p_value` filters; md: none of ours) and the context name, result,
    findings, figures: the section must need nothing else."""
    import base64

    from jinja2 import Environment, PackageLoader, StrictUndefined

    from reports.probe_figures.correlated_errors import figures

    context = {
        "name": "correlated_errors",
        "result": result,
        "findings": result.findings,
        "common": [],
        "skipped": [],
    }
    html_env = Environment(
        loader=PackageLoader("reports", "templates"), autoescape=True, undefined=StrictUndefined
    )
    html_env.filters["b64"] = lambda text: base64.b64encode(text.encode()).decode("ascii")
    drawn = figures(result)
    assert [title.split(".")[0] for title, _ in drawn] == [
        "Error agreement, grouped by provider",
        "Judge inflation by provider",
        "Systemic exclusion against panel size",
    ]
    html = html_env.get_template("probes/correlated_errors.html.j2").render(
        figures=drawn, **context
    )
    assert html.count("<figure>") == 3 and '<h4 id="ce-regression">' in html
    md_env = Environment(loader=PackageLoader("reports", "templates"), undefined=StrictUndefined)
    markdown = md_env.get_template("probes/correlated_errors.md.j2").render(figures=[], **context)
    assert "#### What predicts shared errors" in markdown and "| `same_provider` |" in markdown
