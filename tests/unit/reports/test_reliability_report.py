"""The reliability section renders every part of the probes' results, deterministically."""

from __future__ import annotations

from reports.reliability import (
    reliability_figures,
    render_reliability_html,
    render_reliability_markdown,
)
from tests.unit.probes.reliability_world import run, world


def test_section_and_figures_from_the_results() -> None:
    ecosystem = world(
        2,
        n_items=60,
        avoidance=0.5,
        judges=["a-1", "b-1"],
        judge_false_approval_slope={"a-1": 1.0},
        model_prompt_sensitivity={"a-2": 1.0},
    )
    bundle = ecosystem.bundle(with_labels=True, mcq_variants=("terse",), judge_variants=("strict",))
    rel, sup, stab = (run(p, bundle) for p in ("reliability", "supervision", "prompt_stability"))
    figures = reliability_figures(rel, sup, stab)
    assert [f.id for f in figures] == [
        "figure-outcomes",
        "figure-false-approval",
        "figure-stability",
    ]
    html = render_reliability_html(rel, sup, stab).decode()
    for anchor in ("rel-outcomes", "rel-supervision", "rel-stability", *(f.id for f in figures)):
        assert f'id="{anchor}"' in html
    assert "planted truth" in html and "own difficulty field" in html
    assert "None" not in html and "nan" not in html.lower()
    assert render_reliability_html(rel, sup, stab) == html.encode()  # deterministic bytes
    markdown = render_reliability_markdown(rel, sup, stab).decode()
    assert "| a-2 | model | 2 |" in markdown
    # b-1: a reliability row, a supervision row, and model and judge rows of prompt stability
    assert markdown.count("| b-1 |") == 4 and "| b-1 | judge | 2 |" in markdown


def test_missing_results_leave_their_parts_out() -> None:
    ecosystem = world(1, n_items=30, avoidance=0.5)
    rel = run("reliability", ecosystem.bundle(with_verdicts=False, with_labels=True))
    html = render_reliability_html(rel, None, None).decode()
    assert 'id="rel-outcomes"' in html and 'id="rel-supervision"' not in html
