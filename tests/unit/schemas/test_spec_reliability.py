"""Spec fields of reliability audits: the grader, its prompt and prompt variants; a template
without its placeholders is an error naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.schemas.spec import SpecError, parse_spec


def _spec(**extra: Any) -> dict[str, Any]:
    return {"simulation": {"n_items": 5}, "judges": [{"model": "sim/atlas-1"}], **extra}


def _message(document: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as raised:
        parse_spec(document)
    return str(raised.value)


def test_built_in_and_custom_variants_and_the_grader_resolve() -> None:
    spec = parse_spec(
        _spec(
            grader={"model": "sim/boreal-1"},
            prompt_variants={
                "mcq": ["mcq-terse", {"name": "mine", "user": "{question}\n{options}"}],
                "judge": ["judge-strict"],
            },
        )
    )
    assert [name for name, _ in spec.prompt_variants.mcq_templates()] == ["mcq-terse", "mine"]
    assert [t.name for t in spec.prompt_variants.judge_templates()] == ["judge-strict"]
    assert spec.grader is not None and spec.grader_prompt.resolve().name == "grader-three-way"
    assert parse_spec(_spec()).prompt_variants.mcq_templates() == []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"prompt_variants": {"mcq": ["mcq-terse", {"name": "x", "user": "Q: {question}"}]}},
            "prompt_variants.mcq[1].user: the template needs the placeholder {options}",
        ),
        (
            {"prompt_variants": {"judge": [{"name": "x", "user": "{question} grade it"}]}},
            "prompt_variants.judge[0].user: the template needs the placeholder {answer}",
        ),
        (
            {"grader_prompt": {"user": "Q: {question} A: {answer}"}},
            "grader_prompt.user: the template needs the placeholder {reference}",
        ),
        (
            {"prompt_variants": {"mcq": ["mcq-fancy"]}},
            "prompt_variants.mcq[0]: unknown built-in template 'mcq-fancy'",
        ),
        (
            {"prompt_variants": {"judge": ["judge-strict", "judge-strict"]}},
            "prompt_variants.judge: template names must be unique; repeated: ['judge-strict']",
        ),
        (
            {"prompt_variants": {"mcq": [{"name": "primary", "user": "{question}{options}"}]}},
            "prompt_variants.mcq: 'primary' names the audit's own template",
        ),
    ],
)
def test_bad_templates_name_the_field(extra: dict[str, Any], expected: str) -> None:
    assert expected in _message(_spec(**extra))
