"""Prompt templates for reliability audits (Zhou et al., Nature 2024): paraphrase sets of the
multiple-choice and judge prompts (prompt stability), and the three-way grader.

- Paraphrases: the same request in other words. A spec names built-in ones (`MCQ_PARAPHRASES`,
  `JUDGE_PARAPHRASES`) or gives its own; answers and verdicts under them carry the template's
  name as their `variant`. Every template is checked for its placeholders
  (`check_placeholders`): a template without one is a clear error naming the field.
- The grader sees the question, the reference (gold) answer and a candidate's free-form
  answer, and replies with one of three outcomes: CORRECT, AVOIDANT (a refusal, "I don't know",
  off-task) or INCORRECT. `parse_grade` reads the reply strictly (`GRADE_RULES`): a reply that
  names no outcome, or more than one, is unparseable with its reason, counted and never
  coerced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from auditor.prompts import option_letter
from auditor.schemas.bundle import Outcome
from auditor.schemas.prompts import (
    ANSWER_DELIMITER,
    GRADER_TEMPLATE,
    JUDGE_PARAPHRASES,
    MCQ_PARAPHRASES,
    PLACEHOLDER_PATTERN,
    JudgeTemplate,
    check_placeholders,
)

__all__ = [
    "GRADER_TEMPLATE",
    "GRADE_RULES",
    "JUDGE_PARAPHRASES",
    "MCQ_PARAPHRASES",
    "GradeReading",
    "check_placeholders",
    "grader_messages",
    "mcq_variant_messages",
    "parse_grade",
]


def mcq_variant_messages(template: str, question: str, options: list[str]) -> list[dict[str, str]]:
    """The multiple-choice prompt under a paraphrased template (placeholders filled once, so
    braces in the question or options cannot reach another placeholder)."""
    listed = "\n".join(f"{option_letter(i)}. {text}" for i, text in enumerate(options))
    fields = {"question": question, "options": listed}
    content = PLACEHOLDER_PATTERN.sub(lambda m: fields.get(m.group(1), m.group(0)), template)
    return [{"role": "user", "content": content}]


def grader_messages(
    template: JudgeTemplate, *, question: str, reference: str, answer: str
) -> list[dict[str, str]]:
    """The grader's prompt: the answer is placed, stripped of the markers, in its block."""
    safe = answer.replace(ANSWER_DELIMITER, "").replace("<<<ANSWER>>>", "")
    fields = {"question": question, "reference": reference, "answer": safe}
    user = PLACEHOLDER_PATTERN.sub(lambda m: fields.get(m.group(1), m.group(0)), template.user)
    return [{"role": "system", "content": template.system}, {"role": "user", "content": user}]


# --- reading the grader's reply ------------------------------------------------------------------

GRADE_RULES: Final = ("bare", "labelled", "leading")
"""How a grader reply is read, in order (the rule that read it is stored with it):

- ``bare``: the whole reply is one outcome word, any case, with punctuation or markdown
  around it: ``CORRECT``, ``Incorrect.``, ``**AVOIDANT**``, ``"correct"``;
- ``labelled``: a label, then the word, then at most punctuation: ``Grade: INCORRECT``,
  ``Outcome - avoidant``, ``Final answer: CORRECT.`` (labels: grade, outcome, verdict, label,
  result, answer, final answer);
- ``leading``: the reply starts with the word and goes on after a separator: ``INCORRECT -
  the capital is Paris``, ``Correct. The reference says 4.``
A reply naming two different outcomes in those places, or none (``Not correct``, ``I think it
is right``, ``Yes``, an empty reply), is unparseable: counted with its reason, never coerced.
"""

_WORDS = {"correct": "correct", "incorrect": "incorrect", "avoidant": "avoidant"}
_WORD = r"(correct|incorrect|avoidant)"
_DECOR = r"[\s*_`\"'“”‘’()\[\]]*"
_BARE = re.compile(rf"^{_DECOR}{_WORD}{_DECOR}[.!]?{_DECOR}$", re.IGNORECASE)
_LABEL = re.compile(
    rf"^{_DECOR}(?:final\s+)?(?:grade|outcome|verdict|label|result|answer){_DECOR}\s*[:=\-–]\s*"
    rf"{_DECOR}{_WORD}{_DECOR}[.!]?{_DECOR}$",
    re.IGNORECASE,
)
_LEADING = re.compile(rf"^{_DECOR}{_WORD}{_DECOR}\s*[.:;,\-–—]\s+\S", re.IGNORECASE)
_ANY = re.compile(rf"\b{_WORD}\b", re.IGNORECASE)


@dataclass(frozen=True)
class GradeReading:
    """A grader reply read as an outcome, or unparseable (None) with the reason."""

    outcome: Outcome | None
    reason: str | None = None
    rule: str | None = None


def parse_grade(text: str | None) -> GradeReading:
    """Read a three-way grader reply by `GRADE_RULES`.

    >>> [parse_grade(t).outcome for t in ("CORRECT", "Grade: avoidant", "Incorrect - no.")]
    ['correct', 'avoidant', 'incorrect']
    >>> parse_grade("Not correct").outcome is None
    True
    """
    if text is None or not text.strip():
        return GradeReading(None, "empty reply")
    reply = text.strip()
    shown = reply[:80]
    for rule, pattern in (("bare", _BARE), ("labelled", _LABEL)):
        match = pattern.match(reply)
        if match is not None:
            return GradeReading(_WORDS[match.group(1).lower()], None, rule)  # type: ignore[arg-type]
    match = _LEADING.match(reply)
    if match is not None:
        word = match.group(1).lower()
        first_line = reply.splitlines()[0]
        others = {w.lower() for w in _ANY.findall(first_line)} - {word}
        if others:
            return GradeReading(None, f"reply names more than one outcome: {shown!r}")
        return GradeReading(_WORDS[word], None, "leading")  # type: ignore[arg-type]
    if _ANY.search(reply):
        return GradeReading(None, f"reply does not state one outcome plainly: {shown!r}")
    return GradeReading(None, f"reply names no outcome (correct, avoidant, incorrect): {shown!r}")
